//! Attacks: directory (see docs/security.md).
