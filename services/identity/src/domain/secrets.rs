//! Random secrets (refresh, reset and invitation tokens, temporary
//! passwords) and the hashes they are stored as.

use rand::Rng;
use rand::rngs::OsRng;

pub use partnerhub_platform::crypto::{token, token_hash as hash};

/// A temporary password: 16 characters with lower, upper, digit and symbol.
pub fn temporary_password() -> String {
    const LOWER: &[u8] = b"abcdefghijkmnopqrstuvwxyz";
    const UPPER: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    const DIGIT: &[u8] = b"23456789";
    const SYMBOL: &[u8] = b"!#%+-=?@";
    let mut rng = OsRng;
    let mut pick = |set: &[u8]| set[rng.gen_range(0..set.len())] as char;
    let all: Vec<u8> = [LOWER, UPPER, DIGIT, SYMBOL].concat();
    let mut chars: Vec<char> = vec![pick(LOWER), pick(UPPER), pick(DIGIT), pick(SYMBOL)];
    while chars.len() < 16 {
        chars.push(pick(&all));
    }
    // Shuffle so the classes are not in fixed positions.
    for i in (1..chars.len()).rev() {
        let j = OsRng.gen_range(0..=i);
        chars.swap(i, j);
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hash_stably() {
        let (a, b) = (token(), token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(hash(&a), hash(&a));
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn temporary_passwords_pass_the_policy() {
        for _ in 0..100 {
            let p = temporary_password();
            assert_eq!(p.chars().count(), 16);
            assert!(super::super::password(&p).is_ok(), "{p}");
        }
    }
}
