//! Integration tests against real PostgreSQL and Redis, with a fixture site on 127.0.0.1.
//!
//! One test binary (faster to link than one per file); each test gets its own database and
//! its own Redis key prefix, so tests run in parallel and in any order.

mod api;
mod auth;
mod backlog;
mod batch;
mod browser;
mod chaos;
mod cli;
mod client;
mod clients;
mod common;
mod content;
mod content_site;
mod contract;
mod dashboard;
mod dispatch;
mod embedded;
mod faults;
mod hostile;
mod hosts;
mod layering;
mod leadership;
mod leases;
mod lifecycle;
mod limits;
mod live;
mod login_site;
mod memory;
mod metrics;
mod netns;
mod objects;
mod pacing;
mod profiles;
mod proxies;
mod proxy_ladder;
mod proxy_pools;
mod queues;
mod quotas;
mod rebinding;
mod recording;
mod requests;
mod retention;
mod s3_server;
mod saturation;
mod site;
mod store;
mod upstream_fixtures;
mod web;
mod webhooks;
