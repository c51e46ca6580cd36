//! What a replay of a finished job changes, parsed from `POST /api/v1/jobs/{id}/retry`.

use serde_json::Value;

use super::fields::{FieldError, Fields, Problems};
use super::{Priority, Strategy};

/// Attempts a replay allows when the request does not say.
pub const DEFAULT_REPLAY_BUDGET: u32 = 3;

/// What a replay changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// More attempts allowed from now.
    pub budget: u32,
    /// A new strategy.
    pub strategy: Option<Strategy>,
    /// A new priority.
    pub priority: Option<Priority>,
}

impl Replay {
    /// Parses a replay body: `max_attempts` (1–10), `strategy`, `priority` (1–5), all optional.
    pub fn parse(body: &Value) -> Result<Replay, Vec<FieldError>> {
        let problems = Problems::new();
        let parsed = Fields::of(body, "", &problems).and_then(|mut f| {
            let budget = f.int("max_attempts", 1..=10);
            let strategy = f.choice::<Strategy>("strategy");
            let priority = f.int("priority", 1..=5);
            f.finish();
            Some(Replay {
                budget: budget?.map_or(DEFAULT_REPLAY_BUDGET, |n| n as u32),
                strategy: strategy?,
                priority: priority?.and_then(Priority::new),
            })
        });
        problems.verdict(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_replay_body_is_optional_and_checked() {
        let empty = Replay::parse(&json!({})).expect("empty body");
        assert_eq!(empty.budget, DEFAULT_REPLAY_BUDGET);
        let full = Replay::parse(&json!({"max_attempts": 2, "strategy": "stealth", "priority": 1}))
            .expect("valid");
        assert_eq!(full.strategy, Some(Strategy::Stealth));
        let errors = Replay::parse(&json!({"colour": 1, "max_attempts": 0})).expect_err("bad");
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["colour", "max_attempts"]);
    }
}
