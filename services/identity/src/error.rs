//! Identity's errors and their one mapping to gRPC statuses.

use std::time::Duration;

use partnerhub_platform::error::{self, FieldViolation};
use tonic::{Code, Status};

/// Everything an identity call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The request is invalid.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// The email is already a user's sign-in name.
    #[error("email already registered")]
    EmailTaken,
    /// Unknown email or wrong password (one answer for both).
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many failed sign-ins for this email.
    #[error("locked out")]
    LockedOut(Duration),
    /// An invalid, expired or spent refresh token.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// An invalid, expired or spent one-time token (`field` names it).
    #[error("invalid token")]
    InvalidToken(&'static str),
    /// A resource does not exist (or is not the caller's).
    #[error("{kind} {name} not found")]
    NotFound {
        /// Resource type.
        kind: &'static str,
        /// Resource name.
        name: String,
    },
    /// The account exists but cannot be used.
    #[error("account is {0}")]
    AccountUnavailable(String),
    /// The caller may not give or take this role.
    #[error("may not assign {0}")]
    RoleNotAssignable(String),
    /// The role carries a permission the caller does not hold.
    #[error("may not grant {role}: lacks {permission}")]
    RoleNotHeld {
        /// The role.
        role: String,
        /// The permission the caller lacks.
        permission: String,
    },
    /// The role carries payout or tax numbers: Global admins only.
    #[error("sensitive role {0}")]
    SensitiveRole(String),
    /// Nobody changes their own roles.
    #[error("own roles")]
    SelfRoleChange,
    /// Would leave the account without a Global admin.
    #[error("last global admin")]
    LastGlobalAdmin,
    /// Only a Global admin resets a Global admin's password.
    #[error("global admin password")]
    GlobalAdminPassword,
    /// The target user belongs to another account's directory.
    #[error("other directory")]
    OtherDirectory,
    /// The request cannot apply in the resource's state.
    #[error("{reason}: {message}")]
    Precondition {
        /// UPPER_SNAKE reason.
        reason: &'static str,
        /// What the caller should know.
        message: String,
    },
    /// A status from a platform helper (auth, etag, idempotency).
    #[error(transparent)]
    Status(#[from] Status),
    /// A database failure.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl IdentityError {
    /// One field violation.
    pub fn field(field: &str, description: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, description)])
    }

    /// NOT_FOUND of a resource.
    pub fn not_found(kind: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            name: name.into(),
        }
    }
}

impl From<crate::domain::authority::Refusal> for IdentityError {
    fn from(r: crate::domain::authority::Refusal) -> Self {
        use crate::domain::authority::Refusal as R;
        match r {
            R::NotAssignable(role) => Self::RoleNotAssignable(role),
            R::NotHeld { role, permission } => Self::RoleNotHeld { role, permission },
            R::Sensitive(role) => Self::SensitiveRole(role),
        }
    }
}

impl From<IdentityError> for Status {
    fn from(e: IdentityError) -> Self {
        use IdentityError as E;
        let denied =
            |reason: &str, message: &str| error::refused(Code::PermissionDenied, reason, message);
        match e {
            E::Invalid(v) => error::invalid_argument(v),
            E::EmailTaken => error::refused(
                Code::AlreadyExists,
                "EMAIL_TAKEN",
                "a user with this email already exists",
            ),
            E::InvalidCredentials => error::refused(
                Code::Unauthenticated,
                "INVALID_CREDENTIALS",
                "email or password is incorrect",
            ),
            E::LockedOut(wait) => error::rate_limited(
                "SIGN_IN_LOCKED",
                format!(
                    "too many failed sign-ins; try again in {} s",
                    wait.as_secs().max(1)
                ),
                wait,
            ),
            E::InvalidRefreshToken => error::refused(
                Code::Unauthenticated,
                "INVALID_REFRESH_TOKEN",
                "the refresh token is invalid, expired or already used; sign in again",
            ),
            E::InvalidToken(field) => error::invalid_argument(vec![FieldViolation::new(
                field,
                "is invalid, expired or already used",
            )]),
            E::NotFound { kind, name } => error::not_found(kind, &name),
            E::AccountUnavailable(state) => error::failed_precondition(
                "ACCOUNT_UNAVAILABLE",
                "account",
                format!("the account is {state} and cannot be signed in to"),
            ),
            E::RoleNotAssignable(role) => denied(
                "ROLE_NOT_ASSIGNABLE",
                &format!("your roles may not assign or remove the role {role}"),
            ),
            E::RoleNotHeld { role, permission } => denied(
                "ROLE_NOT_HELD",
                &format!(
                    "the role {role} carries the permission {permission}, which you do not hold: \
                     only someone who holds every permission of a role grants or removes it"
                ),
            ),
            E::SensitiveRole(role) => denied(
                "SENSITIVE_ROLE",
                &format!(
                    "the role {role} carries bank or tax numbers: only a Global admin grants or removes it"
                ),
            ),
            E::SelfRoleChange => denied(
                "SELF_ROLE_CHANGE",
                "nobody changes their own roles: another admin of the account must",
            ),
            E::LastGlobalAdmin => error::failed_precondition(
                "LAST_GLOBAL_ADMIN",
                "global_admin",
                "an account keeps at least one Global admin: add another one first",
            ),
            E::GlobalAdminPassword => denied(
                "GLOBAL_ADMIN_PASSWORD",
                "only a Global admin may reset a Global admin's password",
            ),
            E::OtherDirectory => denied(
                "OTHER_DIRECTORY",
                "this user belongs to another account's directory; an admin of that directory manages them",
            ),
            E::Precondition { reason, message } => {
                error::failed_precondition(reason, "request", message)
            }
            E::Status(status) => status,
            E::Database(e) => error::from_sqlx(&e),
            E::Internal(e) => error::internal(e.as_ref()),
        }
    }
}

/// Result of identity's operations.
pub type Result<T, E = IdentityError> = std::result::Result<T, E>;
