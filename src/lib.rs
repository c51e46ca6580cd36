//! control-plane: a control plane for browser-automation jobs.
//!
//! Jobs arrive over the HTTP API ([`api`]), are recorded in the job store ([`store`]), rung
//! through a priority queue ([`queue`]) to workers ([`worker`]) that run them with the
//! execution engine ([`engine`]) and record their outcome. See `DESIGN.md` for the picture.

pub mod api;
pub mod app;
pub mod artifact;
pub mod config;
pub mod engine;
pub mod job;
pub mod queue;
pub mod store;
pub mod telemetry;
pub mod worker;
