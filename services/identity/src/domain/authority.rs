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

/// The first role in the change from `old` to `new` (added, removed or
/// re-scoped) that `actor_roles` may not assign, if any.
pub fn forbidden_change(
    actor_roles: &[String],
    old: &[RoleAssignment],
    new: &[RoleAssignment],
) -> Option<String> {
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
        if !may_assign(actor_roles, role) {
            return Some((*role).to_owned());
        }
    }
    None
}

/// Whether a holder of `actor_roles` may give or take `role`.
pub fn may_assign(actor_roles: &[String], role: &str) -> bool {
    roles::find(role).is_some_and(|r| {
        r.assignable_by
            .iter()
            .any(|by| actor_roles.iter().any(|a| a == by))
    })
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

    #[test]
    fn only_global_admins_give_privileged_roles() {
        let uma = vec!["user_management_admin".to_owned()];
        assert_eq!(
            forbidden_change(&uma, &[], &[a("global_admin")]),
            Some("global_admin".into())
        );
        assert_eq!(
            forbidden_change(&uma, &[a("compliance_admin")], &[]),
            Some("compliance_admin".into())
        );
        assert_eq!(forbidden_change(&uma, &[], &[a("billing_admin")]), None);
        let ga = vec!["global_admin".to_owned()];
        assert_eq!(
            forbidden_change(&ga, &[], &[a("global_admin"), a("compliance_admin")]),
            None
        );
    }

    #[test]
    fn account_admins_give_partner_roles_only() {
        let aa = vec!["account_admin".to_owned()];
        assert_eq!(forbidden_change(&aa, &[], &[a("referrals_admin")]), None);
        assert_eq!(
            forbidden_change(&aa, &[], &[a("billing_admin")]),
            Some("billing_admin".into())
        );
        // Unchanged roles need no authority.
        assert_eq!(
            forbidden_change(
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
