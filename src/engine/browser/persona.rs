//! The visitor a `stealth` page claims to be: a desktop screen that holds the window, a
//! locale, and a time zone that fits the locale. Each part is told the same way to every
//! place a page can ask (HTTP headers, `navigator`, `Intl`, `Date`, `screen`), so no two
//! answers disagree. A job's own `locale`, `timezone` and `viewport` choose the persona;
//! what it leaves out follows from what it set.

use super::super::options::{PageOptions, Viewport};

/// The locale a persona has when the job names none.
pub const DEFAULT_LOCALE: &str = "en-US";

/// Desktop screens, smallest first: a persona's screen is the first that holds its window.
const SCREENS: [(u32, u32); 4] = [(1920, 1080), (2560, 1440), (3840, 2160), (7680, 4320)];

/// The height of the browser's own bars above the page, as a desktop Chrome window has.
pub const WINDOW_BARS: u32 = 85;

/// The time zone most visitors with a locale's region have (a region's capital or largest
/// city); a locale not listed falls back to its language's, then to New York.
const ZONES: &[(&str, &str)] = &[
    ("en-US", "America/New_York"),
    ("en-GB", "Europe/London"),
    ("en-CA", "America/Toronto"),
    ("en-AU", "Australia/Sydney"),
    ("en-IN", "Asia/Kolkata"),
    ("en-IE", "Europe/Dublin"),
    ("fr-CA", "America/Toronto"),
    ("fr-BE", "Europe/Brussels"),
    ("fr-CH", "Europe/Zurich"),
    ("de-AT", "Europe/Vienna"),
    ("de-CH", "Europe/Zurich"),
    ("es-MX", "America/Mexico_City"),
    ("es-AR", "America/Argentina/Buenos_Aires"),
    ("pt-BR", "America/Sao_Paulo"),
    ("zh-TW", "Asia/Taipei"),
    ("zh-HK", "Asia/Hong_Kong"),
    ("en", "America/New_York"),
    ("fr", "Europe/Paris"),
    ("de", "Europe/Berlin"),
    ("es", "Europe/Madrid"),
    ("it", "Europe/Rome"),
    ("nl", "Europe/Amsterdam"),
    ("pt", "Europe/Lisbon"),
    ("pl", "Europe/Warsaw"),
    ("sv", "Europe/Stockholm"),
    ("da", "Europe/Copenhagen"),
    ("nb", "Europe/Oslo"),
    ("fi", "Europe/Helsinki"),
    ("cs", "Europe/Prague"),
    ("tr", "Europe/Istanbul"),
    ("ru", "Europe/Moscow"),
    ("uk", "Europe/Kyiv"),
    ("ja", "Asia/Tokyo"),
    ("ko", "Asia/Seoul"),
    ("zh", "Asia/Shanghai"),
    ("hi", "Asia/Kolkata"),
    ("ar", "Asia/Riyadh"),
    ("he", "Asia/Jerusalem"),
];

/// The persona's parts a job may leave out, as the settings give them (`STEALTH_LOCALE`,
/// `STEALTH_TIMEZONE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonaDefaults {
    /// The locale of a job that names none.
    pub locale: String,
    /// The time zone of a job that names none (else the one that fits its locale).
    pub timezone: Option<String>,
}

impl Default for PersonaDefaults {
    fn default() -> Self {
        PersonaDefaults {
            locale: DEFAULT_LOCALE.to_owned(),
            timezone: None,
        }
    }
}

/// Who a `stealth` page says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    /// A BCP 47 locale (`fr-FR`).
    pub locale: String,
    /// An IANA time zone.
    pub timezone: String,
    /// The screen's width and height, in CSS pixels.
    pub screen: (u32, u32),
}

impl Persona {
    /// The persona of a job's page: its locale (or the default's), its time zone (or, when
    /// it names its locale, the one that fits it; else the default's), and a screen that
    /// holds its window.
    pub fn of(options: &PageOptions, defaults: &PersonaDefaults) -> Persona {
        let locale = options
            .locale
            .as_deref()
            .unwrap_or(&defaults.locale)
            .replace('_', "-");
        let timezone = match (&options.timezone, &options.locale, &defaults.timezone) {
            (Some(zone), _, _) => zone.clone(),
            (None, None, Some(zone)) => zone.clone(),
            _ => zone_for(&locale).to_owned(),
        };
        Persona {
            screen: screen_for(options.viewport()),
            locale,
            timezone,
        }
    }

    /// The languages `navigator.languages` lists, most wanted first: the locale, then its
    /// bare language (`fr-FR`, `fr`). Chromium writes `Accept-Language` from this list,
    /// adding the quality values itself.
    pub fn languages(&self) -> String {
        languages(&self.locale)
    }
}

/// The languages a visitor with `locale` lists (`fr-FR` → `fr-FR,fr`), as Chromium takes
/// them: without quality values, which it adds to `Accept-Language` itself (given with
/// them, they would show in `navigator.languages` as `fr;q=0.9`).
pub fn languages(locale: &str) -> String {
    let locale = locale.replace('_', "-");
    match locale.split_once('-') {
        Some((language, _)) => format!("{locale},{language}"),
        None => locale,
    }
}

/// The time zone that fits `locale` (see [`ZONES`]).
pub fn zone_for(locale: &str) -> &'static str {
    let language = locale.split('-').next().unwrap_or(locale);
    [locale, language]
        .iter()
        .find_map(|key| {
            ZONES
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(key))
        })
        .map_or("America/New_York", |(_, zone)| zone)
}

/// The smallest common desktop screen that holds a window around `viewport`.
fn screen_for(viewport: Viewport) -> (u32, u32) {
    SCREENS
        .iter()
        .copied()
        .find(|&(w, h)| w >= viewport.width && h >= viewport.height + WINDOW_BARS)
        .unwrap_or((viewport.width, viewport.height + WINDOW_BARS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(
        locale: Option<&str>,
        timezone: Option<&str>,
        viewport: Option<(u32, u32)>,
    ) -> PageOptions {
        PageOptions {
            locale: locale.map(str::to_owned),
            timezone: timezone.map(str::to_owned),
            viewport: viewport.map(|(width, height)| Viewport { width, height }),
            ..PageOptions::default()
        }
    }

    fn of(options: &PageOptions) -> Persona {
        Persona::of(options, &PersonaDefaults::default())
    }

    #[test]
    fn settings_choose_the_persona_of_jobs_that_name_nothing() {
        let british = PersonaDefaults {
            locale: "en-GB".into(),
            timezone: None,
        };
        let persona = Persona::of(&options(None, None, None), &british);
        assert_eq!(
            (persona.locale.as_str(), persona.timezone.as_str()),
            ("en-GB", "Europe/London")
        );
        let abroad = PersonaDefaults {
            locale: "en-GB".into(),
            timezone: Some("Asia/Singapore".into()),
        };
        assert_eq!(
            Persona::of(&options(None, None, None), &abroad).timezone,
            "Asia/Singapore"
        );
        // A job that names its locale gets the zone that fits it, not the setting's.
        assert_eq!(
            Persona::of(&options(Some("de-DE"), None, None), &abroad).timezone,
            "Europe/Berlin"
        );
    }

    #[test]
    fn a_job_that_names_nothing_is_a_new_yorker_on_a_full_hd_screen() {
        let persona = of(&options(None, None, None));
        assert_eq!(persona.locale, "en-US");
        assert_eq!(persona.timezone, "America/New_York");
        assert_eq!(persona.screen, (1920, 1080));
        assert_eq!(persona.languages(), "en-US,en");
    }

    #[test]
    fn the_time_zone_follows_the_locale_unless_the_job_names_one() {
        assert_eq!(
            of(&options(Some("fr-FR"), None, None)).timezone,
            "Europe/Paris"
        );
        assert_eq!(
            of(&options(Some("pt_BR"), None, None)).timezone,
            "America/Sao_Paulo"
        );
        assert_eq!(
            of(&options(Some("sw-KE"), None, None)).timezone,
            "America/New_York"
        );
        let named = of(&options(Some("fr-FR"), Some("Asia/Tokyo"), None));
        assert_eq!(named.timezone, "Asia/Tokyo");
        assert_eq!(named.languages(), "fr-FR,fr");
    }

    #[test]
    fn the_screen_holds_the_window() {
        assert_eq!(
            of(&options(None, None, Some((1920, 1080)))).screen,
            (2560, 1440)
        );
        assert_eq!(
            of(&options(None, None, Some((9000, 9000)))).screen,
            (9000, 9085)
        );
    }
}
