//! Verification's postal-address rules. Input: one field a line — line1,
//! line2, city, state, postal code, country; missing lines are empty.
//!
//! Properties: the standardised form that validation suggests is itself
//! valid as it is (accepting a suggestion never leads to another one), and
//! profile, which stores addresses in Latin characters only, accepts it.

use partnerhub_platform::validate::Violations;
use partnerhub_profile::domain as profile;
use partnerhub_proto::profile::v1::Address;
use partnerhub_verification::address::{self, COVERED, PostalAddress, Validation};

use crate::text;

/// Validates the address read from `data`.
pub fn run(data: &[u8]) {
    let input = text(data);
    let mut lines = input.split('\n');
    let mut next = || lines.next().unwrap_or_default().to_owned();
    let entered = PostalAddress {
        line1: next(),
        line2: next(),
        city: next(),
        state: next(),
        postal_code: next(),
        country: next(),
    };
    match address::validate(&entered) {
        Validation::NotCovered => assert!(
            !COVERED
                .iter()
                .any(|c| c.eq_ignore_ascii_case(entered.country.trim())),
            "a covered country was not checked: {:?}",
            entered.country
        ),
        Validation::Invalid(problems) => assert!(!problems.is_empty()),
        Validation::Valid => stored_by_profile(&entered),
        Validation::Suggested(standard) => {
            assert_eq!(
                address::validate(&standard),
                Validation::Valid,
                "the suggestion for {entered:?} is not valid as it is"
            );
            stored_by_profile(&standard);
        }
    }
}

/// Profile accepts a valid standardised address unchanged.
fn stored_by_profile(a: &PostalAddress) {
    let message = Address {
        line1: a.line1.clone(),
        line2: a.line2.clone(),
        city: a.city.clone(),
        state: a.state.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
    };
    let mut violations = Violations::new();
    profile::check_address("address", Some(&message), &mut violations);
    let fields: Vec<String> = violations.into_vec().into_iter().map(|v| v.field).collect();
    assert!(
        fields.is_empty(),
        "profile refuses {fields:?} of the valid address {a:?}"
    );
    assert_eq!(
        profile::AddressDoc::from(&message),
        profile::AddressDoc {
            line1: a.line1.clone(),
            line2: a.line2.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            postal_code: a.postal_code.clone(),
            country: a.country.clone(),
        },
        "profile would store another form of a valid address"
    );
}
