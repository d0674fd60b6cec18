//! Suite tests live in tests/tests.
