//! A profile in a page: its cookies set in the job's fresh context and its `localStorage`
//! put back before any page script of its origins runs; after a successful job that saves,
//! the context's cookies and the storage of the origin the page ended on, taken back.

use chromiumoxide::cdp::browser_protocol::network::{
    CookieParam, CookieSameSite, SetCookiesParams, TimeSinceEpoch,
};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use serde_json::Value;

use super::persona::Persona;
use super::session::{Session, cdp_error};
use crate::engine::profile::{Cookie, Identity, OriginStorage, ProfileState};
use crate::job::{ErrorKind, JobError, Strategy};

/// What reads the storage of the origin the page is on: `[origin, [[key, value], …]]`.
const READ_STORAGE: &str = "(() => { let items = null; \
     try { items = Object.entries(localStorage); } catch (e) {} \
     return [location.origin, items]; })()";

impl Session {
    /// Loads the attempt's profile into the page's context: cookies now, storage as each of
    /// its origins' first document starts.
    pub(super) async fn load_profile(&self) -> Result<(), JobError> {
        let Some(carried) = &self.attempt.profile else {
            return Ok(());
        };
        let state = carried.state();
        if !state.cookies.is_empty() {
            let cookies = state
                .cookies
                .iter()
                .map(cookie_param)
                .collect::<Result<Vec<_>, _>>()?;
            self.page()
                .execute(SetCookiesParams::new(cookies))
                .await
                .map_err(|e| cdp_error("setting the profile's cookies", e))?;
        }
        if !state.origins.is_empty() {
            self.page()
                .execute(AddScriptToEvaluateOnNewDocumentParams::new(storage_seed(
                    &state.origins,
                )))
                .await
                .map_err(|e| cdp_error("loading the profile's storage", e))?;
        }
        Ok(())
    }

    /// Takes what the page left for a saving job: every cookie of its context, the storage
    /// of the origin it ended on (the profile's other origins kept as they were), and the
    /// identity it showed.
    pub(super) async fn capture_profile(&self) -> Result<(), JobError> {
        let Some(carried) = self.attempt.profile.as_ref().filter(|c| c.saves()) else {
            return Ok(());
        };
        let cookies = self
            .page
            .context_cookies()
            .await
            .map_err(|e| cdp_error("reading the context's cookies", e))?
            .iter()
            .map(cookie_of)
            .collect();
        let mut state = ProfileState {
            cookies,
            origins: carried.state().origins.clone(),
            identity: self.identity_shown(),
        };
        if let Some((origin, items)) = origin_storage(self.inspect(READ_STORAGE).await?) {
            state = state.with_storage(&origin, items);
        }
        carried.capture(state);
        Ok(())
    }

    /// The identity this page showed: the job's options, and under stealth the persona's
    /// locale and time zone (so the profile keeps them when the settings change).
    fn identity_shown(&self) -> Identity {
        let options = &self.options;
        let (locale, timezone) = if self.strategy == Strategy::Stealth {
            let persona = Persona::of(options, &self.browser.persona);
            (Some(persona.locale), Some(persona.timezone))
        } else {
            (options.locale.clone(), options.timezone.clone())
        };
        Identity {
            user_agent: options.user_agent.clone(),
            locale,
            timezone,
            viewport: options.viewport,
            proxy: options.proxy.clone(),
        }
    }
}

/// A kept cookie, as the browser takes it.
fn cookie_param(cookie: &Cookie) -> Result<CookieParam, JobError> {
    let mut param = CookieParam::builder()
        .name(cookie.name.clone())
        .value(cookie.value.clone())
        .path(cookie.path.clone())
        .secure(cookie.secure)
        .http_only(cookie.http_only);
    // A domain without its leading dot is a host-only cookie: set through a url of that
    // host it stays one (named as a domain it would reach the subdomains too).
    param = if cookie.domain.starts_with('.') {
        param.domain(cookie.domain.clone())
    } else {
        let scheme = if cookie.secure { "https" } else { "http" };
        param.url(format!("{scheme}://{}{}", cookie.domain, cookie.path))
    };
    if let Some(same_site) =
        (cookie.same_site.as_deref()).and_then(|s| s.parse::<CookieSameSite>().ok())
    {
        param = param.same_site(same_site);
    }
    if let Some(expires) = cookie.expires.filter(|at| *at > 0.0) {
        param = param.expires(TimeSinceEpoch::new(expires));
    }
    param
        .build()
        .map_err(|e| JobError::new(ErrorKind::Internal, format!("a profile cookie: {e}")))
}

/// A cookie as the profile keeps it.
fn cookie_of(cookie: &chromiumoxide::cdp::browser_protocol::network::Cookie) -> Cookie {
    Cookie {
        name: cookie.name.clone(),
        value: cookie.value.clone(),
        domain: cookie.domain.clone(),
        path: cookie.path.clone(),
        expires: Some(cookie.expires).filter(|_| !cookie.session),
        http_only: cookie.http_only,
        secure: cookie.secure,
        same_site: cookie.same_site.as_ref().map(|s| s.as_ref().to_owned()),
    }
}

/// The script that puts each origin's storage back in its first document of the job: an
/// origin whose storage already holds something (the job's own pages wrote it, or it was
/// put back earlier) is left alone.
fn storage_seed(origins: &[OriginStorage]) -> String {
    let map: serde_json::Map<String, Value> = origins
        .iter()
        .map(|o| {
            let items = serde_json::to_value(&o.local_storage).unwrap_or(Value::Null);
            (o.origin.clone(), items)
        })
        .collect();
    format!(
        "(() => {{ const kept = {}; const items = kept[location.origin]; if (!items) return; \
         try {{ if (localStorage.length > 0) return; \
         for (const [key, value] of items) localStorage.setItem(key, value); }} catch (e) {{}} }})()",
        Value::Object(map)
    )
}

/// The origin and items [`READ_STORAGE`] read, when the page has an origin with storage.
fn origin_storage(read: Value) -> Option<(String, Vec<(String, String)>)> {
    let (origin, items): (String, Option<Vec<(String, String)>>) =
        serde_json::from_value(read).ok()?;
    let items = items?;
    (origin.starts_with("http://") || origin.starts_with("https://")).then_some((origin, items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn storage_is_read_only_from_web_origins() {
        let read = json!(["http://shop.test:8080", [["k", "v"]]]);
        assert_eq!(
            origin_storage(read),
            Some((
                "http://shop.test:8080".to_owned(),
                vec![("k".to_owned(), "v".to_owned())]
            ))
        );
        assert_eq!(origin_storage(json!(["null", [["k", "v"]]])), None);
        assert_eq!(origin_storage(json!(["http://shop.test", null])), None);
        assert_eq!(origin_storage(json!("nonsense")), None);
    }

    #[test]
    fn the_seed_carries_each_origin_as_data() {
        let origins = [OriginStorage {
            origin: "http://shop.test".into(),
            local_storage: vec![("k".into(), "'); alert(1); ('".into())],
        }];
        let script = storage_seed(&origins);
        assert!(
            script.contains(r#"{"http://shop.test":[["k","'); alert(1); ('"]]}"#),
            "{script}"
        );
        assert!(script.contains("localStorage.length > 0"), "{script}");
    }
}
