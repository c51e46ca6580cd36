//! How each setting's text becomes its value: the parsers clap calls, each naming what it
//! expected.

use std::time::Duration;

use crate::auth::Role;
use crate::job::host_map::HostMap;
use crate::retention::PurgeShare;

use super::MissingSetting;

/// A secret setting: kept whole, shown by `Debug` as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;

    fn from_str(text: &str) -> Result<Secret, String> {
        Ok(Secret(text.to_owned()))
    }
}

pub(super) fn parse_endpoint(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("{text:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?}: expected http:// or https:// and a host"));
    }
    Ok(text.trim().trim_end_matches('/').to_owned())
}

pub(super) fn parse_result_cap(value: &str) -> Result<usize, String> {
    let bytes: usize = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number of bytes"))?;
    if !(64 * 1024..=256 * 1024 * 1024).contains(&bytes) {
        return Err("must be from 65536 (64 KiB) to 268435456 (256 MiB)".to_owned());
    }
    Ok(bytes)
}

pub(super) fn parse_tenant(value: &str) -> Result<String, String> {
    crate::auth::check_tenant(value).map(|()| value.to_owned())
}

pub(super) fn parse_role(value: &str) -> Result<Role, String> {
    value.parse()
}

pub(super) fn parse_key_name(value: &str) -> Result<String, String> {
    if value.chars().count() > 100 || value.chars().any(char::is_control) {
        return Err("at most 100 characters, no control characters".to_owned());
    }
    Ok(value.to_owned())
}

pub(super) fn parse_lease(value: &str) -> Result<Duration, String> {
    let lease = parse_duration(value)?;
    if lease < Duration::from_secs(3) {
        return Err("must be at least 3s".to_owned());
    }
    Ok(lease)
}

pub(super) fn parse_leader_lease(value: &str) -> Result<Duration, String> {
    let lease = parse_duration(value)?;
    if lease < Duration::from_secs(1) {
        return Err("must be at least 1s".to_owned());
    }
    Ok(lease)
}

pub(super) fn require<'a>(
    value: Option<&'a str>,
    name: &'static str,
    hint: &'static str,
) -> Result<&'a str, MissingSetting> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(MissingSetting { name, hint })
}

/// Parses `RESOLVE`.
pub fn parse_host_map(text: &str) -> Result<HostMap, String> {
    HostMap::parse(text)
}

/// Parses a duration written the usual way: `30s`, `500ms`, `2m`, `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("{e}; expected a duration such as 30s, 500ms or 2m"))
}

/// Parses `RETENTION_SHARE`: a whole percentage, with or without its `%`.
pub(super) fn parse_share(text: &str) -> Result<PurgeShare, String> {
    let refused = || format!("{text:?}: expected a whole percentage from 1 to 100, such as 10");
    let digits = text.trim().trim_end_matches('%');
    let percent: u8 = digits.parse().map_err(|_| refused())?;
    PurgeShare::percent(percent).ok_or_else(refused)
}

pub(super) fn parse_prefix(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.'));
    if ok {
        Ok(text.to_owned())
    } else {
        Err("expected 1 to 64 characters of letters, digits, '-', '_', ':' or '.'".to_owned())
    }
}
