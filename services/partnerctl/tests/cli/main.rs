//! partnerctl's own binary against the real suite (all five services on
//! port 0, real PostgreSQL and RabbitMQ). Every test has its own config
//! directories.

mod errors;
mod harness;
mod session;
mod story;
