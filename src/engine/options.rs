//! Options that shape how a page is requested and rendered: what the http engine and the
//! browser toolkit understand. Job kinds parse them from payloads; stores keep them as the
//! JSON these derives write, which is the request's own shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The viewport used when a job does not set one.
pub const DEFAULT_VIEWPORT: Viewport = Viewport {
    width: 1366,
    height: 768,
};

/// A viewport size in CSS pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Viewport {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// One cookie set before the page loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CookieSpec {
    /// Name.
    pub name: String,
    /// Value.
    pub value: String,
    /// Domain; the job url's host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Path; `/` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Sent over HTTPS only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub secure: bool,
    /// Hidden from page scripts.
    #[serde(default, skip_serializing_if = "is_false")]
    pub http_only: bool,
}

/// Resource types a job may refuse to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BlockedResource {
    /// Images.
    Image,
    /// Fonts.
    Font,
    /// Audio and video.
    Media,
    /// Style sheets.
    Stylesheet,
}

/// A page lifecycle event a navigation can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub enum PageEvent {
    /// The `load` event.
    #[default]
    #[serde(rename = "load")]
    Load,
    /// The `DOMContentLoaded` event.
    #[serde(rename = "domcontentloaded")]
    DomContentLoaded,
    /// No network activity for 500 ms after load.
    #[serde(rename = "networkidle")]
    NetworkIdle,
}

/// When a navigation counts as done: `"load"`, `"domcontentloaded"`, `"networkidle"`, or
/// `{"selector": "…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum WaitUntil {
    /// A lifecycle event.
    Event(PageEvent),
    /// An element matching the selector exists (after `DOMContentLoaded`).
    Selector {
        /// The CSS selector.
        selector: String,
    },
}

impl Default for WaitUntil {
    fn default() -> Self {
        WaitUntil::Event(PageEvent::Load)
    }
}

/// Options that shape the page of every browser job (and, where they apply, the request of
/// an http one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PageOptions {
    /// Viewport size ([`DEFAULT_VIEWPORT`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewport: Option<Viewport>,
    /// User agent replacing the browser's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Locale (`Accept-Language`, `navigator.language`, Intl).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// IANA time zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Extra request headers, name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Cookies set before the first request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cookies: Vec<CookieSpec>,
    /// Resource types refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block: Vec<BlockedResource>,
    /// When navigation counts as done.
    #[serde(default, skip_serializing_if = "is_default")]
    pub wait_until: WaitUntil,
    /// The proxy pool or tier the job's requests go through, or `none` (direct).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// The profile the page starts from, and whether the job saves what it leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileUse>,
}

pub use crate::job::step::is_proxy_name;

/// A job's use of a profile: `{"name", "save"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProfileUse {
    /// The profile, one of the job's tenant's (1 to 64 of a-z, 0-9, - and _).
    #[schema(pattern = "^[a-z0-9_-]{1,64}$")]
    pub name: String,
    /// Store the state after a successful job as the profile's next version (making the
    /// profile on its first save); needs a browser strategy [default: false].
    #[serde(default, skip_serializing_if = "is_false")]
    pub save: bool,
}

/// Whether `name` may name a profile: 1 to 64 of `a-z`, `0-9`, `-`, `_`.
pub fn is_profile_name(name: &str) -> bool {
    is_proxy_name(name)
}

/// What a bad profile name is told.
pub const PROFILE_NAME_RULE: &str = "a profile's name is 1 to 64 of a-z, 0-9, - and _";

impl PageOptions {
    /// The viewport to use.
    pub fn viewport(&self) -> Viewport {
        self.viewport.unwrap_or(DEFAULT_VIEWPORT)
    }

    /// Whether the job saves the profile it names.
    pub fn saves_profile(&self) -> bool {
        self.profile.as_ref().is_some_and(|profile| profile.save)
    }
}

/// What to extract with one named CSS selector. Written as a CSS string, or as
/// `{"selector", "attr", "all"}` when it takes an attribute or every match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SelectorForm", into = "SelectorForm")]
pub struct SelectorSpec {
    /// The CSS selector (checked to parse).
    pub selector: String,
    /// Take this attribute instead of the element's text.
    pub attr: Option<String>,
    /// Take every match (an array) instead of the first.
    pub all: bool,
}

// The contract shows a selector as it is written (a CSS string or an object: its serde form),
// not as this struct's fields. utoipa composes the schemas of a map's values through
// `ComposeSchema` (public, though documented as the derive's own).
impl utoipa::__dev::ComposeSchema for SelectorSpec {
    fn compose(
        _: Vec<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>>,
    ) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <SelectorForm as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for SelectorSpec {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            "SelectorSpec".to_owned(),
            <SelectorForm as utoipa::PartialSchema>::schema(),
        ));
    }
}

/// Named selectors, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Selectors(pub BTreeMap<String, SelectorSpec>);

impl Selectors {
    /// No selectors.
    pub fn new() -> Selectors {
        Selectors::default()
    }

    /// Whether there are none (then they are not stored).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, SelectorSpec)> for Selectors {
    fn from_iter<I: IntoIterator<Item = (String, SelectorSpec)>>(pairs: I) -> Selectors {
        Selectors(pairs.into_iter().collect())
    }
}

impl std::ops::Deref for Selectors {
    type Target = BTreeMap<String, SelectorSpec>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Selectors {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl<'a> IntoIterator for &'a Selectors {
    type Item = (&'a String, &'a SelectorSpec);
    type IntoIter = std::collections::btree_map::Iter<'a, String, SelectorSpec>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<const N: usize> From<[(String, SelectorSpec); N]> for Selectors {
    fn from(pairs: [(String, SelectorSpec); N]) -> Selectors {
        Selectors(pairs.into())
    }
}

/// The two ways a selector is written, as it is stored and shown.
#[derive(Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum SelectorForm {
    /// A CSS selector: the first match's text.
    Css(String),
    /// A CSS selector and what to take from its matches.
    Detailed {
        /// The CSS selector.
        selector: String,
        /// Take this attribute instead of the element's text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attr: Option<String>,
        /// Take every match (an array) instead of the first.
        #[serde(default, skip_serializing_if = "is_false")]
        all: bool,
    },
}

impl From<SelectorForm> for SelectorSpec {
    fn from(form: SelectorForm) -> Self {
        match form {
            SelectorForm::Css(selector) => SelectorSpec {
                selector,
                attr: None,
                all: false,
            },
            SelectorForm::Detailed {
                selector,
                attr,
                all,
            } => SelectorSpec {
                selector,
                attr,
                all,
            },
        }
    }
}

impl From<SelectorSpec> for SelectorForm {
    fn from(spec: SelectorSpec) -> Self {
        match spec {
            SelectorSpec {
                selector,
                attr: None,
                all: false,
            } => SelectorForm::Css(selector),
            SelectorSpec {
                selector,
                attr,
                all,
            } => SelectorForm::Detailed {
                selector,
                attr,
                all,
            },
        }
    }
}

/// For `skip_serializing_if`: a `false` flag is not written.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
pub(crate) fn is_false(value: &bool) -> bool {
    !*value
}

/// For `skip_serializing_if`: a default value is not written.
pub(crate) fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_are_stored_in_the_shape_they_are_written() {
        let written = json!({
            "viewport": {"width": 800, "height": 600},
            "headers": {"x-a": "1"},
            "cookies": [{"name": "a", "value": "b", "secure": true}],
            "block": ["image", "font"],
            "wait_until": {"selector": "#ready"}
        });
        let options: PageOptions = serde_json::from_value(written.clone()).expect("reads");
        assert_eq!(
            options.wait_until,
            WaitUntil::Selector {
                selector: "#ready".into()
            }
        );
        assert_eq!(serde_json::to_value(&options).ok(), Some(written));
        let plain: PageOptions =
            serde_json::from_value(json!({"wait_until": "networkidle"})).expect("reads");
        assert_eq!(plain.wait_until, WaitUntil::Event(PageEvent::NetworkIdle));
        assert_eq!(
            serde_json::to_value(PageOptions::default()).ok(),
            Some(json!({}))
        );
    }

    #[test]
    fn selectors_keep_their_short_form() {
        let written = json!({"a": "h1", "b": {"selector": "a", "attr": "href", "all": true}});
        let selectors: Selectors = serde_json::from_value(written.clone()).expect("reads");
        assert!(selectors["b"].all);
        assert_eq!(serde_json::to_value(&selectors).ok(), Some(written));
    }
}
