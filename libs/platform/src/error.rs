//! One way to turn a service error into a `tonic::Status` with google.rpc
//! details: every field violation in one `BadRequest`, an `ErrorInfo` with an
//! UPPER_SNAKE reason, and `ResourceInfo`, `PreconditionFailure` or
//! `RetryInfo` where they help. Internal causes are logged with their chain and
//! an incident id; the client sees only the id.

use std::collections::HashMap;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every partnerhub error.
pub const ERROR_DOMAIN: &str = "partnerhub";

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field in the request, `snake_case`, dotted for nested
    /// fields (`address.postal_code`), indexed for lists (`emails[2]`).
    pub field: String,
    /// What is wrong and what would be right.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// INVALID_ARGUMENT listing every violation (reason `INVALID_ARGUMENT`).
pub fn invalid_argument(violations: Vec<FieldViolation>) -> Status {
    let message = match violations.as_slice() {
        [one] => format!("{}: {}", one.field, one.description),
        many => format!("{} fields are invalid", many.len()),
    };
    let mut details = ErrorDetails::new();
    details.set_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
    for v in violations {
        details.add_bad_request_violation(v.field, v.description);
    }
    Status::with_error_details(Code::InvalidArgument, message, details)
}

/// NOT_FOUND for a resource, also used for resources of another account so
/// that their existence is not revealed.
pub fn not_found(resource_type: &str, resource_name: &str) -> Status {
    let mut details = ErrorDetails::new();
    details
        .set_error_info("NOT_FOUND", ERROR_DOMAIN, HashMap::new())
        .set_resource_info(resource_type, resource_name, "", "not found");
    Status::with_error_details(
        Code::NotFound,
        format!("{resource_type} {resource_name} not found"),
        details,
    )
}

/// A coded refusal: `code` with an `ErrorInfo` whose reason is `reason`.
pub fn refused(code: Code, reason: &str, message: impl Into<String>) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, HashMap::new());
    Status::with_error_details(code, message, details)
}

/// FAILED_PRECONDITION naming the state that forbids the call.
pub fn failed_precondition(reason: &str, subject: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    let mut details = ErrorDetails::new();
    details
        .set_error_info(reason, ERROR_DOMAIN, HashMap::new())
        .add_precondition_failure_violation(reason, subject, description.clone());
    Status::with_error_details(Code::FailedPrecondition, description, details)
}

/// ABORTED because the caller's etag is stale.
pub fn etag_mismatch(resource_name: &str) -> Status {
    refused(
        Code::Aborted,
        "ETAG_MISMATCH",
        format!("{resource_name} changed since it was read; read it again and retry"),
    )
}

/// RESOURCE_EXHAUSTED with the delay after which a retry may succeed.
pub fn rate_limited(reason: &str, message: impl Into<String>, retry_after: Duration) -> Status {
    let mut details = ErrorDetails::new();
    details
        .set_error_info(reason, ERROR_DOMAIN, HashMap::new())
        .set_retry_info(Some(retry_after));
    Status::with_error_details(Code::ResourceExhausted, message, details)
}

/// INTERNAL: logs the cause with its whole chain under a fresh incident id and
/// returns only that id to the client.
pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Status {
    let incident = uuid::Uuid::new_v4();
    tracing::error!(%incident, error = %ErrorChain(cause), "Request failed with an internal error.");
    refused(
        Code::Internal,
        "INTERNAL",
        format!("internal error (incident {incident})"),
    )
}

/// UNAVAILABLE: a dependency (database, broker, other service) is down; the
/// call may be retried. The cause is logged, not returned.
pub fn unavailable(cause: &(dyn std::error::Error + 'static)) -> Status {
    tracing::warn!(error = %ErrorChain(cause), "Request failed: a dependency is unavailable.");
    refused(
        Code::Unavailable,
        "UNAVAILABLE",
        "service temporarily unavailable; retry with backoff",
    )
}

/// Maps a database error: connection trouble is UNAVAILABLE (retryable),
/// anything else INTERNAL.
pub fn from_sqlx(err: &sqlx::Error) -> Status {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            unavailable(err)
        }
        _ => internal(err),
    }
}

/// Formats an error and all its sources: `a: b: c`.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_every_violation() {
        let status = invalid_argument(vec![
            FieldViolation::new("email", "must be an email address"),
            FieldViolation::new("password", "must be at least 12 characters"),
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().map(|b| b.field_violations.len());
        assert_eq!(bad, Some(2));
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("INVALID_ARGUMENT")
        );
    }

    #[test]
    fn internal_hides_the_cause() {
        let cause = std::io::Error::other("password=hunter2 leaked in a driver message");
        let status = internal(&cause);
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert!(status.message().contains("incident"));
    }
}
