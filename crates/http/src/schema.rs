//! Schemas of request fields that say what the handlers check: label lengths and
//! patterns (`parse_label`), ids, currencies, time zones, contact fields and times. The
//! route types use them in `#[schema(...)]`; `openapi.rs` assembles the document.

use serde_json::{Value, json};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A label as `parse_label` takes it: some visible text, no control characters (the
/// server trims surrounding white space). Fields add `maxLength`.
pub const LABEL_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// An ISO 4217 code of a currency with minor units, as `Currency::parse` takes it.
pub struct CurrencyCode;

impl CurrencyCode {
    pub fn schema_object() -> utoipa::openapi::schema::Object {
        let mut codes = Vec::new();
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                for c in b'A'..=b'Z' {
                    let code = String::from_utf8(vec![a, b, c]).unwrap_or_default();
                    if tally_domain::money::Currency::parse(&code).is_ok() {
                        codes.push(Value::String(code));
                    }
                }
            }
        }
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An ISO 4217 currency code (currencies with minor units)."))
            .enum_values(Some(codes))
            .examples([json!("EUR")])
            .build()
    }
}

impl PartialSchema for CurrencyCode {
    fn schema() -> RefOr<Schema> {
        Self::schema_object().into()
    }
}

impl ToSchema for CurrencyCode {}

/// An IANA time zone name the server knows, such as `Europe/Prague`.
pub struct TimeZoneName;

impl PartialSchema for TimeZoneName {
    fn schema() -> RefOr<Schema> {
        let mut names: Vec<String> = jiff::tz::db()
            .available()
            .map(|n| n.as_str().to_string())
            .filter(|n| tally_domain::time::parse_timezone("timezone", n).is_ok())
            .collect();
        names.sort();
        names.dedup();
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("An IANA time zone name, such as `Europe/Prague`."))
            .examples([json!("Europe/Prague")]);
        if names.is_empty() {
            // No time zone database on this machine: say what the server still checks.
            schema.min_length(Some(1)).max_length(Some(64)).into()
        } else {
            schema.enum_values(Some(names.into_iter().map(Value::String))).into()
        }
    }
}

impl ToSchema for TimeZoneName {}

/// Field schemas for `#[schema(schema_with = ...)]`: each says what the handler checks.
pub mod field {
    use super::LABEL_PATTERN;
    use serde_json::json;
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    fn string() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String)
    }

    fn or_null(b: ObjectBuilder) -> Object {
        b.schema_type(SchemaType::from_iter([Type::String, Type::Null])).build()
    }

    fn label_builder(max: usize) -> ObjectBuilder {
        string()
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(LABEL_PATTERN))
            .description(Some(format!(
                "1 to {max} characters, not only white space, no control characters."
            )))
    }

    /// A label of at most `MAX` characters (`parse_label`).
    pub fn label<const MAX: usize>() -> Object {
        label_builder(MAX).build()
    }

    /// A text of 1 to `max` characters that may hold line breaks but no other control
    /// characters, and not only white space (a reward's name or description).
    pub fn label_with_newlines(max: usize) -> Object {
        string()
            .min_length(Some(1))
            .max_length(Some(max))
            .pattern(Some(
                r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x09\x0b-\x1f\x7f-\x9f]*$",
            ))
            .description(Some(format!(
                "1 to {max} characters, not only white space, no control characters but line breaks."
            )))
            .build()
    }

    /// A label of at most `MAX` characters, or null.
    pub fn nullable_label<const MAX: usize>() -> Object {
        or_null(label_builder(MAX))
    }

    fn id_builder() -> ObjectBuilder {
        string()
            .pattern(Some("^[A-Za-z0-9_]{1,64}$"))
            .examples([json!("mem_01jd5k3v9q8w7e6r5t4y3u2i1o")])
    }

    /// One of Tally's ids (`ptn_…`, `mem_…`, `loc_…`, `rul_…`).
    pub fn id() -> Object {
        id_builder().build()
    }

    /// An id, or null.
    pub fn nullable_id() -> Object {
        or_null(id_builder())
    }

    fn email_builder() -> ObjectBuilder {
        // Visible ASCII; a domain with a dot, not at either end (`Identity::email`).
        string()
            .pattern(Some(r"^[!-?A-~]+@[!--/-?A-~]+(\.[!--/-?A-~]+)+$"))
            .max_length(Some(254))
            .examples([json!("jana@example.cz")])
    }

    pub fn email() -> Object {
        email_builder().build()
    }

    pub fn nullable_email() -> Object {
        or_null(email_builder())
    }

    fn phone_builder() -> ObjectBuilder {
        string()
            .pattern(Some(r"^\+?[0-9][0-9 ().\-]{3,38}$"))
            .max_length(Some(40))
            .description(Some(
                "A phone number in any common format; stored in E.164. It must be a valid number \
                 (a number without `+` is read in the member's or partner's country).",
            ))
            .examples([json!("+420601123456")])
    }

    pub fn phone() -> Object {
        phone_builder().build()
    }

    pub fn nullable_phone() -> Object {
        or_null(phone_builder())
    }

    fn card_builder() -> ObjectBuilder {
        string()
            .pattern(Some(r"^[ \-]*([0-9][ \-]*){4,32}$"))
            .max_length(Some(64))
            .description(Some(
                "A loyalty card number: 4 to 32 digits (spaces and dashes are ignored).",
            ))
            .examples([json!("4000123412341234")])
    }

    pub fn card() -> Object {
        card_builder().build()
    }

    /// A member's personal QR token (`tq1.<member id>.<expiry>.<tag>`); a wrong or
    /// expired one is `422`.
    pub fn member_token() -> Object {
        string()
            .min_length(Some(1))
            .max_length(Some(128))
            .description(Some(
                "The member's personal QR token from the member portal, good for ten minutes.",
            ))
            .build()
    }

    pub fn nullable_card() -> Object {
        or_null(card_builder())
    }

    fn country_builder() -> ObjectBuilder {
        string().pattern(Some("^[A-Z]{2}$")).examples([json!("CZ")])
    }

    /// ISO 3166-1 alpha-2.
    pub fn country() -> Object {
        country_builder().build()
    }

    pub fn nullable_country() -> Object {
        or_null(country_builder())
    }

    fn time_builder() -> ObjectBuilder {
        string()
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .examples([json!("2026-11-20T10:15:00+01:00")])
    }

    /// An RFC 3339 time, or null.
    pub fn nullable_time() -> Object {
        or_null(time_builder())
    }
}
