//! The authenticated caller of a request, and the one helper that decides
//! whether it may act on an account's resources.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::Arc;

use tonic::{Code, Status};

use super::roles;
use super::token::{Claims, PrincipalKind};

/// Permissions of service accounts start with this and act across accounts.
pub const PLATFORM_PREFIX: &str = "platform.";

/// Who is calling: put in the request extensions by the auth layer. Cheap
/// to clone (shared): the auth layer keeps one per verified token and hands
/// it to every call that presents that token.
#[derive(Debug, Clone)]
pub struct Caller(Arc<Principal>);

/// What a [`Caller`] is (read through the caller: `caller.subject`).
#[derive(Debug)]
pub struct Principal {
    /// User id or service account id.
    pub subject: String,
    /// User or service account.
    pub kind: PrincipalKind,
    /// The active account of a user's token.
    pub account: Option<String>,
    /// Role ids in the active account.
    pub roles: Vec<String>,
    /// Location scopes of scoped roles (role id → location ids).
    pub scopes: BTreeMap<String, Vec<String>>,
    /// The token only allows changing a temporary password.
    pub password_change_required: bool,
    /// Domain of the user's sign-in email (empty for service accounts).
    pub email_domain: String,
    /// Session id of a user's token (`sid`; empty for service accounts).
    pub session: String,
    /// When the token was issued and when it expires (seconds since the
    /// epoch): how long a revocation must be remembered.
    pub issued_at: i64,
    /// See `issued_at`.
    pub expires_at: i64,
    permissions: BTreeSet<String>,
}

impl Deref for Caller {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl Caller {
    /// The caller described by verified claims.
    pub fn from_claims(claims: Claims) -> Self {
        let mut permissions: BTreeSet<String> = roles::permissions_of(&claims.roles)
            .into_iter()
            .map(str::to_owned)
            .collect();
        if claims.kind == PrincipalKind::Service {
            // Only service accounts may carry platform permissions.
            permissions.extend(
                claims
                    .perms
                    .into_iter()
                    .filter(|p| p.starts_with(PLATFORM_PREFIX)),
            );
        }
        Self(Arc::new(Principal {
            subject: claims.sub,
            kind: claims.kind,
            account: claims.acc,
            roles: claims.roles,
            scopes: claims.scopes,
            password_change_required: claims.pcr,
            email_domain: claims.dom,
            session: claims.sid,
            issued_at: claims.iat,
            expires_at: claims.exp,
            permissions,
        }))
    }

    /// Whether the caller holds `permission` (in its active account, or as a
    /// platform permission).
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Whether the caller holds `permission` as a platform permission
    /// (`platform.<permission>`), without building that name.
    pub fn has_platform(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p.strip_prefix(PLATFORM_PREFIX) == Some(permission))
    }

    /// The caller as a resource name: `users/{id}` or `serviceAccounts/{id}`
    /// (the actor of activity logs and events).
    pub fn resource_name(&self) -> String {
        match self.kind {
            PrincipalKind::User => format!("users/{}", self.subject),
            PrincipalKind::Service => format!("serviceAccounts/{}", self.subject),
        }
    }

    /// The caller's user id, if it is a user.
    pub fn user_id(&self) -> Option<&str> {
        (self.kind == PrincipalKind::User).then_some(self.subject.as_str())
    }

    /// Allows the call when the caller may use `permission` on `account_id`
    /// as a whole: a user must be signed in to that very account (otherwise
    /// NOT_FOUND, so another account's resources are not even confirmed to
    /// exist) and hold the permission company-wide, from a role that is not
    /// limited to some locations (otherwise PERMISSION_DENIED: a location
    /// scope never confers an account-wide right); a service account needs
    /// the platform permission `platform.<permission>`. Calls on one
    /// location's own data use [`Caller::require_location`] or
    /// [`Caller::require_in_locations`] instead.
    pub fn require(&self, permission: &str, account_id: &str) -> Result<(), Status> {
        match self.require_in_locations(permission, account_id)? {
            None => Ok(()),
            Some(_) => Err(denied_scoped(permission)),
        }
    }

    /// Whether the caller holds `permission` company-wide in its active
    /// account: from a role without a location scope (a service account's
    /// platform permissions do not count).
    pub fn has_company_wide(&self, permission: &str) -> bool {
        self.kind == PrincipalKind::User
            && self.has(permission)
            && self.locations_for(permission).is_none()
    }

    /// The locations where `permission` applies: `None` when some role grants
    /// it company-wide, else the union of the scopes of the roles that grant
    /// it (empty when none does).
    pub fn locations_for(&self, permission: &str) -> Option<BTreeSet<&str>> {
        let mut scoped = BTreeSet::new();
        for role in &self.roles {
            let grants = roles::find(role).is_some_and(|r| r.permissions.contains(&permission));
            if !grants {
                continue;
            }
            match self.scopes.get(role) {
                Some(locations) if !locations.is_empty() => {
                    scoped.extend(locations.iter().map(String::as_str));
                }
                _ => return None,
            }
        }
        Some(scoped)
    }

    /// For calls on locations' own data (list them, read or change one):
    /// allows the call like [`Caller::require`] but also to a caller who
    /// holds `permission` only for some locations, and says which: `None`
    /// for company-wide (and service accounts with the platform permission),
    /// else the (non-empty) set of locations the caller may act on.
    pub fn require_in_locations(
        &self,
        permission: &str,
        account_id: &str,
    ) -> Result<Option<BTreeSet<&str>>, Status> {
        if self.kind == PrincipalKind::Service {
            let platform = format!("{PLATFORM_PREFIX}{permission}");
            return if self.has(&platform) {
                Ok(None)
            } else {
                Err(denied(&platform))
            };
        }
        if self.account.as_deref() != Some(account_id) {
            return Err(crate::error::not_found(
                "account",
                &format!("accounts/{account_id}"),
            ));
        }
        if !self.has(permission) {
            return Err(denied(permission));
        }
        match self.locations_for(permission) {
            None => Ok(None),
            Some(locations) if !locations.is_empty() => Ok(Some(locations)),
            // Held, yet by no known role: fail closed.
            Some(_) => Err(denied(permission)),
        }
    }

    /// Allows a call on the location `location` of `account_id`: the
    /// permission held company-wide, or by a role scoped to that location.
    pub fn require_location(
        &self,
        permission: &str,
        account_id: &str,
        location: &str,
    ) -> Result<(), Status> {
        match self.require_in_locations(permission, account_id)? {
            None => Ok(()),
            Some(locations) if locations.contains(location) => Ok(()),
            Some(_) => Err(denied(&format!("{permission} on location {location}"))),
        }
    }

    /// Allows the call when the caller is a service account holding the
    /// platform permission `permission` (which starts with `platform.`).
    pub fn require_platform(&self, permission: &str) -> Result<(), Status> {
        if self.kind == PrincipalKind::Service
            && permission.starts_with(PLATFORM_PREFIX)
            && self.has(permission)
        {
            Ok(())
        } else {
            Err(denied(permission))
        }
    }

    /// Allows the call when the caller is the user `user_id` itself.
    pub fn require_self(&self, user_id: &str) -> Result<(), Status> {
        if self.user_id() == Some(user_id) {
            Ok(())
        } else {
            Err(crate::error::not_found("user", &format!("users/{user_id}")))
        }
    }
}

/// PERMISSION_DENIED naming the missing permission.
pub fn denied(permission: &str) -> Status {
    crate::error::refused(
        Code::PermissionDenied,
        "PERMISSION_DENIED",
        format!("the caller lacks the permission {permission}"),
    )
}

/// PERMISSION_DENIED for a permission held only for some locations.
fn denied_scoped(permission: &str) -> Status {
    crate::error::refused(
        Code::PermissionDenied,
        "SCOPED_TO_LOCATIONS",
        format!(
            "the caller holds the permission {permission} only for some locations; \
             this call needs it company-wide"
        ),
    )
}

/// The caller of a request, as put there by the auth layer.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
    request.extensions().get::<Caller>().ok_or_else(|| {
        crate::error::refused(
            Code::Unauthenticated,
            "UNAUTHENTICATED",
            "this call needs an access token",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(account: &str, roles: &[&str]) -> Caller {
        Caller::from_claims(Claims {
            iss: String::new(),
            aud: String::new(),
            sub: "u1".into(),
            kind: PrincipalKind::User,
            acc: Some(account.into()),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scopes: BTreeMap::from([("referrals_user".to_owned(), vec!["L1".to_owned()])]),
            pcr: false,
            dom: "contoso.com".into(),
            sid: "s1".into(),
            perms: vec!["platform.profile.legal.read".into()],
            pv: 0,
            iat: 0,
            exp: 0,
            jti: String::new(),
        })
    }

    #[test]
    fn another_accounts_resources_are_not_found() {
        let caller = user("A", &["global_admin"]);
        assert!(caller.require("profile.legal.read", "A").is_ok());
        let err = caller
            .require("profile.legal.read", "B")
            .err()
            .map(|s| s.code());
        assert_eq!(err, Some(Code::NotFound));
    }

    #[test]
    fn location_scoped_roles_act_only_on_their_locations() {
        let scoped = user("A", &["referrals_user"]);
        let perm = super::roles::perm::LOCATIONS_READ;
        assert!(scoped.require_location(perm, "A", "L1").is_ok());
        let err = scoped
            .require_location(perm, "A", "L2")
            .err()
            .map(|s| s.code());
        assert_eq!(err, Some(Code::PermissionDenied));
        assert_eq!(scoped.locations_for(perm), Some(BTreeSet::from(["L1"])));
        // The same permission from an unscoped role applies everywhere.
        let both = user("A", &["referrals_user", "account_admin"]);
        assert!(both.require_location(perm, "A", "L2").is_ok());
        assert_eq!(both.locations_for(perm), None);
    }

    #[test]
    fn a_location_scope_confers_no_account_wide_right() {
        let scoped = user("A", &["referrals_user"]);
        let perm = super::roles::perm::LOCATIONS_READ;
        let err = scoped.require(perm, "A").err().map(|s| s.code());
        assert_eq!(err, Some(Code::PermissionDenied));
        assert!(scoped.has(perm) && !scoped.has_company_wide(perm));
        assert_eq!(
            scoped.require_in_locations(perm, "A").ok().flatten(),
            Some(BTreeSet::from(["L1"]))
        );
        // Another account stays NOT_FOUND, scoped or not.
        let err = scoped
            .require_in_locations(perm, "B")
            .err()
            .map(|s| s.code());
        assert_eq!(err, Some(Code::NotFound));
        // An unscoped grant of the same permission is company-wide.
        let both = user("A", &["referrals_user", "mpn_partner_admin"]);
        assert!(both.require(perm, "A").is_ok() && both.has_company_wide(perm));
    }

    #[test]
    fn missing_permission_is_denied_and_users_cannot_claim_platform_permissions() {
        let caller = user("A", &["report_viewer"]);
        let err = caller
            .require("profile.legal.read", "A")
            .err()
            .map(|s| s.code());
        assert_eq!(err, Some(Code::PermissionDenied));
        assert!(!caller.has("platform.profile.legal.read"));
    }
}
