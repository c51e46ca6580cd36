//! Setting a page up before its first navigation: the strategy's identity (user agent,
//! client hints, evasions or the automation flag), emulation (viewport, locale, time zone),
//! extra headers and cookies.

use chromiumoxide::cdp::browser_protocol::browser::GetVersionParams;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetAutomationOverrideParams, SetDeviceMetricsOverrideParams, SetLocaleOverrideParams,
    SetTimezoneOverrideParams, UserAgentBrandVersion, UserAgentMetadata,
};
use chromiumoxide::cdp::browser_protocol::network::{
    CookieParam, Headers, SetCookiesParams, SetExtraHttpHeadersParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::cdp::browser_protocol::target::SetAutoAttachParams;
use chromiumoxide::cdp::js_protocol::runtime;
use serde_json::{Map, Value};

use super::persona::{Persona, languages};
use super::session::{Session, cdp_error};
use super::stealth;
use crate::job::{ErrorKind, JobError, Strategy};

impl Session {
    /// Applies the strategy and the page options; starts answering dialogs, and request
    /// interception when needed. Returns the helper tasks, to stop when the page closes.
    pub(super) async fn prepare(&mut self) -> Result<Vec<tokio::task::JoinHandle<()>>, JobError> {
        self.leave_workers_alone().await?;
        if let Some((user_agent, languages)) = self.identity().await? {
            self.teach_workers(&user_agent, &languages).await?;
        }
        self.emulate().await?;
        self.extra_headers().await?;
        self.cookies().await?;
        self.load_profile().await?;
        let mut helpers = vec![self.answer_dialogs().await?];
        helpers.extend(self.intercept().await?);
        Ok(helpers)
    }

    /// Stops the DevTools client from attaching to the page's workers. It attached to each
    /// one paused and resumed it, nothing more, and a service worker's registration could
    /// wait on that for good when the machine was busy.
    async fn leave_workers_alone(&self) -> Result<(), JobError> {
        self.page()
            .execute(SetAutoAttachParams::new(false, false))
            .await
            .map_err(|e| cdp_error("leaving workers alone", e))?;
        Ok(())
    }

    /// Has the browser's warden tell this page's workers (dedicated, shared, service) the
    /// persona before their own code runs, as the evasions tell its frames.
    async fn teach_workers(&mut self, user_agent: &str, languages: &str) -> Result<(), JobError> {
        let (Some(warden), Some(context)) = (self.page.warden(), self.page.context()) else {
            return Ok(());
        };
        let script = stealth::worker_evasions(user_agent, languages);
        self.taught = Some(warden.teach(context.inner(), script));
        warden
            .watch(self.page().target_id().inner())
            .await
            .map_err(|e| JobError::new(ErrorKind::BrowserCrashed, e))
    }

    /// The browser's own user agent, asked once per browser runner.
    async fn browser_user_agent(&self) -> Option<String> {
        let cache = &self.browser.user_agent;
        if let Some(ua) = cache.get() {
            return Some(ua.clone());
        }
        let version = self
            .page()
            .execute(GetVersionParams::default())
            .await
            .ok()?;
        let ua = version.result.user_agent.clone();
        let _ = cache.set(ua.clone());
        Some(ua)
    }

    /// `stealth`: a user agent and client hints without headless markers, and the evasions
    /// script in every frame before page scripts; returns the user agent and languages the
    /// page says, for its workers to say too. `vanilla`: `navigator.webdriver` back on, as
    /// Chromium under automation reports it.
    async fn identity(&self) -> Result<Option<(String, String)>, JobError> {
        let stealth = self.strategy == Strategy::Stealth;
        let browser_ua = self.browser_user_agent().await;
        let user_agent = match (&self.options.user_agent, stealth, &browser_ua) {
            (Some(ua), _, _) => Some(ua.clone()),
            (None, true, Some(ua)) => Some(stealth::clean_user_agent(ua)),
            _ => None,
        };
        let languages = match (stealth, &self.options.locale) {
            (true, _) => Some(Persona::of(&self.options, &self.browser.persona).languages()),
            (false, Some(locale)) => Some(languages(locale)),
            (false, None) => None,
        };
        let overridden = user_agent.is_some() || languages.is_some();
        let ua = user_agent.or(browser_ua).unwrap_or_default();
        if overridden {
            self.override_user_agent(ua.clone(), languages.clone(), stealth)
                .await?;
        }
        if !stealth {
            self.page()
                .execute(SetAutomationOverrideParams::new(true))
                .await
                .map_err(|e| cdp_error("setting the automation flag", e))?;
            return Ok(None);
        }
        self.page()
            .execute(AddScriptToEvaluateOnNewDocumentParams::new(
                stealth::frame_evasions(),
            ))
            .await
            .map_err(|e| cdp_error("installing the stealth evasions", e))?;
        // The DevTools client enables the Runtime domain on every page, which reports each
        // console call back to it: a page could tell it is watched. Evaluations here name
        // no execution context and need none of its events.
        self.page()
            .execute(runtime::DisableParams::default())
            .await
            .map_err(|e| cdp_error("disabling the Runtime domain", e))?;
        Ok(Some((ua, languages.unwrap_or_default())))
    }

    /// Sets the user agent (which also reaches dedicated workers), the languages
    /// (`navigator.languages`, and `Accept-Language` made from them) and, under stealth,
    /// client hints that match the user agent.
    async fn override_user_agent(
        &self,
        ua: String,
        languages: Option<String>,
        stealth: bool,
    ) -> Result<(), JobError> {
        let mut params = SetUserAgentOverrideParams::builder().user_agent(ua.clone());
        if let Some(languages) = languages {
            params = params.accept_language(languages);
        }
        if stealth {
            let brands = stealth::brands_of(&ua)
                .into_iter()
                .map(|(brand, version)| UserAgentBrandVersion::new(brand, version))
                .collect::<Vec<_>>();
            let metadata = UserAgentMetadata::builder()
                .brands(brands)
                .platform("Linux")
                .platform_version("")
                .architecture("x86")
                .model("")
                .mobile(false)
                .bitness("64")
                .build()
                .map_err(|e| cdp_error("user agent metadata", e))?;
            params = params
                .platform("Linux x86_64")
                .user_agent_metadata(metadata);
        }
        let params = params
            .build()
            .map_err(|e| cdp_error("user agent override", e))?;
        self.page()
            .execute(params)
            .await
            .map_err(|e| cdp_error("setting the user agent", e))?;
        Ok(())
    }

    /// Viewport, locale and time zone: the job's, and under stealth the whole persona (a
    /// screen that holds the window, and a locale and time zone even when the job names
    /// none). A locale or time zone the browser refuses is the payload's fault when the job
    /// named it, else the settings'.
    async fn emulate(&self) -> Result<(), JobError> {
        let viewport = self.options.viewport();
        let (width, height) = (i64::from(viewport.width), i64::from(viewport.height));
        let mut metrics = SetDeviceMetricsOverrideParams::new(width, height, 1.0, false);
        let (locale, timezone) = if self.strategy == Strategy::Stealth {
            let persona = Persona::of(&self.options, &self.browser.persona);
            metrics.screen_width = Some(i64::from(persona.screen.0));
            metrics.screen_height = Some(i64::from(persona.screen.1));
            (Some(persona.locale), Some(persona.timezone))
        } else {
            (self.options.locale.clone(), self.options.timezone.clone())
        };
        self.page()
            .execute(metrics)
            .await
            .map_err(|e| cdp_error("setting the viewport", e))?;
        if let Some(locale) = &locale {
            let params = SetLocaleOverrideParams::builder()
                .locale(locale.replace('-', "_"))
                .build();
            self.page().execute(params).await.map_err(|e| {
                let source = self.source_of("locale", self.options.locale.is_some());
                refused_option(format!(
                    "{source} {locale:?} was refused by the browser: {e}"
                ))
            })?;
        }
        if let Some(timezone) = &timezone {
            self.page()
                .execute(SetTimezoneOverrideParams::new(timezone.clone()))
                .await
                .map_err(|e| {
                    let source = self.source_of("timezone", self.options.timezone.is_some());
                    refused_option(format!(
                        "{source} {timezone:?} was refused by the browser: {e}"
                    ))
                })?;
        }
        Ok(())
    }

    /// Where a persona's `part` came from: the job's payload, or the stealth settings.
    fn source_of(&self, part: &str, named_by_job: bool) -> String {
        if named_by_job {
            format!("payload.{part}")
        } else {
            format!(
                "the stealth persona's {part} (STEALTH_{})",
                part.to_uppercase()
            )
        }
    }

    async fn extra_headers(&self) -> Result<(), JobError> {
        if self.options.headers.is_empty() {
            return Ok(());
        }
        let headers: Map<String, Value> = self
            .options
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        self.page()
            .execute(SetExtraHttpHeadersParams::new(Headers::new(Value::Object(
                headers,
            ))))
            .await
            .map_err(|e| cdp_error("setting request headers", e))?;
        Ok(())
    }

    /// Cookies, for the job's url unless a cookie names its domain.
    async fn cookies(&self) -> Result<(), JobError> {
        if self.options.cookies.is_empty() {
            return Ok(());
        }
        let mut cookies = Vec::with_capacity(self.options.cookies.len());
        for cookie in &self.options.cookies {
            let param = CookieParam::builder()
                .name(cookie.name.clone())
                .value(cookie.value.clone())
                .path(cookie.path.clone().unwrap_or_else(|| "/".into()))
                .secure(cookie.secure)
                .http_only(cookie.http_only);
            let param = match &cookie.domain {
                Some(domain) => param.domain(domain.clone()),
                None => param.url(self.attempt.url.clone()),
            };
            cookies.push(param.build().map_err(|e| cdp_error("a cookie", e))?);
        }
        self.page()
            .execute(SetCookiesParams::new(cookies))
            .await
            .map_err(|e| {
                refused_option(format!("payload.cookies were refused by the browser: {e}"))
            })?;
        Ok(())
    }
}

fn refused_option(message: String) -> JobError {
    JobError::new(ErrorKind::InvalidPayload, message)
}
