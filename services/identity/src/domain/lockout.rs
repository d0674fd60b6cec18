//! Lock-out after repeated failed password checks (sign-ins and
//! ChangePassword's current password share one counter per email), with a
//! growing delay.

use std::time::Duration;

/// Failures allowed before the first lock.
pub const FREE_ATTEMPTS: i32 = 5;
/// Longest lock.
pub const MAX_DELAY: Duration = Duration::from_secs(3600);

/// How long an email is locked after its `failures`-th consecutive failure:
/// none for the first five, then 30 s doubling per failure, at most an hour.
pub fn delay(failures: i32) -> Option<Duration> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let exponent = u32::try_from(failures - FREE_ATTEMPTS).unwrap_or(0).min(10);
    Some((Duration::from_secs(30) * 2u32.pow(exponent)).min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_and_is_capped() {
        assert_eq!(delay(4), None);
        assert_eq!(delay(5), Some(Duration::from_secs(30)));
        assert_eq!(delay(6), Some(Duration::from_secs(60)));
        assert_eq!(delay(7), Some(Duration::from_secs(120)));
        assert_eq!(delay(50), Some(MAX_DELAY));
    }
}
