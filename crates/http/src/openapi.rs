//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use crate::routes::{events, members, operations, partners, program, rules, transactions};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

#[derive(OpenApi)]
#[openapi(
    info(title = "Tally", description = "Coalition loyalty engine: one member earns and spends points at many partners."),
    paths(
        program::get_program, program::update_program, program::get_fx_rates, program::put_fx_rates,
        partners::create_partner, partners::list_partners, partners::get_partner,
        partners::create_location, partners::list_locations, partners::create_api_key,
        members::create_member, members::get_member, members::lookup_member, members::get_balance, members::list_activity,
        transactions::create_transaction, transactions::quote_transaction, transactions::create_transaction_batch,
        transactions::get_transaction, transactions::create_return,
        members::update_member,
        rules::create_rule, rules::list_rules, rules::get_rule, rules::update_rule, rules::test_rule,
        events::create_event, events::list_member_events, events::list_event_types, events::create_event_type,
        operations::verify_ledger, operations::run_expiry, operations::healthz, operations::metrics,
    ),
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

/// The document as JSON, built once.
pub fn document() -> String {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|_| "{}".into()))
        .clone()
}
