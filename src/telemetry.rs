//! Logging: tracing to stdout (stderr for commands whose stdout is their answer), as JSON
//! lines or human-readable text.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// A log filter that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("RUST_LOG is not a valid log filter ({filter:?}): {reason}")]
pub struct BadFilter {
    /// The filter as given.
    pub filter: String,
    /// Why it does not parse.
    pub reason: String,
}

/// Crates whose debug and trace lines quote what pages hold: the DevTools client prints raw
/// protocol messages (cookie values, storage), the HTML parsers the text they parse.
const QUOTE_PAGES: [&str; 4] = ["chromiumoxide", "html5ever", "markup5ever", "selectors"];

/// `filter` with those crates held to `info`, unless it names them itself.
fn quieted(filter: &str) -> String {
    if filter.trim().is_empty() {
        return filter.to_owned();
    }
    let mut quieted = filter.to_owned();
    for name in QUOTE_PAGES.iter().filter(|name| !filter.contains(*name)) {
        quieted.push_str(&format!(",{name}=info"));
    }
    quieted
}

/// Installs the global subscriber, writing to stderr when `to_stderr` (the command's stdout
/// is its answer, such as a new key). Call once, at start.
pub fn init(format: LogFormat, filter: &str, to_stderr: bool) -> Result<(), BadFilter> {
    let env_filter = EnvFilter::builder()
        .parse(quieted(filter))
        .map_err(|e| BadFilter {
            filter: filter.to_owned(),
            reason: e.to_string(),
        })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(move || -> Box<dyn std::io::Write> {
            if to_stderr {
                Box::new(std::io::stderr())
            } else {
                Box::new(std::io::stdout())
            }
        });
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crates_that_quote_pages_stay_quiet_unless_named() {
        assert_eq!(
            quieted("debug"),
            "debug,chromiumoxide=info,html5ever=info,markup5ever=info,selectors=info"
        );
        assert_eq!(
            quieted("info,chromiumoxide=trace"),
            "info,chromiumoxide=trace,html5ever=info,markup5ever=info,selectors=info"
        );
        assert_eq!(quieted(""), "");
    }
}
