//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! Handlers declare their success answers and the errors only they give (`403` for a key
//! of the wrong kind, `404` for an id named in the body, `409` for a conflict of their
//! own). The errors every operation of a kind can give are added here, in one place, by
//! what the operation takes (see [`add_shared_errors`]): `401` with a key, `400`, `413`,
//! `408`, `415` and `422` with a JSON body, `400` and `409` for `Idempotency-Key` on a POST,
//! `404` with an id in the path, `422` with query parameters, and `500` and `503`
//! everywhere. Every error answer has the one shape [`crate::error::ErrorBody`].

use crate::routes::{
    challenges, consents, events, exchange, members, memberships, operations, partners, program, redemptions,
    referrals, rewards, rules, settlement, tiers, transactions, transfers, wallets,
};
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally", description = "Coalition loyalty engine: one member earns and spends points at many partners."),
    paths(
        program::get_program, program::update_program, program::get_fx_rates, program::put_fx_rates,
        partners::create_partner, partners::list_partners, partners::get_partner,
        partners::create_location, partners::list_locations, partners::create_api_key,
        partners::list_api_keys, partners::revoke_api_key,
        consents::list_consents, consents::grant_consent, consents::withdraw_consent,
        members::create_member, members::get_member, members::lookup_member, members::get_balance, members::list_activity,
        transactions::create_transaction, transactions::quote_transaction, transactions::create_transaction_batch,
        transactions::get_transaction, transactions::create_return,
        members::update_member,
        rules::create_rule, rules::list_rules, rules::get_rule, rules::update_rule, rules::test_rule,
        tiers::get_tiers, tiers::put_tiers, tiers::get_member_tier, tiers::put_member_tier,
        memberships::create_plan, memberships::list_plans, memberships::create_membership, memberships::list_memberships,
        memberships::get_membership, memberships::cancel_membership, memberships::create_payment, memberships::membership_report,
        wallets::create_wallet, wallets::get_wallet, wallets::create_invite, wallets::join_wallet, wallets::set_rights,
        wallets::leave_wallet, wallets::close_wallet, wallets::wallet_statement, wallets::member_wallets,
        rewards::create_reward, rewards::list_rewards, rewards::get_reward, rewards::update_reward, rewards::member_rewards,
        redemptions::redeem, redemptions::member_redemptions, redemptions::list_redemptions, redemptions::get_redemption,
        redemptions::cancel_redemption, redemptions::reissue_code, redemptions::get_voucher, redemptions::use_voucher,
        transfers::send_points, transfers::member_transfers, referrals::share_link, referrals::member_referrals,
        challenges::create_challenge, challenges::list_challenges, challenges::get_challenge,
        challenges::member_challenges, challenges::join_challenge, challenges::member_badges,
        exchange::create_exchange_partner, exchange::list_exchange_partners, exchange::get_exchange_partner,
        exchange::update_exchange_partner, exchange::create_exchange_order, exchange::list_exchange_orders,
        exchange::get_exchange_order, exchange::confirm_exchange_order, exchange::fail_exchange_order,
        exchange::credit_exchange, exchange::exchange_volume,
        events::create_event, events::list_member_events, events::list_event_types, events::create_event_type,
        operations::verify_ledger, operations::ledger_balances, operations::run_expiry, operations::healthz, operations::metrics,
        settlement::put_price, settlement::list_prices, settlement::list_periods, settlement::get_netting,
        settlement::close_period, settlement::get_statement, settlement::get_liability, settlement::get_breakage,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /openapi.json`: this API's OpenAPI 3.1 document.
pub async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], document())
}

/// The document as JSON, built once.
pub fn document() -> String {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
        close_flattened(&mut doc);
        name_enum_values(&mut doc, "TimeZoneName");
        add_shared_errors(&mut doc);
        serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".into())
    })
    .clone()
}

/// Gives an enum of strings that are no identifiers (`Etc/GMT+5`, `GMT-0`) unique names
/// for generated clients (`x-enum-varnames`), so `GMT+0` and `GMT-0` stay apart.
fn name_enum_values(doc: &mut Value, schema: &str) {
    let Some(target) = doc.pointer_mut(&format!("/components/schemas/{schema}")) else {
        return;
    };
    let Some(values) = target.get("enum").and_then(Value::as_array) else {
        return;
    };
    let mut seen = std::collections::HashSet::new();
    let mut names = Vec::with_capacity(values.len());
    for v in values {
        let raw = v.as_str().unwrap_or_default();
        let mut name = String::new();
        let mut chars = raw.chars().peekable();
        while let Some(c) = chars.next() {
            let digit_next = chars.peek().is_some_and(char::is_ascii_digit);
            match c {
                c if c.is_ascii_alphanumeric() => name.push(c.to_ascii_uppercase()),
                '+' if digit_next => name.push_str("_PLUS_"),
                '-' if digit_next => name.push_str("_MINUS_"),
                _ => name.push('_'),
            }
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            name.insert_str(0, "TZ_");
        }
        let mut unique = name.clone();
        let mut n = 2;
        while !seen.insert(unique.clone()) {
            unique = format!("{name}_{n}");
            n += 1;
        }
        names.push(Value::String(unique));
    }
    target["x-enum-varnames"] = Value::Array(names);
}

/// The shared error answers, each as `(status, name, description)`.
const SHARED_ERRORS: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "`invalid_json`: the body is not JSON; `invalid_body`: it could not be read; \
         `invalid_idempotency_key`: `Idempotency-Key` is not 1 to 255 visible ASCII characters; \
         `bad_request`: the request could not be read (a path segment that is not UTF-8).",
    ),
    (
        "401",
        "Unauthorized",
        "`unauthorized`: no valid `Authorization: Bearer <key>`.",
    ),
    (
        "404",
        "NotFound",
        "`*_not_found` / `not_found`: no such resource, or not one this key may see.",
    ),
    (
        "409",
        "Conflict",
        "`idempotency_conflict`: this `Idempotency-Key` was used with another request.",
    ),
    (
        "408",
        "RequestTimeout",
        "`body_timeout`: the body did not arrive within the server's body timeout (10 s by default).",
    ),
    (
        "413",
        "PayloadTooLarge",
        "`payload_too_large`: the body is larger than this endpoint takes.",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "`unsupported_media_type`: send `Content-Type: application/json`.",
    ),
    (
        "422",
        "Unprocessable",
        "`invalid_field`, `invalid_query` and other codes: the request is well formed but a value is refused; \
         `message` says which and why.",
    ),
    (
        "500",
        "InternalError",
        "`internal_error`: something went wrong on the server; it has been logged.",
    ),
    (
        "503",
        "Unavailable",
        "`timeout`: the request took longer than the server allows (30 s by default); `overloaded`: too many \
         writes are waiting; `storage_full`: the database is out of space; `database_unavailable`: the database \
         cannot be reached. Each comes with `Retry-After`; a retry with the same `Idempotency-Key` or \
         `external_id` is safe.",
    ),
];

/// Adds the errors every operation of a kind can answer, as shared responses, unless
/// the operation documents that status itself.
fn add_shared_errors(doc: &mut Value) {
    let Some(root) = doc.as_object_mut() else { return };
    let components = root
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("components is an object");
    let responses = components
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (_, name, description) in SHARED_ERRORS {
        responses.insert(name.to_string(), error_response(description));
    }
    let Some(paths) = root.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut() {
            let Some(op) = op.as_object_mut() else { continue };
            // A key is required unless the operation also lists "no key" (`{}`).
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r.as_object().is_some_and(Map::is_empty)));
            let body = op.contains_key("requestBody");
            let params = op
                .get("parameters")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let in_path = params.iter().any(|p| p["in"] == "path");
            let in_query = params.iter().any(|p| p["in"] == "query");
            let post = method == "post";
            // Any request may carry a body, which the body guard reads first.
            let mut statuses = vec!["400", "408", "413", "500", "503"];
            if secured {
                statuses.push("401");
            }
            if body || post {
                // Bodies are read (POST: for Idempotency-Key) before the handler runs.
                statuses.push("400");
            }
            if body {
                statuses.extend(["415", "422"]);
            }
            if post {
                statuses.push("409");
            }
            if in_path {
                // A path segment that is not valid UTF-8 once decoded is 400 `bad_request`.
                statuses.extend(["400", "404"]);
            }
            if in_query {
                statuses.push("422");
            }
            let answers = op
                .entry("responses")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("responses is an object");
            for status in statuses {
                if answers.contains_key(status) {
                    continue;
                }
                let (_, name, _) = SHARED_ERRORS
                    .iter()
                    .find(|(s, _, _)| *s == status)
                    .expect("every shared status is listed");
                answers.insert(status.into(), json!({"$ref": format!("#/components/responses/{name}")}));
            }
            let mut sorted: Vec<(String, Value)> = std::mem::take(answers).into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            answers.extend(sorted);
        }
    }
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    })
}

/// `#[serde(flatten)]` of a struct that refuses unknown fields (a request type such as
/// `RuleSpec` reused in an answer) comes out as `allOf: [closed, {more}]`, which nothing
/// can match. Such `allOf`s are merged into one object that lists every property.
fn close_flattened(doc: &mut Value) {
    let Some(schemas) = doc.pointer("/components/schemas").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(target) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else {
        return;
    };
    for schema in target.values_mut() {
        merge_all_of(schema, &schemas);
    }
}

fn resolve<'a>(schema: &'a Value, schemas: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/components/schemas/")
            .and_then(|name| schemas.get(name))
            .unwrap_or(schema),
        None => schema,
    }
}

fn merge_all_of(schema: &mut Value, schemas: &Map<String, Value>) {
    let Some(items) = schema.get("allOf").and_then(Value::as_array) else {
        return;
    };
    let parts: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut part = resolve(item, schemas).clone();
            merge_all_of(&mut part, schemas);
            part
        })
        .collect();
    let closed = parts
        .iter()
        .any(|p| p.get("additionalProperties") == Some(&Value::Bool(false)));
    if !closed || parts.iter().any(|p| p.get("type") != Some(&json!("object"))) {
        return;
    }
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    for part in &parts {
        if let Some(props) = part.get("properties").and_then(Value::as_object) {
            properties.extend(props.clone());
        }
        for r in part.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !required.contains(r) {
                required.push(r.clone());
            }
        }
    }
    let mut merged = Map::new();
    merged.insert("type".into(), json!("object"));
    if let Some(d) = schema.get("description") {
        merged.insert("description".into(), d.clone());
    }
    merged.insert("required".into(), Value::Array(required));
    merged.insert("properties".into(), Value::Object(properties));
    *schema = Value::Object(merged);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_documents_its_errors() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        let get_rule = &doc["paths"]["/v1/earning-rules/{id}"]["get"]["responses"];
        for status in ["200", "401", "404", "500", "503"] {
            assert!(get_rule.get(status).is_some(), "GET rule lacks {status}");
        }
        let create_member = &doc["paths"]["/v1/members"]["post"]["responses"];
        for status in ["201", "400", "401", "409", "413", "415", "422"] {
            assert!(create_member.get(status).is_some(), "POST member lacks {status}");
        }
    }

    #[test]
    fn rule_answers_list_the_rule_fields_and_its_id() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        let view = &doc["components"]["schemas"]["RuleView"];
        assert!(view.get("allOf").is_none());
        for field in ["id", "version", "name", "effect", "created_at"] {
            assert!(view["properties"].get(field).is_some(), "RuleView lacks {field}");
        }
    }

    #[test]
    fn query_parameters_are_in_the_query() {
        let doc: Value = serde_json::from_str(&document()).unwrap();
        for path in ["/v1/members/lookup", "/v1/members/{id}/activity"] {
            for p in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
                if p["name"] != "id" {
                    assert_eq!(p["in"], "query", "{path} {}", p["name"]);
                    assert_eq!(p["required"], false);
                }
            }
        }
    }
}
