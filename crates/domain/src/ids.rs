//! Opaque identifiers: a short type prefix and 26 characters of time-ordered randomness.

use std::time::{SystemTime, UNIX_EPOCH};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Makes a new id such as `mem_01jd7x...`: 48 bits of milliseconds then 80 random bits,
/// so ids sort roughly by creation time and never collide in practice.
pub fn new_id(prefix: &str, random: [u8; 10]) -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut value: u128 = (u128::from(millis & 0xFFFF_FFFF_FFFF)) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(prefix.len() + 27);
    out.push_str(prefix);
    out.push('_');
    for i in (0..26).rev() {
        out.push(ALPHABET[((value >> (i * 5)) & 31) as usize] as char);
    }
    out
}

/// True when `s` could be an id we issued: short, ASCII letters, digits and `_` only.
/// Ids from the path or a body are checked with this before they reach a query.
pub fn is_plausible_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_fixed_length() {
        let id = new_id("mem", [7; 10]);
        assert!(id.starts_with("mem_"));
        assert_eq!(id.len(), 30);
        assert!(is_plausible_id(&id));
        assert_ne!(new_id("mem", [1; 10]), new_id("mem", [2; 10]));
    }

    #[test]
    fn hostile_ids_are_refused() {
        assert!(!is_plausible_id(""));
        assert!(!is_plausible_id("a'; drop table members; --"));
        assert!(!is_plausible_id(&"a".repeat(65)));
    }
}
