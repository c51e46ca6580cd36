//! control-plane: a control plane for browser-automation jobs.
//!
//! Jobs arrive over the HTTP API ([`api`]) as a [`spec::JobSpec`] whose payload is typed by
//! its kind ([`kinds`]); the [`dispatch::Dispatcher`] records them in the job store
//! ([`store`]) and rings them through a priority queue ([`queue`]) to workers ([`worker`]),
//! which run them with the engine's services ([`engine`]) and record their outcome. The job
//! domain ([`job`]) decides every state change. See `DESIGN.md` for the picture.

pub mod api;
pub mod app;
pub mod artifact;
pub mod attempt;
pub mod auth;
pub mod client;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod job;
pub mod kinds;
pub mod memory;
pub mod metrics;
pub mod persist;
pub mod profile;
pub mod proxy;
pub mod queue;
pub mod quota;
pub mod retention;
pub mod secrets;
pub mod spec;
pub mod store;
pub mod telemetry;
pub mod ttl_cache;
pub mod ui;
pub mod webhook;
pub mod worker;
