//! API keys: random, shown once, stored only as SHA-256 hashes.

use sha2::{Digest, Sha256};

/// A new random key such as `tk_3f9c…` (32 random bytes, hex) from the OS generator.
pub fn generate_key() -> String {
    format!("tk_{}", hex::encode(random_bytes::<32>()))
}

/// The stored form of a key. Keys have 256 bits of entropy, so a plain hash suffices
/// (no salt or slow hash is needed against guessing).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// SHA-256 of a request body, to tell a retry from a different request with the same id.
pub fn hash_request(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random generator is available");
    buf
}

/// A new opaque id with the given prefix (see `tally_domain::ids`).
pub fn new_id(prefix: &str) -> String {
    tally_domain::ids::new_id(prefix, random_bytes::<10>())
}

/// A new id of a kind, such as `keys::new::<MemberId>()`.
pub fn new<T: tally_domain::ids::Id>() -> T {
    T::generate(random_bytes::<10>())
}

/// A member's referral code: 8 characters without look-alikes (no 0/O, 1/I/L).
pub fn referral_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    random_bytes::<8>()
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hashed() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert_eq!(hash_key(&a).len(), 64);
        assert_ne!(hash_key(&a), hash_key(&b));
        assert_eq!(hash_key(&a), hash_key(&a));
    }
}
