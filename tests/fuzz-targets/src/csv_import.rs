//! Identity's bulk user import (`email,given_name,family_name,roles`).
//! Input: the CSV text.
//!
//! Properties: an accepted file has 1 to `MAX_ROWS` rows, each with a valid
//! email (no two the same once normalised), valid names and known roles
//! listed once; a refused file names at least one problem, each under `csv`
//! or `rows[N]` with N within the file.

use std::collections::BTreeSet;

use partnerhub_identity::domain::{self, csv_import};
use partnerhub_platform::auth::roles;
use partnerhub_platform::validate;

use crate::text;

/// Parses the CSV text in `data`.
pub fn run(data: &[u8]) {
    let input = text(data);
    match csv_import::parse(&input) {
        Ok(rows) => {
            assert!((1..=csv_import::MAX_ROWS).contains(&rows.len()));
            assert!(input.len() <= csv_import::MAX_BYTES);
            let mut emails = BTreeSet::new();
            for row in &rows {
                assert!(validate::email(&row.email).is_ok(), "{row:?}");
                assert!(!row.email.chars().any(char::is_control), "{row:?}");
                assert!(validate::text(&row.given_name, 1, 50).is_ok(), "{row:?}");
                assert!(validate::text(&row.family_name, 1, 50).is_ok(), "{row:?}");
                assert!(!row.roles.is_empty(), "{row:?}");
                let distinct: BTreeSet<&String> = row.roles.iter().collect();
                assert_eq!(distinct.len(), row.roles.len(), "{row:?}");
                assert!(
                    row.roles.iter().all(|r| roles::find(r).is_some()),
                    "{row:?}"
                );
                assert!(
                    emails.insert(domain::normalize_email(&row.email)),
                    "{} is imported twice",
                    row.email
                );
            }
        }
        Err(violations) => {
            let violations = violations.into_vec();
            assert!(!violations.is_empty(), "refused without a reason");
            for v in violations {
                let row = v
                    .field
                    .strip_prefix("rows[")
                    .and_then(|rest| rest.split_once(']'))
                    .and_then(|(n, _)| n.parse::<usize>().ok());
                match row {
                    Some(n) => assert!(
                        (1..=csv_import::MAX_ROWS).contains(&n),
                        "a violation names row {n}"
                    ),
                    None => assert_eq!(v.field, "csv", "unexpected field {:?}", v.field),
                }
            }
        }
    }
}
