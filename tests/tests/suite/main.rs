//! Suite tests: all five services over real gRPC, PostgreSQL and RabbitMQ.

mod access;
mod asyncapi;
mod common;
mod hostile;
mod isolation;
mod key_rotation;
mod merge_story;
mod outage;
mod owners;
mod rabbitmq_definitions;
mod rate_limits;
mod requests;
mod rpcs;
mod skeleton;
mod tokens;
mod traces;
mod verification_story;
