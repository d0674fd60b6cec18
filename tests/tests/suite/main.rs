//! Suite tests: all five services over real gRPC, PostgreSQL and RabbitMQ.

mod access;
mod common;
mod outage;
mod skeleton;
