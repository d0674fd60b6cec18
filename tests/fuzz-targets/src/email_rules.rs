//! Verification's email-domain rules for the primary contact. Input: the
//! email on the first line, then one company domain (tenant domain or
//! website) a line.
//!
//! Properties: an address is INVALID_EMAIL exactly when it has no domain;
//! refusals do not depend on the company's domains; nothing is owned without
//! a company domain; an address is owned by its own domain; adding a domain
//! never takes ownership away.

use partnerhub_verification::email_rules::{self, EmailFinding, INVALID_EMAIL};

use crate::text;

/// Checks the email and domains read from `data`.
pub fn run(data: &[u8]) {
    let input = text(data);
    let mut lines = input.split('\n');
    let email = lines.next().unwrap_or_default();
    let domains: Vec<String> = lines.map(str::to_owned).collect();

    let finding = email_rules::check(email, &domains);
    let alone = email_rules::check(email, &[]);
    let domain = email_rules::domain_of(email);

    if let Some(d) = &domain {
        assert!(
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase()),
            "domain_of({email:?}) = {d:?}"
        );
    }
    let invalid =
        matches!(&finding, EmailFinding::Refused { reason, .. } if *reason == INVALID_EMAIL);
    assert_eq!(
        invalid,
        domain.is_none(),
        "INVALID_EMAIL and domain_of disagree on {email:?}"
    );
    match (&finding, &alone) {
        (EmailFinding::Refused { reason: a, .. }, EmailFinding::Refused { reason: b, .. }) => {
            assert_eq!(a, b, "the refusal of {email:?} depends on the domains");
        }
        (EmailFinding::Refused { .. }, _) | (_, EmailFinding::Refused { .. }) => {
            panic!("whether {email:?} is refused depends on the company domains {domains:?}")
        }
        (_, EmailFinding::Owned) => panic!("{email:?} is owned without company domains"),
        _ => {}
    }
    if finding == EmailFinding::Owned {
        let mut more = domains.clone();
        more.push("contoso.example".into());
        assert_eq!(
            email_rules::check(email, &more),
            EmailFinding::Owned,
            "adding a domain took {email:?} away"
        );
    }
    if let Some(d) = domain.filter(|d| d.contains('.'))
        && !matches!(alone, EmailFinding::Refused { .. })
    {
        assert_eq!(
            email_rules::check(email, std::slice::from_ref(&d)),
            EmailFinding::Owned,
            "{email:?} is not owned by its own domain {d:?}"
        );
    }
}
