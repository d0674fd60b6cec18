//! The bodies of partnerhub's fuzz targets. Each module has one `run(data)`
//! that feeds arbitrary bytes to one kind of untrusted input (request fields,
//! a CSV file, a page token, an access token, an event payload, AMQP message
//! properties) and checks that nothing panics and that what is accepted
//! really has the promised shape.
//!
//! `tests/fuzz` (cargo-fuzz, outside the workspace) wraps each body in a
//! libFuzzer target; the test `tests/corpus.rs` of this crate replays every
//! committed corpus file through the same bodies in the normal test run.
//!
//! A body reports a broken property by panicking: that is what a fuzzer
//! catches, so `assert!` and `panic!` are the point here, not a shortcut.

#![allow(clippy::panic, clippy::expect_used)]

pub mod access_token;
pub mod address;
pub mod csv_import;
pub mod email_rules;
pub mod envelope;
pub mod events;
pub mod page_token;
pub mod profile_rules;
pub mod validators;

/// One fuzz target: its name (the file `tests/fuzz/fuzz_targets/<name>.rs`
/// and the folder `tests/fuzz/corpus/<name>/`) and its body.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Target and corpus folder name.
    pub name: &'static str,
    /// The body: panics when a property does not hold.
    pub run: fn(&[u8]),
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "validators",
        run: validators::run,
    },
    Target {
        name: "profile_rules",
        run: profile_rules::run,
    },
    Target {
        name: "address",
        run: address::run,
    },
    Target {
        name: "email_rules",
        run: email_rules::run,
    },
    Target {
        name: "csv_import",
        run: csv_import::run,
    },
    Target {
        name: "page_token",
        run: page_token::run,
    },
    Target {
        name: "access_token",
        run: access_token::run,
    },
    Target {
        name: "events",
        run: events::run,
    },
    Target {
        name: "envelope",
        run: envelope::run,
    },
];

/// Splits an input into a selector byte (which variant of a target to
/// exercise) and the rest; empty input selects 0.
pub fn selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// The input as text: invalid UTF-8 sequences become U+FFFD, so every input
/// is a meaningful string.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Splits text at the first `sep` into two parts (the second empty when
/// there is none).
pub fn split_once(text: &str, sep: char) -> (&str, &str) {
    text.split_once(sep).unwrap_or((text, ""))
}
