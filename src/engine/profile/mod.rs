//! A profile as the engines see it: the state a returning visitor carries (cookies,
//! `localStorage`, identity) and one attempt's hold on it. Where profiles are kept, sealed
//! and leased belongs to the top-level `profile` module.

pub mod carried;
pub mod state;

pub use carried::Carried;
pub use state::{Cookie, Identity, OriginStorage, ProfileState, TooLarge};
