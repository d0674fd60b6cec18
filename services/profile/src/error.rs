//! Profile's errors and their one mapping to gRPC statuses.

use partnerhub_platform::error::{self, FieldViolation};
use tonic::{Code, Status};

/// Everything a profile call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The request is invalid.
    #[error("invalid request")]
    Invalid(Vec<FieldViolation>),
    /// The account has not enrolled.
    #[error("not enrolled")]
    NotEnrolled(String),
    /// The account has enrolled already.
    #[error("already enrolled")]
    AlreadyEnrolled,
    /// A resource does not exist (or is not the caller's).
    #[error("{kind} {name} not found")]
    NotFound {
        /// Resource type.
        kind: &'static str,
        /// Resource name.
        name: String,
    },
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

impl ProfileError {
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

    /// FAILED_PRECONDITION with a reason.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Precondition {
            reason,
            message: message.into(),
        }
    }
}

impl From<ProfileError> for Status {
    fn from(e: ProfileError) -> Self {
        use ProfileError as E;
        match e {
            E::Invalid(v) => error::invalid_argument(v),
            E::NotEnrolled(name) => error::refused(
                Code::NotFound,
                "NOT_ENROLLED",
                format!("{name} does not exist: the account has not enrolled yet"),
            ),
            E::AlreadyEnrolled => error::refused(
                Code::AlreadyExists,
                "ALREADY_ENROLLED",
                "the account has enrolled already; update its legal profile instead",
            ),
            E::NotFound { kind, name } => error::not_found(kind, &name),
            E::Precondition { reason, message } => {
                error::failed_precondition(reason, "request", message)
            }
            E::Status(status) => status,
            E::Database(e) => error::from_sqlx(&e),
            E::Internal(e) => error::internal(e.as_ref()),
        }
    }
}

/// Result of profile's operations.
pub type Result<T, E = ProfileError> = std::result::Result<T, E>;
