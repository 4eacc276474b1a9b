//! A member's identities as typed values: email, E.164 phone, loyalty card number.

use crate::DomainError;

/// How a member is known at the till.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    Email,
    Phone,
    Card,
}

impl IdentityKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityKind::Email => "email",
            IdentityKind::Phone => "phone",
            IdentityKind::Card => "card",
        }
    }
}

/// A normalised identity value, ready to be stored and looked up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    /// An email address, lower-cased and trimmed; it must look like `local@domain.tld`.
    pub fn email(raw: &str) -> Result<Self, DomainError> {
        let v = raw.trim().to_lowercase();
        let ok = v.len() <= 254
            && v.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
            })
            && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(DomainError::invalid("email", "is not an email address"));
        }
        Ok(Identity {
            kind: IdentityKind::Email,
            value: v,
        })
    }

    /// A phone number normalised to E.164. A number without `+` is read in the member's
    /// country when one is given (`601 123 456` in CZ → `+420601123456`).
    pub fn phone(raw: &str, country: Option<&str>) -> Result<Self, DomainError> {
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > 40 {
            return Err(DomainError::invalid("phone", "is not a phone number"));
        }
        let region = country.and_then(|c| c.parse::<phonenumber::country::Id>().ok());
        let number =
            phonenumber::parse(region, raw).map_err(|_| DomainError::invalid("phone", "is not a phone number"))?;
        if !phonenumber::is_valid(&number) {
            return Err(DomainError::invalid("phone", "is not a valid phone number"));
        }
        let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
        Ok(Identity {
            kind: IdentityKind::Phone,
            value: e164,
        })
    }

    /// A loyalty card number: 4 to 32 digits (spaces and dashes ignored).
    pub fn card(raw: &str) -> Result<Self, DomainError> {
        let v: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
        if v.len() < 4 || v.len() > 32 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DomainError::invalid("card", "must be 4 to 32 digits"));
        }
        Ok(Identity {
            kind: IdentityKind::Card,
            value: v,
        })
    }
}

/// An ISO 3166-1 alpha-2 country code such as `CZ`.
pub fn parse_country(field: &'static str, raw: &str) -> Result<String, DomainError> {
    if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(raw.to_string())
    } else {
        Err(DomainError::invalid(
            field,
            "must be a two-letter ISO country code such as CZ",
        ))
    }
}

/// A display name or label: trimmed, non-empty, at most `max` characters, no control characters.
/// A short code the operator names things by (a tier level, a membership plan), as
/// rules read it: 1 to 32 lower-case ASCII letters, digits or `_`.
pub fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn parse_label(field: &'static str, raw: &str, max: usize) -> Result<String, DomainError> {
    let v = raw.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        assert_eq!(
            Identity::phone("+420 601 123 456", None).unwrap().value,
            "+420601123456"
        );
        assert_eq!(Identity::phone("601123456", Some("CZ")).unwrap().value, "+420601123456");
        assert_eq!(
            Identity::phone("(619) 555-0142", Some("US")).unwrap().value,
            "+16195550142"
        );
        assert!(Identity::phone("12", None).is_err());
        assert!(Identity::phone("not a phone", None).is_err());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(Identity::email(" Ana@Example.COM ").unwrap().value, "ana@example.com");
        for bad in ["", "ana", "@x.cz", "ana@x", "a b@x.cz", "ana@.cz"] {
            assert!(Identity::email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cards_are_digits() {
        assert_eq!(Identity::card("6006 1234-5678").unwrap().value, "600612345678");
        assert!(Identity::card("12a4").is_err());
    }
}
