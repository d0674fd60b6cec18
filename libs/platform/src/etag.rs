//! Etags from a row version: every update bumps the version, the etag is its
//! quoted form, and an update carrying a stale etag is ABORTED.

use tonic::Status;

/// The etag of a resource at `version`.
pub fn of(version: i64) -> String {
    format!("\"{version}\"")
}

/// Checks the caller's etag: empty means "no check", otherwise it must be
/// the current one.
pub fn check(given: &str, current_version: i64, resource_name: &str) -> Result<(), Status> {
    if given.is_empty() || given == of(current_version) {
        Ok(())
    } else {
        Err(crate::error::etag_mismatch(resource_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_etag_is_aborted() {
        assert!(check("", 3, "accounts/a").is_ok());
        assert!(check(&of(3), 3, "accounts/a").is_ok());
        let err = check(&of(2), 3, "accounts/a").err().map(|s| s.code());
        assert_eq!(err, Some(tonic::Code::Aborted));
    }
}
