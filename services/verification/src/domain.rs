//! Verification's rules without I/O: how an account's status and
//! sub-status follow from its checks, and which checks a trigger opens.

/// What a check verifies (stored as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The primary contact's mailbox receives mail.
    EmailOwnership,
    /// Not free mail, government or a role mailbox.
    EmailDomain,
    /// The primary contact's domain is the company's.
    Employment,
    /// A real business at its address.
    Business,
    /// The address follows the postal authority's format.
    Address,
}

impl Kind {
    /// Every kind, in the order the sub-status walks them.
    pub const ALL: [Kind; 5] = [
        Kind::EmailOwnership,
        Kind::EmailDomain,
        Kind::Employment,
        Kind::Business,
        Kind::Address,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EmailOwnership => "EMAIL_OWNERSHIP",
            Kind::EmailDomain => "EMAIL_DOMAIN",
            Kind::Employment => "EMPLOYMENT",
            Kind::Business => "BUSINESS",
            Kind::Address => "ADDRESS",
        }
    }

    /// From a stored name.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The account sub-status while this check holds the account.
    pub fn sub_status(self) -> &'static str {
        match self {
            Kind::EmailOwnership => "EMAIL_OWNERSHIP",
            Kind::EmailDomain => "EMAIL_DOMAIN",
            Kind::Employment => "EMPLOYMENT_VERIFICATION",
            Kind::Business | Kind::Address => "BUSINESS_VERIFICATION",
        }
    }
}

/// State of a check (stored as its upper-case name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// Running or in review.
    Pending,
    /// Passed.
    Passed,
    /// The account must act.
    ActionRequired,
    /// Failed.
    Rejected,
}

impl CheckState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckState::Pending => "PENDING",
            CheckState::Passed => "PASSED",
            CheckState::ActionRequired => "ACTION_REQUIRED",
            CheckState::Rejected => "REJECTED",
        }
    }

    /// From a stored name.
    pub fn parse(s: &str) -> Option<CheckState> {
        [
            CheckState::Pending,
            CheckState::Passed,
            CheckState::ActionRequired,
            CheckState::Rejected,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// One check as the status sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckView {
    /// What it verifies.
    pub kind: Kind,
    /// Where it stands.
    pub state: CheckState,
    /// Waiting for a reviewer.
    pub in_review: bool,
}

/// The account's status and sub-status from the checks that count (those
/// of open cases, not superseded): REJECTED when one is rejected,
/// AUTHORIZED when all passed, else PENDING at the first check (in
/// sub-status order) not passed — DECISION when all that remain wait for a
/// reviewer. `None` when no check counts (the status stays as it was).
pub fn account_status(checks: &[CheckView]) -> Option<(&'static str, &'static str)> {
    if checks.is_empty() {
        return None;
    }
    let first = |pred: &dyn Fn(&CheckView) -> bool| {
        Kind::ALL
            .into_iter()
            .find(|k| checks.iter().any(|c| c.kind == *k && pred(c)))
    };
    if let Some(kind) = first(&|c| c.state == CheckState::Rejected) {
        return Some(("REJECTED", kind.sub_status()));
    }
    let open: Vec<&CheckView> = checks
        .iter()
        .filter(|c| c.state != CheckState::Passed)
        .collect();
    if open.is_empty() {
        return Some(("AUTHORIZED", "DECISION"));
    }
    if open.iter().all(|c| c.in_review) {
        return Some(("PENDING", "DECISION"));
    }
    let kind = first(&|c| c.state != CheckState::Passed && !c.in_review).unwrap_or(Kind::Business);
    Some(("PENDING", kind.sub_status()))
}

/// The checks a trigger opens. `changed` are the changed fields of a legal
/// profile (`legal_name`, `address`, `primary_contact`); only what changed
/// is checked again. The address check only runs in covered countries.
pub fn checks_for(trigger: &str, changed: &[String], address_covered: bool) -> Vec<Kind> {
    let contact = [Kind::EmailOwnership, Kind::EmailDomain, Kind::Employment];
    let mut kinds = Vec::new();
    match trigger {
        "ENROLLMENT" => {
            kinds.extend(contact);
            kinds.push(Kind::Business);
            if address_covered {
                kinds.push(Kind::Address);
            }
        }
        "LEGAL_PROFILE" => {
            if changed.iter().any(|f| f == "primary_contact") {
                kinds.extend(contact);
            }
            if changed.iter().any(|f| f == "legal_name" || f == "address") {
                kinds.push(Kind::Business);
            }
            // Always on an address change: outside the covered countries the
            // check passes, and it supersedes an older one still open.
            if changed.iter().any(|f| f == "address") {
                kinds.push(Kind::Address);
            }
        }
        "LOCATION" => {
            kinds.push(Kind::Business);
            if address_covered {
                kinds.push(Kind::Address);
            }
        }
        _ => {}
    }
    kinds
}

/// Uploads that may move one check back to review.
pub const MAX_APPEALS: i32 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn c(kind: Kind, state: CheckState) -> CheckView {
        CheckView {
            kind,
            state,
            in_review: false,
        }
    }

    #[test]
    fn status_follows_the_checks() {
        use CheckState::*;
        assert_eq!(account_status(&[]), None);
        assert_eq!(
            account_status(&[c(Kind::EmailOwnership, Passed), c(Kind::Business, Passed)]),
            Some(("AUTHORIZED", "DECISION"))
        );
        assert_eq!(
            account_status(&[
                c(Kind::Business, ActionRequired),
                c(Kind::EmailOwnership, ActionRequired)
            ]),
            Some(("PENDING", "EMAIL_OWNERSHIP"))
        );
        assert_eq!(
            account_status(&[
                c(Kind::EmailOwnership, Passed),
                c(Kind::Employment, ActionRequired),
                c(Kind::Business, Rejected)
            ]),
            Some(("REJECTED", "BUSINESS_VERIFICATION"))
        );
        let review = CheckView {
            kind: Kind::Business,
            state: Pending,
            in_review: true,
        };
        assert_eq!(
            account_status(&[c(Kind::EmailOwnership, Passed), review]),
            Some(("PENDING", "DECISION"))
        );
        assert_eq!(
            account_status(&[c(Kind::EmailOwnership, ActionRequired), review]),
            Some(("PENDING", "EMAIL_OWNERSHIP"))
        );
    }

    #[test]
    fn only_what_changed_is_checked_again() {
        let f = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            checks_for("LEGAL_PROFILE", &f(&["primary_contact"]), true),
            vec![Kind::EmailOwnership, Kind::EmailDomain, Kind::Employment]
        );
        assert_eq!(
            checks_for("LEGAL_PROFILE", &f(&["legal_name"]), true),
            vec![Kind::Business]
        );
        assert_eq!(
            checks_for("LEGAL_PROFILE", &f(&["address"]), true),
            vec![Kind::Business, Kind::Address]
        );
        assert_eq!(
            checks_for("LEGAL_PROFILE", &f(&["address"]), false),
            vec![Kind::Business, Kind::Address]
        );
        assert_eq!(checks_for("ENROLLMENT", &[], false).len(), 4);
        assert_eq!(
            checks_for("LOCATION", &[], true),
            vec![Kind::Business, Kind::Address]
        );
    }
}
