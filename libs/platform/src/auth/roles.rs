//! The role table: every role, its family and the permissions it grants. This
//! is the one place roles are defined; identity serves it and every service
//! checks permissions against it.

use std::collections::BTreeSet;

/// The family a role belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Directory (tenant) roles.
    Directory,
    /// Cloud Solution Provider roles.
    Csp,
    /// Partner (non-directory) company roles.
    Partner,
    /// Developer program roles.
    Developer,
}

/// One role.
#[derive(Debug)]
pub struct Role {
    /// Stable id, used in tokens and APIs (`global_admin`).
    pub id: &'static str,
    /// Name shown to people.
    pub display_name: &'static str,
    /// Family.
    pub family: Family,
    /// Permissions it grants (`area.resource.verb`).
    pub permissions: &'static [&'static str],
    /// Roles whose holders may assign or remove it.
    pub assignable_by: &'static [&'static str],
    /// Whether it can be limited to some locations.
    pub location_scopable: bool,
}

/// Permissions. `read` sees, `write` changes.
pub mod perm {
    /// Read the account.
    pub const ACCOUNTS_READ: &str = "identity.accounts.read";
    /// Read members and their roles.
    pub const MEMBERS_READ: &str = "identity.members.read";
    /// Create and invite users.
    pub const MEMBERS_CREATE: &str = "identity.members.create";
    /// Change members' roles and remove members (which roles is decided by
    /// each role's `assignable_by`).
    pub const MEMBERS_WRITE: &str = "identity.members.write";
    /// Reset members' passwords (another Global admin's only as Global admin).
    pub const MEMBERS_RESET_PASSWORD: &str = "identity.members.reset_password";
    /// Read the activity log.
    pub const ACTIVITY_READ: &str = "identity.activity.read";
    /// Read the legal profile.
    pub const LEGAL_READ: &str = "profile.legal.read";
    /// Change the legal profile.
    pub const LEGAL_WRITE: &str = "profile.legal.write";
    /// Change the security contact.
    pub const SECURITY_CONTACT_WRITE: &str = "profile.security_contact.write";
    /// Read locations.
    pub const LOCATIONS_READ: &str = "profile.locations.read";
    /// Add, change and delete locations.
    pub const LOCATIONS_WRITE: &str = "profile.locations.write";
    /// Read tenants.
    pub const TENANTS_READ: &str = "profile.tenants.read";
    /// Associate and remove tenants.
    pub const TENANTS_WRITE: &str = "profile.tenants.write";
    /// Read company, support and business profiles.
    pub const COMPANY_READ: &str = "profile.company.read";
    /// Change company and support profiles.
    pub const COMPANY_WRITE: &str = "profile.company.write";
    /// Read the billing profile.
    pub const BILLING_READ: &str = "profile.billing.read";
    /// Change the billing profile.
    pub const BILLING_WRITE: &str = "profile.billing.write";
    /// Change tax and VAT ids.
    pub const TAX_IDS_WRITE: &str = "profile.tax_ids.write";
    /// Read payout and tax profiles (masked).
    pub const PAYOUT_READ: &str = "profile.payout.read";
    /// Change payout and tax profiles.
    pub const PAYOUT_WRITE: &str = "profile.payout.write";
    /// See bank and tax numbers unmasked.
    pub const PAYOUT_SENSITIVE_READ: &str = "profile.payout.sensitive.read";
    /// Read programs and agreements.
    pub const PROGRAMS_READ: &str = "profile.programs.read";
    /// Enroll in programs and accept agreements.
    pub const PROGRAMS_WRITE: &str = "profile.programs.write";
    /// Accept the partner agreement.
    pub const PARTNER_AGREEMENT_ACCEPT: &str = "profile.partner_agreement.accept";
    /// Read the verification status and checks.
    pub const VERIFICATION_READ: &str = "verification.status.read";
    /// Upload verification documents and appeal.
    pub const VERIFICATION_WRITE: &str = "verification.documents.write";
    /// Read merge invitations.
    pub const MERGE_READ: &str = "merge.invitations.read";
    /// Start, answer and confirm merges.
    pub const MERGE_WRITE: &str = "merge.invitations.write";
    /// Read the record of mail deliveries of the account.
    pub const DELIVERIES_READ: &str = "notification.deliveries.read";
}

use perm::*;

const EVERYTHING: &[&str] = &[
    ACCOUNTS_READ,
    MEMBERS_READ,
    MEMBERS_CREATE,
    MEMBERS_WRITE,
    MEMBERS_RESET_PASSWORD,
    ACTIVITY_READ,
    LEGAL_READ,
    LEGAL_WRITE,
    SECURITY_CONTACT_WRITE,
    LOCATIONS_READ,
    LOCATIONS_WRITE,
    TENANTS_READ,
    TENANTS_WRITE,
    COMPANY_READ,
    COMPANY_WRITE,
    BILLING_READ,
    BILLING_WRITE,
    TAX_IDS_WRITE,
    PAYOUT_READ,
    PAYOUT_WRITE,
    PAYOUT_SENSITIVE_READ,
    PROGRAMS_READ,
    PROGRAMS_WRITE,
    PARTNER_AGREEMENT_ACCEPT,
    VERIFICATION_READ,
    VERIFICATION_WRITE,
    MERGE_READ,
    MERGE_WRITE,
    DELIVERIES_READ,
];

const GLOBAL_ONLY: &[&str] = &["global_admin"];
const DIRECTORY_ADMINS: &[&str] = &["global_admin", "user_management_admin"];
const PARTNER_ADMINS: &[&str] = &["global_admin", "account_admin"];
const OWNERS: &[&str] = &["global_admin", "owner"];
const DEVELOPER_ADMINS: &[&str] = &["global_admin", "owner", "manager"];

/// Every role of partnerhub.
pub const ROLES: &[Role] = &[
    Role {
        id: "global_admin",
        display_name: "Global admin",
        family: Family::Directory,
        permissions: EVERYTHING,
        assignable_by: GLOBAL_ONLY,
        location_scopable: false,
    },
    Role {
        id: "user_management_admin",
        display_name: "User management admin",
        family: Family::Directory,
        permissions: &[
            ACCOUNTS_READ,
            MEMBERS_READ,
            MEMBERS_CREATE,
            MEMBERS_WRITE,
            MEMBERS_RESET_PASSWORD,
            ACTIVITY_READ,
        ],
        assignable_by: DIRECTORY_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "admin_agent",
        display_name: "Admin agent",
        family: Family::Csp,
        permissions: &[ACCOUNTS_READ, BILLING_READ, TAX_IDS_WRITE, PROGRAMS_READ],
        assignable_by: DIRECTORY_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "sales_agent",
        display_name: "Sales agent",
        family: Family::Csp,
        permissions: &[ACCOUNTS_READ, PROGRAMS_READ],
        assignable_by: DIRECTORY_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "helpdesk_agent",
        display_name: "Helpdesk agent",
        family: Family::Csp,
        permissions: &[ACCOUNTS_READ],
        assignable_by: DIRECTORY_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "billing_admin",
        display_name: "Billing admin",
        family: Family::Csp,
        permissions: &[ACCOUNTS_READ, BILLING_READ, BILLING_WRITE, TAX_IDS_WRITE],
        assignable_by: DIRECTORY_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "account_admin",
        display_name: "Account admin",
        family: Family::Partner,
        permissions: &[
            ACCOUNTS_READ,
            MEMBERS_READ,
            MEMBERS_WRITE,
            LEGAL_READ,
            LEGAL_WRITE,
            LOCATIONS_READ,
            LOCATIONS_WRITE,
            TENANTS_READ,
            COMPANY_READ,
            COMPANY_WRITE,
            BILLING_READ,
            PROGRAMS_READ,
            PROGRAMS_WRITE,
            VERIFICATION_READ,
            MERGE_READ,
            MERGE_WRITE,
            DELIVERIES_READ,
        ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "mpn_partner_admin",
        display_name: "MPN partner admin",
        family: Family::Partner,
        permissions: &[
            ACCOUNTS_READ,
            MEMBERS_READ,
            LEGAL_READ,
            COMPANY_READ,
            LOCATIONS_READ,
            PROGRAMS_READ,
        ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "business_profile_admin",
        display_name: "Business profile admin",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ, COMPANY_READ, COMPANY_WRITE],
        assignable_by: PARTNER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "referrals_admin",
        display_name: "Referrals admin",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ, COMPANY_READ, COMPANY_WRITE, LOCATIONS_READ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: true,
    },
    Role {
        id: "referrals_user",
        display_name: "Referrals user",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ, LOCATIONS_READ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: true,
    },
    Role {
        id: "incentives_admin",
        display_name: "Incentives admin",
        family: Family::Partner,
        permissions: &[
            ACCOUNTS_READ,
            PAYOUT_READ,
            PAYOUT_WRITE,
            PAYOUT_SENSITIVE_READ,
            LOCATIONS_READ,
        ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: true,
    },
    Role {
        id: "incentives_user",
        display_name: "Incentives user",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ, PAYOUT_READ, LOCATIONS_READ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: true,
    },
    Role {
        id: "compliance_admin",
        display_name: "Compliance admin",
        family: Family::Partner,
        permissions: &[
            ACCOUNTS_READ,
            LEGAL_READ,
            LEGAL_WRITE,
            VERIFICATION_READ,
            VERIFICATION_WRITE,
        ],
        assignable_by: GLOBAL_ONLY,
        location_scopable: false,
    },
    Role {
        id: "executive_report_viewer",
        display_name: "Executive report viewer",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "report_viewer",
        display_name: "Report viewer",
        family: Family::Partner,
        permissions: &[ACCOUNTS_READ],
        assignable_by: PARTNER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "owner",
        display_name: "Owner",
        family: Family::Developer,
        permissions: EVERYTHING,
        assignable_by: OWNERS,
        location_scopable: false,
    },
    Role {
        id: "manager",
        display_name: "Manager",
        family: Family::Developer,
        permissions: &[
            ACCOUNTS_READ,
            MEMBERS_READ,
            MEMBERS_CREATE,
            MEMBERS_WRITE,
            TENANTS_READ,
            TENANTS_WRITE,
            LEGAL_READ,
            COMPANY_READ,
            PROGRAMS_READ,
        ],
        assignable_by: DEVELOPER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "developer",
        display_name: "Developer",
        family: Family::Developer,
        permissions: &[ACCOUNTS_READ, PROGRAMS_READ],
        assignable_by: DEVELOPER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "business_contributor",
        display_name: "Business contributor",
        family: Family::Developer,
        permissions: &[ACCOUNTS_READ, PROGRAMS_READ],
        assignable_by: DEVELOPER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "financial_contributor",
        display_name: "Financial contributor",
        family: Family::Developer,
        permissions: &[
            ACCOUNTS_READ,
            PAYOUT_READ,
            PAYOUT_WRITE,
            PAYOUT_SENSITIVE_READ,
        ],
        assignable_by: DEVELOPER_ADMINS,
        location_scopable: false,
    },
    Role {
        id: "marketer",
        display_name: "Marketer",
        family: Family::Developer,
        permissions: &[ACCOUNTS_READ, COMPANY_READ],
        assignable_by: DEVELOPER_ADMINS,
        location_scopable: false,
    },
];

/// The roles given to the user who signs up and creates an account.
pub const FOUNDER_ROLES: &[&str] = &["global_admin", "admin_agent", "owner"];

/// Looks a role up by id.
pub fn find(id: &str) -> Option<&'static Role> {
    ROLES.iter().find(|r| r.id == id)
}

/// The union of the permissions of `roles`; unknown role ids grant nothing.
pub fn permissions_of<S: AsRef<str>>(roles: &[S]) -> BTreeSet<&'static str> {
    roles
        .iter()
        .filter_map(|r| find(r.as_ref()))
        .flat_map(|r| r.permissions.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_ids_are_unique() {
        let ids: BTreeSet<_> = ROLES.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), ROLES.len());
    }

    #[test]
    fn every_granted_permission_is_known() {
        for role in ROLES {
            for p in role.permissions {
                assert!(EVERYTHING.contains(p), "{} grants unknown {p}", role.id);
            }
        }
    }

    #[test]
    fn every_role_is_assignable_by_known_roles() {
        for role in ROLES {
            assert!(
                !role.assignable_by.is_empty(),
                "{} cannot be assigned",
                role.id
            );
            for by in role.assignable_by {
                assert!(find(by).is_some(), "{} assignable by unknown {by}", role.id);
            }
        }
        assert_eq!(
            find("global_admin").map(|r| r.assignable_by),
            Some(GLOBAL_ONLY)
        );
        assert_eq!(
            find("compliance_admin").map(|r| r.assignable_by),
            Some(GLOBAL_ONLY)
        );
    }

    #[test]
    fn founder_roles_exist_and_unknown_roles_grant_nothing() {
        for id in FOUNDER_ROLES {
            assert!(find(id).is_some());
        }
        assert!(permissions_of(&["no_such_role"]).is_empty());
        assert!(permissions_of(&["global_admin"]).contains(perm::MERGE_WRITE));
        assert!(!permissions_of(&["mpn_partner_admin"]).contains(perm::MEMBERS_WRITE));
    }
}
