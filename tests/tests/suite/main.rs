//! Suite tests: all five services over real gRPC, PostgreSQL and RabbitMQ.

mod access;
mod common;
mod hostile;
mod merge_story;
mod outage;
mod rabbitmq_definitions;
mod skeleton;
mod traces;
mod verification_story;
