//! Webhooks: a job submitted with `callback: {"url": …}` is POSTed there when it reaches a
//! terminal state, signed the Standard Webhooks way ([`sign`]), retried with backoff for up
//! to a day ([`schedule`]) by the [`courier`], every attempt recorded in the job's timeline.

pub mod courier;
pub mod schedule;
pub mod sign;

pub use courier::{Courier, DELIVERY_TIMEOUT};
pub use sign::{SecretSetting, WebhookSecret};
