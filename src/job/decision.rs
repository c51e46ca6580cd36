//! What an `auto` attempt decided: the rung it started on, each rung it tried and what each
//! came to, why it started there, and the probe of a cheaper rung that followed. Shown in a
//! job's result and error (`strategy_decision`) and kept per domain for the API.

use serde::{Deserialize, Serialize};

use super::{Rung, Step, Verdict};

/// One rung's try within an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriedRung {
    /// The rung, as the strategy it runs (`http`, `vanilla`, `stealth`).
    pub strategy: Rung,
    /// The proxy tier its connections left through; absent when they left directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_tier: Option<String>,
    /// What it came to; absent when the outcome said nothing about the site (the job's
    /// own fault, a cancel, the browser crashing).
    pub verdict: Option<Verdict>,
}

impl TriedRung {
    /// The ladder's step it ran on.
    pub fn step(&self) -> Step {
        Step {
            rung: self.strategy,
            tier: self.proxy_tier.clone(),
        }
    }
}

/// Where an `auto` attempt started, what it tried and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StrategyDecision {
    /// The rung the attempt started on.
    pub chosen: Rung,
    /// The proxy tier it started through; absent when it started direct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen_proxy_tier: Option<String>,
    /// Each rung tried, in order: a blocked rung hands over to the next, once.
    pub tried: Vec<TriedRung>,
    /// Why it started there (`learned: …`, `no evidence: …`, a policy).
    pub reason: String,
    /// After a success on the first rung, the page loaded once more on the rung below, to
    /// learn whether the site still needs the dearer one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<TriedRung>,
}

impl StrategyDecision {
    /// The rung the attempt ended on: the last one tried.
    pub fn ended_on(&self) -> Rung {
        self.tried
            .last()
            .map_or(self.chosen, |tried| tried.strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_decision_reads_as_it_always_has_and_ends_on_its_last_rung() {
        let decision = StrategyDecision {
            chosen: Rung::Http,
            chosen_proxy_tier: None,
            tried: vec![
                TriedRung {
                    strategy: Rung::Http,
                    proxy_tier: None,
                    verdict: Some(Verdict::Blocked),
                },
                TriedRung {
                    strategy: Rung::Vanilla,
                    proxy_tier: None,
                    verdict: Some(Verdict::Success),
                },
            ],
            reason: "no evidence: cheapest first".to_owned(),
            probe: None,
        };
        let wire = json!({
            "chosen": "http",
            "tried": [
                {"strategy": "http", "verdict": "blocked"},
                {"strategy": "vanilla", "verdict": "success"}
            ],
            "reason": "no evidence: cheapest first"
        });
        assert_eq!(serde_json::to_value(&decision).expect("json"), wire);
        let read: StrategyDecision = serde_json::from_value(wire).expect("read back");
        assert_eq!(read.ended_on(), Rung::Vanilla);
    }
}
