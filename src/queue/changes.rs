//! Change notices: "this job's timeline grew". They let a waiting request, an event stream or
//! the dashboard wake when a job changes instead of asking the database again and again.
//! Notices are hints, never truth: a reader that hears one reads the job from the store, and
//! a reader that may have missed some hears [`Change::Unknown`] and reads again.

use uuid::Uuid;

/// The most job ids one Redis message carries (a burst is published as several).
pub const MAX_IDS_PER_NOTICE: usize = 512;

/// Notices buffered per receiving process before the slowest reader is told it lagged.
pub const NOTICE_BUFFER: usize = 8192;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// This job's timeline grew.
    Job(Uuid),
    /// Notices may have been lost (a reconnect, a full buffer): anything may have changed.
    Unknown,
}

/// Encodes ids as one notice: comma-separated.
pub fn encode(ids: &[Uuid]) -> String {
    let mut text = String::with_capacity(ids.len() * 37);
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&id.to_string());
    }
    text
}

/// Decodes a notice; a part that is not an id makes the whole notice [`Change::Unknown`].
pub fn decode(text: &str) -> Vec<Change> {
    let parsed: Result<Vec<Uuid>, _> = text.split(',').map(str::parse).collect();
    match parsed {
        Ok(ids) => ids.into_iter().map(Change::Job).collect(),
        Err(_) => vec![Change::Unknown],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_and_garbage_means_unknown() {
        let ids = [Uuid::now_v7(), Uuid::now_v7()];
        let decoded = decode(&encode(&ids));
        assert_eq!(decoded, vec![Change::Job(ids[0]), Change::Job(ids[1])]);
        assert_eq!(decode("nonsense"), vec![Change::Unknown]);
        assert_eq!(decode(""), vec![Change::Unknown]);
    }
}
