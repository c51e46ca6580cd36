//! What one attempt spent: browser time and requests by route. Made by the engines' tally,
//! stated in the result, summed per domain by the memory (a plain record, below both).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The route name of requests that went straight to the target.
pub const DIRECT: &str = "direct";

/// What an attempt spent, so a ladder's choices can be judged against a site's cheapest
/// working rung.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Spent {
    /// How long the attempt held a browser page, in milliseconds.
    pub browser_ms: u64,
    /// Requests the http engine sent, and browser pages loaded, by route: `direct`, or the
    /// proxy tier they went through.
    pub requests: BTreeMap<String, u32>,
    /// JavaScript dialogs answered beyond the ones listed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dialogs_dropped: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
