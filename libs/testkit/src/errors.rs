//! Reading the google.rpc details of a refusal: its `ErrorInfo` reason,
//! the fields its `BadRequest` names, its `RetryInfo` delay.

use std::time::Duration;

use tonic_types::StatusExt;

/// The `ErrorInfo` reason of a status (empty without one).
pub fn error_reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// The fields named by the `BadRequest` of a status, sorted.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    let mut fields: Vec<String> = status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    fields.sort();
    fields
}

/// The `RetryInfo` delay of a status, if it has one.
pub fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    status.get_details_retry_info().and_then(|r| r.retry_delay)
}

/// The error of a call that must fail.
pub fn refusal<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> anyhow::Result<tonic::Status> {
    match result {
        Ok(r) => anyhow::bail!("expected a refusal, got {:?}", r.get_ref()),
        Err(status) => Ok(status),
    }
}
