//! Attacks: bus (see docs/security.md).
