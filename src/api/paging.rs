//! The `limit` query parameter every paged list takes.

use super::problem::Problem;

/// Parses `limit` as an integer from 1 to `max`, or a problem naming the parameter.
pub fn limit(value: &str, max: u32) -> Result<u32, Problem> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            Problem::bad_parameter(
                "limit",
                "out_of_range",
                format!("must be an integer from 1 to {max}, not {value:?}"),
            )
        })
}
