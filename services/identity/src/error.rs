//! Identity's errors and their one mapping to gRPC statuses.

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
    /// The account does not exist or is not the caller's.
    #[error("account not found")]
    AccountNotFound(String),
    /// The account exists but cannot be signed in to.
    #[error("account is {0}")]
    AccountUnavailable(String),
    /// A database failure.
    #[error("database")]
    Database(#[from] sqlx::Error),
    /// Anything else unexpected.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<IdentityError> for Status {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Invalid(v) => error::invalid_argument(v),
            IdentityError::EmailTaken => error::refused(
                Code::AlreadyExists,
                "EMAIL_TAKEN",
                "a user with this email already exists; sign in instead",
            ),
            IdentityError::InvalidCredentials => error::refused(
                Code::Unauthenticated,
                "INVALID_CREDENTIALS",
                "email or password is incorrect",
            ),
            IdentityError::AccountNotFound(name) => error::not_found("account", &name),
            IdentityError::AccountUnavailable(state) => error::failed_precondition(
                "ACCOUNT_UNAVAILABLE",
                "account",
                format!("the account is {state} and cannot be signed in to"),
            ),
            IdentityError::Database(e) => error::from_sqlx(&e),
            IdentityError::Internal(e) => error::internal(e.as_ref()),
        }
    }
}
