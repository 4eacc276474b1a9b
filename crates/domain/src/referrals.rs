//! Referrals: a member's share link leads to the operator's sign-up page with her
//! referral code, so the new member's sign-up names who brought her.

use crate::DomainError;

/// The longest sign-up address the operator may set.
pub const MAX_SIGNUP_URL: usize = 500;

/// Checks the operator's sign-up address: `https://` (or `http://`), no spaces,
/// control characters or fragment, at most [`MAX_SIGNUP_URL`] characters.
pub fn check_signup_url(url: &str) -> Result<String, DomainError> {
    let bad = |why: &str| Err(DomainError::invalid("referral_signup_url", why.to_string()));
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    let Some(rest) = rest else {
        return bad("must start with https:// or http://");
    };
    if url.len() > MAX_SIGNUP_URL {
        return bad("must be at most 500 characters");
    }
    if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
        return bad("must name a host");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '#' || !c.is_ascii())
    {
        return bad("must be ASCII without spaces, control characters or a fragment (#)");
    }
    Ok(url.to_string())
}

/// Where a share link sends its visitor: the sign-up address with `referral_code`
/// added to its query. Referral codes are letters and digits, so they need no escaping.
pub fn share_target(signup_url: &str, code: &str) -> String {
    let join = if signup_url.contains('?') { '&' } else { '?' };
    format!("{signup_url}{join}referral_code={code}")
}

/// Whether text could be a referral code Tally issued (1 to 32 letters and digits).
pub fn plausible_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= 32 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_link_adds_the_code_to_the_sign_up_address() {
        assert_eq!(
            share_target("https://join.example/signup", "K7M2PQ9X"),
            "https://join.example/signup?referral_code=K7M2PQ9X"
        );
        assert_eq!(
            share_target("https://join.example/signup?lang=cs", "K7M2PQ9X"),
            "https://join.example/signup?lang=cs&referral_code=K7M2PQ9X"
        );
    }

    #[test]
    fn only_a_plain_web_address_is_a_sign_up_address() {
        assert!(check_signup_url("https://join.example/signup?src=share").is_ok());
        assert!(check_signup_url("http://localhost:3000/join").is_ok());
        for bad in [
            "join.example/signup",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://join.example/sign up",
            "https://join.example/#top",
            "https://join.example/\u{7}",
            "https://jöin.example/",
        ] {
            assert!(check_signup_url(bad).is_err(), "{bad} passed");
        }
        assert!(check_signup_url(&format!("https://a.example/{}", "x".repeat(490))).is_err());
        assert!(plausible_code("K7M2PQ9X"));
        assert!(!plausible_code("K7M-2PQ9X"));
        assert!(!plausible_code(""));
    }
}
