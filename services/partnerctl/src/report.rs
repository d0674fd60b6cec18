//! The error report: what a failed command says on stderr, with the
//! google.rpc details of the server's refusal (field violations, reason,
//! preconditions, retry delay).

use std::collections::BTreeMap;

use serde::Serialize;
use tonic_types::StatusExt;

use crate::error::CliError;

/// What an error report says, in text or JSON.
#[derive(Debug, Serialize)]
pub struct ErrorReport {
    /// The gRPC code name, or `USAGE`, `NOT_LOGGED_IN`, `UNEXPECTED`.
    code: String,
    exit_code: u8,
    /// The error's message (the server's, for a refusal).
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    field_violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    precondition_violations: Vec<Violation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_delay_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    localized_message: Option<String>,
}

#[derive(Debug, Serialize)]
struct Violation {
    field: String,
    description: String,
}

impl From<&CliError> for ErrorReport {
    fn from(error: &CliError) -> Self {
        let mut report = Self {
            code: String::new(),
            exit_code: error.exit_code(),
            message: String::new(),
            reason: None,
            metadata: BTreeMap::new(),
            field_violations: Vec::new(),
            precondition_violations: Vec::new(),
            retry_delay_seconds: None,
            localized_message: None,
        };
        let (code, message) = match error {
            CliError::Usage(m) => ("USAGE".to_owned(), m.clone()),
            CliError::NotLoggedIn(m) => ("NOT_LOGGED_IN".to_owned(), m.clone()),
            CliError::Other(e) => ("UNEXPECTED".to_owned(), format!("{e:#}")),
            CliError::Rpc(status) => {
                report.add_details(status);
                (code_name(status.code()), status.message().to_owned())
            }
        };
        report.code = code;
        report.message = message;
        report
    }
}

impl ErrorReport {
    fn add_details(&mut self, status: &tonic::Status) {
        let details = status.get_error_details();
        if let Some(info) = details.error_info() {
            self.reason = Some(info.reason.clone()).filter(|r| !r.is_empty());
            self.metadata = info
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        if let Some(bad) = details.bad_request() {
            self.field_violations = bad
                .field_violations
                .iter()
                .map(|v| Violation {
                    field: v.field.clone(),
                    description: v.description.clone(),
                })
                .collect();
        }
        if let Some(failure) = details.precondition_failure() {
            self.precondition_violations = failure
                .violations
                .iter()
                .map(|v| Violation {
                    field: v.subject.clone(),
                    description: v.description.clone(),
                })
                .collect();
        }
        self.retry_delay_seconds = details
            .retry_info()
            .and_then(|r| r.retry_delay)
            .map(|d| d.as_secs_f64());
        self.localized_message = details
            .localized_message()
            .map(|m| m.message.clone())
            .filter(|m| !m.is_empty() && *m != status.message());
    }
}

impl std::fmt::Display for ErrorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "error: {} ({})", self.message, self.code)?;
        if let Some(reason) = &self.reason {
            writeln!(f, "  reason: {reason}")?;
        }
        for (key, value) in &self.metadata {
            writeln!(f, "  {key}: {value}")?;
        }
        for v in &self.field_violations {
            writeln!(f, "  field {}: {}", v.field, v.description)?;
        }
        for v in &self.precondition_violations {
            writeln!(f, "  precondition {}: {}", v.field, v.description)?;
        }
        if let Some(delay) = self.retry_delay_seconds {
            writeln!(f, "  retry after: {delay:.0} s")?;
        }
        if let Some(message) = &self.localized_message {
            writeln!(f, "  {message}")?;
        }
        Ok(())
    }
}

/// `INVALID_ARGUMENT` for `Code::InvalidArgument`.
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_upper_snake_case() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
    }
}
