//! Attacks: scopes (see docs/security.md).
