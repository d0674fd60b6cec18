//! The attack suite: one test per attack of the threat model
//! (`docs/security.md`), each driving the public gRPC API as the attacker
//! and asserting the defence. Every test here was checked to succeed as an
//! attack on the code before its control was built.

// The suite's descriptor-driven request builder, shared with the attacks
// that call every RPC.
#[path = "../suite/common.rs"]
mod common;
#[path = "../suite/owners.rs"]
mod owners;
#[path = "../suite/requests.rs"]
mod requests;
#[path = "../suite/rpcs.rs"]
mod rpcs;

mod bus;
mod directory;
mod hardening;
mod scopes;
mod sessions;
