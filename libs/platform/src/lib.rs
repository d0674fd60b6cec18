//! What every partnerhub service shares, and no service logic: the server and
//! its layers, authentication and authorization, errors, validation, the
//! database, the outbox, the bus and its consumers, telemetry, and the API
//! helpers (page tokens, idempotency, etags).

pub mod app;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod db;
pub mod error;
pub mod etag;
pub mod idempotency;
pub mod metrics;
pub mod outbox;
pub mod page;
pub mod rate_limit;
pub mod server;
pub mod telemetry;
pub mod time;
pub mod validate;

pub use app::{Prepared, Serve, prepare};
pub use config::{Env, ProcessEnv, ServiceSettings};
