//! Suite tests: all five services over real gRPC, PostgreSQL and RabbitMQ.

mod access;
mod common;
mod merge_story;
mod outage;
mod skeleton;
mod verification_story;
