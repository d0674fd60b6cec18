//! Who may give which role, and the shape of role assignments.

use std::collections::{BTreeMap, BTreeSet};

use partnerhub_platform::auth::roles;
use partnerhub_platform::validate::Violations;
use partnerhub_proto::identity::v1::RoleAssignment;

/// Checks a list of assignments: known roles, each once, locations only on
/// location-scopable roles.
pub fn check_assignments(field: &str, assignments: &[RoleAssignment], v: &mut Violations) {
    if assignments.is_empty() {
        v.add(field, "at least one role is required");
    }
    let mut seen = BTreeSet::new();
    for (i, a) in assignments.iter().enumerate() {
        let at = format!("{field}[{i}]");
        match roles::find(&a.role) {
            None => v.add(
                format!("{at}.role"),
                format!("unknown role {:?}; see ListRoles", a.role),
            ),
            Some(role) => {
                if !seen.insert(role.id) {
                    v.add(format!("{at}.role"), format!("{} is listed twice", role.id));
                }
                if !a.locations.is_empty() && !role.location_scopable {
                    v.add(
                        format!("{at}.locations"),
                        format!("{} cannot be limited to locations", role.id),
                    );
                }
            }
        }
        for (j, location) in a.locations.iter().enumerate() {
            if uuid::Uuid::try_parse(location).is_err() {
                v.add(format!("{at}.locations[{j}]"), "must be a location id");
            }
        }
    }
}

/// Role ids of assignments.
pub fn role_ids(assignments: &[RoleAssignment]) -> Vec<String> {
    assignments.iter().map(|a| a.role.clone()).collect()
}

/// Location scopes of assignments (only roles limited to locations).
pub fn scopes(assignments: &[RoleAssignment]) -> BTreeMap<String, Vec<String>> {
    assignments
        .iter()
        .filter(|a| !a.locations.is_empty())
        .map(|a| (a.role.clone(), a.locations.clone()))
        .collect()
}

/// Assignments from stored roles and scopes.
pub fn assignments(
    role_ids: &[String],
    scopes: &BTreeMap<String, Vec<String>>,
) -> Vec<RoleAssignment> {
    role_ids
        .iter()
        .map(|r| RoleAssignment {
            role: r.clone(),
            locations: scopes.get(r).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Permissions over payout and tax numbers: bank and tax numbers unmasked,
/// payout and tax profiles changed (where payouts go). A role carrying one
/// is granted (or taken) by a Global admin only.
pub const SENSITIVE_PERMISSIONS: &[&str] = &[
    roles::perm::PAYOUT_SENSITIVE_READ,
    roles::perm::PAYOUT_WRITE,
];

/// Why a role may not be given or taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The role's `assignable_by` does not name any of the actor's roles.
    NotAssignable(String),
    /// The role carries a permission the actor does not hold.
    NotHeld {
        /// The role.
        role: String,
        /// The first permission of it the actor lacks.
        permission: String,
    },
    /// The role carries payout or tax numbers: Global admins only.
    Sensitive(String),
}

impl Refusal {
    /// The role refused.
    pub fn role(&self) -> &str {
        match self {
            Self::NotAssignable(r) | Self::Sensitive(r) | Self::NotHeld { role: r, .. } => r,
        }
    }

    /// For a field violation.
    pub fn describe(&self) -> String {
        match self {
            Self::NotAssignable(r) => format!("your roles may not assign {r}"),
            Self::NotHeld { role, permission } => {
                format!("{role} carries {permission}, which you do not hold")
            }
            Self::Sensitive(r) => {
                format!("{r} carries bank or tax numbers: only a Global admin grants it")
            }
        }
    }
}

/// The roles of an actor that count as held for granting: only roles that
/// apply company-wide (a role limited to some locations confers no right to
/// hand out a company-wide role).
pub fn unscoped_roles(roles: &[String], scopes: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    roles
        .iter()
        .filter(|r| scopes.get(*r).is_none_or(Vec::is_empty))
        .cloned()
        .collect()
}

/// The first role in the change from `old` to `new` (added, removed or
/// re-scoped) that `actor_roles` may not give or take, with why.
///
/// Grant only what you hold: the actor's roles must name the role in its
/// `assignable_by`, the actor must hold every permission the role carries
/// (a Global admin holds all), and a role carrying a sensitive permission
/// is for Global admins only.
pub fn forbidden_change(
    actor_roles: &[String],
    old: &[RoleAssignment],
    new: &[RoleAssignment],
) -> Option<Refusal> {
    let before: BTreeMap<&str, BTreeSet<&str>> = old
        .iter()
        .map(|a| {
            (
                a.role.as_str(),
                a.locations.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let after: BTreeMap<&str, BTreeSet<&str>> = new
        .iter()
        .map(|a| {
            (
                a.role.as_str(),
                a.locations.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    let changed = before
        .keys()
        .chain(after.keys())
        .filter(|r| before.get(*r) != after.get(*r));
    for role in changed {
        if let Some(refusal) = may_not_grant(actor_roles, role) {
            return Some(refusal);
        }
    }
    None
}

/// Whether a holder of `actor_roles` may give or take `role` (`None`) or
/// why not.
pub fn may_not_grant(actor_roles: &[String], role: &str) -> Option<Refusal> {
    let Some(r) = roles::find(role) else {
        return Some(Refusal::NotAssignable(role.to_owned()));
    };
    let global = actor_roles.iter().any(|a| a == "global_admin");
    if !r
        .assignable_by
        .iter()
        .any(|by| actor_roles.iter().any(|a| a == by))
    {
        return Some(Refusal::NotAssignable(role.to_owned()));
    }
    if global {
        return None;
    }
    if r.permissions
        .iter()
        .any(|p| SENSITIVE_PERMISSIONS.contains(p))
    {
        return Some(Refusal::Sensitive(role.to_owned()));
    }
    let held = roles::permissions_of(actor_roles);
    r.permissions
        .iter()
        .find(|p| !held.contains(*p))
        .map(|p| Refusal::NotHeld {
            role: role.to_owned(),
            permission: (*p).to_owned(),
        })
}

/// Whether a holder of `actor_roles` may give or take `role`.
pub fn may_assign(actor_roles: &[String], role: &str) -> bool {
    may_not_grant(actor_roles, role).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(role: &str) -> RoleAssignment {
        RoleAssignment {
            role: role.into(),
            locations: vec![],
        }
    }

    fn refused(actor: &[String], old: &[RoleAssignment], new: &[RoleAssignment]) -> Option<String> {
        forbidden_change(actor, old, new).map(|r| r.role().to_owned())
    }

    #[test]
    fn a_role_is_granted_only_by_who_holds_all_its_permissions() {
        let aa = vec!["account_admin".to_owned()];
        // Account admin may assign incentives_admin by family, but it
        // carries payout numbers: sensitive.
        assert_eq!(
            forbidden_change(&aa, &[], &[a("incentives_admin")]),
            Some(Refusal::Sensitive("incentives_admin".into()))
        );
        // Business profile admin's permissions are all the Account admin's.
        assert_eq!(
            forbidden_change(&aa, &[], &[a("business_profile_admin")]),
            None
        );
        let manager = vec!["manager".to_owned()];
        assert_eq!(
            forbidden_change(&manager, &[], &[a("financial_contributor")]),
            Some(Refusal::Sensitive("financial_contributor".into()))
        );
        assert_eq!(forbidden_change(&manager, &[], &[a("marketer")]), None);
        let uma = vec!["user_management_admin".to_owned()];
        assert_eq!(
            forbidden_change(&uma, &[], &[a("sales_agent")]),
            Some(Refusal::NotHeld {
                role: "sales_agent".into(),
                permission: roles::perm::PROGRAMS_READ.into()
            })
        );
        // Taking a sensitive role away is also for Global admins only.
        assert_eq!(
            forbidden_change(&aa, &[a("incentives_admin")], &[]),
            Some(Refusal::Sensitive("incentives_admin".into()))
        );
        // An Owner holds every permission but is no Global admin.
        let owner = vec!["owner".to_owned()];
        assert_eq!(
            forbidden_change(&owner, &[], &[a("financial_contributor")]),
            Some(Refusal::Sensitive("financial_contributor".into()))
        );
        assert_eq!(forbidden_change(&owner, &[], &[a("developer")]), None);
        let ga = vec!["global_admin".to_owned()];
        assert_eq!(
            forbidden_change(
                &ga,
                &[],
                &[a("incentives_admin"), a("financial_contributor")]
            ),
            None
        );
    }

    #[test]
    fn location_scoped_roles_do_not_count_as_held() {
        let roles = vec!["account_admin".to_owned(), "referrals_admin".to_owned()];
        let scopes = BTreeMap::from([("referrals_admin".to_owned(), vec!["l1".to_owned()])]);
        assert_eq!(unscoped_roles(&roles, &scopes), ["account_admin"]);
        assert_eq!(unscoped_roles(&roles, &BTreeMap::new()), roles);
    }

    #[test]
    fn only_global_admins_give_privileged_roles() {
        let uma = vec!["user_management_admin".to_owned()];
        assert_eq!(
            refused(&uma, &[], &[a("global_admin")]),
            Some("global_admin".into())
        );
        assert_eq!(
            refused(&uma, &[a("compliance_admin")], &[]),
            Some("compliance_admin".into())
        );
        // A User management admin holds no billing permission: it may not
        // hand one out.
        assert_eq!(
            refused(&uma, &[], &[a("billing_admin")]),
            Some("billing_admin".into())
        );
        assert_eq!(refused(&uma, &[], &[a("helpdesk_agent")]), None);
        let ga = vec!["global_admin".to_owned()];
        assert_eq!(
            refused(&ga, &[], &[a("global_admin"), a("compliance_admin")]),
            None
        );
    }

    #[test]
    fn account_admins_give_partner_roles_only() {
        let aa = vec!["account_admin".to_owned()];
        assert_eq!(refused(&aa, &[], &[a("referrals_admin")]), None);
        assert_eq!(
            refused(&aa, &[], &[a("billing_admin")]),
            Some("billing_admin".into())
        );
        // Unchanged roles need no authority.
        assert_eq!(
            refused(
                &aa,
                &[a("global_admin")],
                &[a("global_admin"), a("report_viewer")]
            ),
            None
        );
    }

    #[test]
    fn assignments_are_checked() {
        let mut v = Violations::new();
        let scoped = RoleAssignment {
            role: "billing_admin".into(),
            locations: vec!["not-a-location".into()],
        };
        check_assignments(
            "roles",
            &[a("nope"), a("owner"), a("owner"), scoped],
            &mut v,
        );
        let fields: Vec<_> = v.into_vec().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                "roles[0].role",
                "roles[2].role",
                "roles[3].locations",
                "roles[3].locations[0]"
            ]
        );
    }
}
