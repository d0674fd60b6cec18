//! The attack suite: one test per attack of the threat model
//! (`docs/security.md`), each driving the public gRPC API as the attacker
//! and asserting the defence. Every test here was checked to succeed as an
//! attack on the code before its control was built.

mod bus;
mod directory;
mod hardening;
mod scopes;
mod sessions;
