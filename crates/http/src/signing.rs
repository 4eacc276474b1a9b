//! The server's signing key and what it signs: a member's personal QR token (an identity
//! a till may scan instead of a phone number) and the web forms' CSRF tokens.
//!
//! The key is random, kept in the store (`web_keys`), so every server of one database
//! signs and checks alike. Tokens are HMAC-SHA256 over their text; nothing about them is
//! stored, and a member token is good for [`MEMBER_TOKEN_TTL`] only.

use hmac::{Hmac, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;
use tally_domain::ids::{Id, MemberId};

/// How long a member's QR token identifies her at a till.
pub const MEMBER_TOKEN_TTL: SignedDuration = SignedDuration::from_mins(10);

/// Longest token text accepted before any parsing.
const MAX_TOKEN_LEN: usize = 128;

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    /// A signer over `key` (hex, as stored; any text works, hex is what the store holds).
    pub fn new(key: &str) -> Signer {
        Signer {
            key: key.as_bytes().to_vec(),
        }
    }

    fn mac(&self, purpose: &str, text: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(text.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// The CSRF token for a cookie's token: forms carry it, and a request is taken only
    /// when it matches a cookie the browser sent.
    pub fn csrf(&self, cookie_token: &str) -> String {
        self.mac("csrf", cookie_token)
    }

    pub fn csrf_matches(&self, cookie_token: &str, presented: &str) -> bool {
        tally_store::web::same_hash(&self.csrf(cookie_token), presented)
    }

    /// `tq1.<member id>.<expiry, unix seconds>.<tag>`: names the member until the expiry.
    pub fn member_token(&self, member: &MemberId, now: Timestamp) -> (String, Timestamp) {
        let expires = now
            .saturating_add(MEMBER_TOKEN_TTL)
            .expect("ten minutes from now is a time");
        let body = format!("tq1.{}.{}", member.as_str(), expires.as_second());
        let tag = self.mac("member-token", &body);
        (format!("{body}.{tag}"), expires)
    }

    /// The member a token names, if it is ours, intact and not expired.
    pub fn check_member_token(&self, token: &str, now: Timestamp) -> Result<MemberId, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let mut parts = token.rsplitn(2, '.');
        let (Some(tag), Some(body)) = (parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        if !tally_store::web::same_hash(&self.mac("member-token", body), tag) {
            return Err(TokenError::Invalid);
        }
        let mut fields = body.split('.');
        let (Some("tq1"), Some(member), Some(expires), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Invalid);
        };
        let expires: i64 = expires.parse().map_err(|_| TokenError::Invalid)?;
        if now.as_second() >= expires {
            return Err(TokenError::Expired);
        }
        MemberId::parse(member).ok_or(TokenError::Invalid)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Invalid,
    Expired,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ids carry the time they were made: each test makes its member once.

    #[test]
    fn a_token_names_its_member_until_it_expires() {
        let s = Signer::new("k1");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let jana = MemberId::generate([7; 10]);
        let (token, expires) = s.member_token(&jana, now);
        assert_eq!(s.check_member_token(&token, now), Ok(jana));
        assert_eq!(expires.duration_since(now), MEMBER_TOKEN_TTL);
        assert_eq!(s.check_member_token(&token, expires), Err(TokenError::Expired));
    }

    #[test]
    fn a_changed_or_foreign_token_is_refused() {
        let s = Signer::new("k1");
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let jana = MemberId::generate([7; 10]);
        let (token, _) = s.member_token(&jana, now);
        assert_eq!(
            Signer::new("k2").check_member_token(&token, now),
            Err(TokenError::Invalid)
        );
        let other = MemberId::generate([8; 10]);
        assert_ne!(jana, other);
        let forged = token.replace(jana.as_str(), other.as_str());
        assert_ne!(forged, token);
        assert_eq!(s.check_member_token(&forged, now), Err(TokenError::Invalid));
        let later = {
            let mut f: Vec<&str> = token.split('.').collect();
            let e = (f[2].parse::<i64>().unwrap() + 3600).to_string();
            f[2] = &e;
            f.join(".")
        };
        assert_eq!(s.check_member_token(&later, now), Err(TokenError::Invalid));
        for junk in ["", "tq1", "tq1.a.b.c", &"x".repeat(500)] {
            assert_eq!(s.check_member_token(junk, now), Err(TokenError::Invalid));
        }
    }

    #[test]
    fn csrf_tokens_belong_to_one_cookie() {
        let s = Signer::new("k1");
        let t = s.csrf("cookie-a");
        assert!(s.csrf_matches("cookie-a", &t));
        assert!(!s.csrf_matches("cookie-b", &t));
        assert!(!s.csrf_matches("cookie-a", ""));
    }
}
