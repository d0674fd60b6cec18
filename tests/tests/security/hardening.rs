//! Attacks: hardening (see docs/security.md).
