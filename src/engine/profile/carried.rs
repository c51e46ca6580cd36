//! A profile as one attempt carries it: the state its pages start from, and (for a saving
//! job) the state its first successful page left behind.

use std::sync::Mutex;

use super::state::ProfileState;

/// One attempt's profile.
#[derive(Debug)]
pub struct Carried {
    state: ProfileState,
    save: bool,
    captured: Mutex<Option<ProfileState>>,
}

impl Carried {
    /// An attempt starting from `state`, capturing what it leaves when it `save`s.
    pub fn new(state: ProfileState, save: bool) -> Carried {
        Carried {
            state,
            save,
            captured: Mutex::new(None),
        }
    }

    /// What pages start from.
    pub fn state(&self) -> &ProfileState {
        &self.state
    }

    /// Whether the job saves the state its pages leave.
    pub fn saves(&self) -> bool {
        self.save
    }

    /// Keeps what a page that succeeded left, unless an earlier one did: the rung that
    /// succeeded first is the job's, and a probe after it must not replace its state.
    pub fn capture(&self, state: ProfileState) {
        let mut captured = self.captured.lock().unwrap_or_else(|e| e.into_inner());
        captured.get_or_insert(state);
    }

    /// What was captured, once.
    pub fn take_captured(&self) -> Option<ProfileState> {
        self.captured
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
