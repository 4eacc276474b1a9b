//! The POS path: purchases (earn and pay with points), quotes, end-of-day batches, returns.

use crate::auth::Till;
use crate::earning::{PreparedPurchase, with_rules};
use crate::error::ApiError;
use crate::extract::{ApiJson, JsonBytes, canonical_hash, parse_id, parse_json, read_value};
use crate::routes::{posted_response, raw_json};
use crate::state::{AppState, Principal};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tally_domain::DomainError;
use tally_domain::earning::value_purchase;
use tally_domain::identity::{Identity, parse_label};
use tally_domain::ids::{Id, LocationId, ReturnId, TransactionId};
use tally_domain::money::{Currency, Money, parse_points};
use tally_domain::receipt::{MoneyView, PurchaseReceipt, ReturnReceipt};
use tally_domain::rules::{BasketFacts, LineFacts};
use tally_domain::time::check_occurred_at;
use tally_store::{MemberRef, PurchaseCmd, ReturnCmd, StoreError, keys};
use utoipa::ToSchema;

/// Receipts older than this are refused: a till's clock or upload gone wrong.
const MAX_RECEIPT_AGE_DAYS: u32 = 400;
/// How often a sale whose rules read the member's visit count is evaluated again when
/// concurrent sales of the member changed it.
pub const MAX_STALE_RETRIES: u32 = 32;
/// Receipts per end-of-day batch.
pub const MAX_BATCH: usize = 1000;

#[derive(Deserialize, ToSchema, Clone)]
pub struct MoneyInput {
    /// Integer minor units (cents); never negative.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_000i64)]
    pub amount: i64,
    #[schema(value_type = crate::schema::CurrencyCode)]
    pub currency: String,
}

impl MoneyInput {
    fn parse(&self, field: &'static str) -> Result<Money, ApiError> {
        let currency = Currency::parse(&self.currency)?;
        Money::new(self.amount, currency).map_err(|_| {
            ApiError::invalid(
                "invalid_field",
                format!("{field}: amount must be 0 or more and below 10^15 minor units"),
            )
        })
    }
}

/// How the till names the member: exactly one of these.
#[derive(Deserialize, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct MemberSelector {
    pub id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub card: Option<String>,
    /// A member's personal QR token from the member portal (short-lived, signed).
    pub token: Option<String>,
}

impl utoipa::PartialSchema for MemberSelector {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use crate::schema::field;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder};
        let one = |name: &str, schema: utoipa::openapi::schema::Object| {
            ObjectBuilder::new()
                .property(name, schema)
                .required(name)
                .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
        };
        OneOfBuilder::new()
            .description(Some(
                "How the till names the member: exactly one of id, email, phone, card, token (the member's personal QR token, good for ten minutes).",
            ))
            .item(one("id", field::id()))
            .item(one("email", field::email()))
            .item(one("phone", field::phone()))
            .item(one("card", field::card()))
            .item(one("token", field::member_token()))
            .into()
    }
}

impl ToSchema for MemberSelector {}

#[derive(Deserialize, ToSchema, Clone)]
pub struct LineInput {
    #[schema(schema_with = crate::schema::field::label::<64>)]
    pub sku: String,
    #[schema(schema_with = crate::schema::field::nullable_label::<64>)]
    pub category: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub quantity: i64,
    pub unit_price: MoneyInput,
}

#[derive(Deserialize, ToSchema, Clone)]
pub struct TransactionBody {
    /// The till's receipt id: the same receipt never earns twice.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub external_id: String,
    pub member: MemberSelector,
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub location_id: Option<String>,
    /// RFC 3339 time of the sale (default: now); at most 400 days ago, not in the future.
    #[schema(schema_with = crate::schema::field::nullable_time)]
    pub occurred_at: Option<String>,
    pub total: MoneyInput,
    /// At most 500 lines, in the currency of `total`.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub lines: Vec<LineInput>,
    /// Points to pay part of the bill with (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub redeem_points: i64,
    /// The member's shared wallet to use (`wal_…`): earnings go to it if the member
    /// earns into it, and `redeem_points` come from it (the member needs `spend`).
    /// Default: the member's default wallet, if any, else their own points.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub wallet_id: Option<String>,
}

/// The member a request names; a phone without `+` is read in `country`; a QR token
/// is checked against the server's signing key and the clock.
pub fn member_ref(state: &AppState, m: &MemberSelector, country: Option<&str>) -> Result<MemberRef, ApiError> {
    Ok(match (&m.id, &m.email, &m.phone, &m.card, &m.token) {
        (Some(id), None, None, None, None) => MemberRef::Id(parse_id(id, "member")?),
        (None, Some(e), None, None, None) => MemberRef::Identity(Identity::email(e)?),
        (None, None, Some(p), None, None) => MemberRef::Identity(Identity::phone(p, country)?),
        (None, None, None, Some(c), None) => MemberRef::Identity(Identity::card(c)?),
        (None, None, None, None, Some(t)) => match state.signer.check_member_token(t.trim(), state.now()) {
            Ok(id) => MemberRef::Id(id),
            Err(crate::signing::TokenError::Expired) => {
                return Err(ApiError::invalid(
                    "token_expired",
                    "member.token: the QR token has expired; ask the member to show a fresh one",
                ));
            }
            Err(crate::signing::TokenError::Invalid) => {
                return Err(ApiError::invalid(
                    "invalid_token",
                    "member.token: not a QR token of this programme",
                ));
            }
        },
        _ => {
            return Err(ApiError::invalid(
                "invalid_field",
                "member: give exactly one of id, email, phone, card, token",
            ));
        }
    })
}

/// Validates a purchase from a till and values it before rules; nothing is written.
pub fn prepare_purchase(
    state: &AppState,
    partner: &tally_store::PartnerRow,
    body: TransactionBody,
    hash: String,
) -> Result<PreparedPurchase, ApiError> {
    let external_id = parse_label("external_id", &body.external_id, 100)?;
    let member = member_ref(state, &body.member, Some(&partner.country))?;
    let location_id = match &body.location_id {
        None => None,
        Some(loc) => Some(
            LocationId::parse(loc)
                .ok_or_else(|| ApiError::invalid("unknown_location", "the location does not belong to this partner"))?,
        ),
    };
    let now = state.now();
    let occurred_at = match &body.occurred_at {
        None => now,
        Some(s) => s.parse::<Timestamp>().map_err(|_| {
            ApiError::invalid(
                "invalid_field",
                "occurred_at: must be an RFC 3339 time such as 2026-11-20T10:15:00+01:00",
            )
        })?,
    };
    check_occurred_at(occurred_at, now, MAX_RECEIPT_AGE_DAYS)?;
    let total = body.total.parse("total")?;
    if body.lines.len() > 500 {
        return Err(ApiError::invalid("invalid_field", "lines: at most 500 lines"));
    }
    let mut lines = Vec::with_capacity(body.lines.len());
    for line in &body.lines {
        let sku = parse_label("lines.sku", &line.sku, 64)?;
        let category = match &line.category {
            Some(c) => parse_label("lines.category", c, 64)?,
            None => String::new(),
        };
        if !(1..=1_000_000).contains(&line.quantity) {
            return Err(ApiError::invalid(
                "invalid_field",
                "lines.quantity: must be 1 to 1000000",
            ));
        }
        let price = line.unit_price.parse("lines.unit_price")?;
        if price.currency != total.currency {
            return Err(ApiError::invalid(
                "currency_mismatch",
                "lines.unit_price: must be in the currency of total",
            ));
        }
        // Each line's amount stays below the total's limit, so 500 lines add up in i64.
        if price
            .amount
            .checked_mul(line.quantity)
            .is_none_or(|a| a >= 1_000_000_000_000_000)
        {
            return Err(ApiError::invalid(
                "invalid_field",
                "lines: unit_price × quantity must be below 10^15 minor units",
            ));
        }
        lines.push(LineFacts {
            sku,
            category,
            quantity: line.quantity,
            unit_price_minor: price.amount,
        });
    }
    let redeem_points = parse_points("redeem_points", body.redeem_points)?;
    let program = state.program();
    let rate = state.with_fx(|fx| fx.rate_for(program.currency, total.currency))?;
    let valuation = value_purchase(&program.terms(), rate, partner.earn_rate, total, redeem_points)?;
    let lines_json = serde_json::to_string(
        &body.lines.iter().map(|l| serde_json::json!({"sku": l.sku, "category": l.category, "quantity": l.quantity, "unit_price": l.unit_price.amount})).collect::<Vec<_>>(),
    )
    .unwrap_or_else(|_| "[]".into());
    let cmd = PurchaseCmd {
        transaction_id: keys::new::<TransactionId>(),
        partner: partner.terms(),
        external_id,
        request_hash: hash,
        member,
        location_id,
        occurred_at,
        total,
        lines_json,
        redeem_points,
        wallet_id: match &body.wallet_id {
            Some(w) => Some(
                tally_domain::ids::WalletId::parse(w)
                    .filter(|_| tally_domain::ids::WalletId::is_kind(w))
                    .ok_or_else(|| ApiError::invalid("invalid_field", "wallet_id: not a wallet id (wal_…)"))?,
            ),
            None => None,
        },
        valuation,
        rules: Default::default(),
        program: program.terms(),
        now,
    };
    Ok(PreparedPurchase {
        basket: BasketFacts {
            currency: total.currency,
            total_minor: total.amount,
            lines,
        },
        cmd,
        rate,
    })
}

/// Posts a prepared sale with the rules applied; if the member changed in a way the
/// rules read (a visit at the same partner in between), evaluates again.
async fn post_ruled(
    state: &AppState,
    partner: &tally_store::PartnerRow,
    prepared: &PreparedPurchase,
) -> Result<tally_store::Posted, ApiError> {
    let mut attempt = 0;
    loop {
        let cmd = with_rules(state, partner, prepared).await?;
        match state.store.post_purchase(cmd).await {
            // Each stale answer means another sale of the member went first: with n of them
            // at once, n - 1 tries at most.
            Err(StoreError::Domain(DomainError::Stale)) if attempt < MAX_STALE_RETRIES => attempt += 1,
            Ok(posted) => {
                crate::follow_up::after_write(state, &posted).await;
                return Ok(posted);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Rings up a purchase: earns points on the amount (converted to programme currency),
/// optionally pays part of it with points, and explains the points in `breakdown`.
/// The same `external_id` again returns the first answer and writes nothing.
#[utoipa::path(post, path = "/v1/transactions", tag = "transactions", request_body = TransactionBody,
    responses((status = 201, body = PurchaseReceipt, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs a partner API key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`: no member by that id, email, phone or card", body = crate::error::ErrorBody),
        (status = 409, description = "`idempotency_conflict`, or `retry`: the member changed meanwhile too often; send it again", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_transaction(
    State(state): State<AppState>,
    Till(partner_id): Till,
    body: ApiJson<TransactionBody>,
) -> Result<Response, ApiError> {
    let partner = state.partner(&partner_id).await?;
    let prepared = prepare_purchase(&state, &partner, body.value, body.hash)?;
    Ok(posted_response(post_ruled(&state, &partner, &prepared).await?))
}

/// The same as a purchase, but nothing is written: what the member would earn and pay.
#[utoipa::path(post, path = "/v1/transactions/quote", tag = "transactions", request_body = TransactionBody,
    responses((status = 200, body = PurchaseReceipt), (status = 403, description = "`forbidden`: this needs a partner API key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn quote_transaction(
    State(state): State<AppState>,
    Till(partner_id): Till,
    body: ApiJson<TransactionBody>,
) -> Result<axum::Json<PurchaseReceipt>, ApiError> {
    let partner = state.partner(&partner_id).await?;
    let prepared = prepare_purchase(&state, &partner, body.value, body.hash)?;
    let cmd = with_rules(&state, &partner, &prepared).await?;
    Ok(axum::Json(state.store.quote_purchase(cmd).await?))
}

#[derive(Deserialize, ToSchema)]
pub struct BatchBody {
    /// 1 to 1000 receipts, each as in `POST /v1/transactions`.
    #[schema(value_type = Vec<TransactionBody>, min_items = 1, max_items = 1000)]
    pub transactions: Vec<serde_json::Value>,
}

/// The answer to a batch: `results[i]` answers `transactions[i]`.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct BatchResults {
    pub results: Vec<BatchResult>,
}

/// One receipt of a batch: posted (`status` 201), or refused with an error.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum BatchResult {
    Posted(Box<BatchPosted>),
    Refused(BatchRefused),
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct BatchPosted {
    /// Always 201.
    #[schema(minimum = 201, maximum = 201)]
    pub status: u16,
    /// Present and true when this receipt had been posted before: the first answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<bool>,
    pub transaction: PurchaseReceipt,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct BatchRefused {
    /// The status the receipt alone would have had: 404, 409 or 422.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub error: crate::error::ErrorDetail,
}

/// A transaction as read later: the receipt of the sale (without the balance, which has
/// moved on since) and what has been returned of it.
#[derive(Serialize, ToSchema)]
pub struct TransactionView {
    pub id: String,
    pub member_id: String,
    pub partner_id: String,
    pub external_id: String,
    pub location_id: Option<String>,
    /// RFC 3339 time of the sale at the till.
    pub occurred_at: String,
    pub total: MoneyView,
    pub points_earned: i64,
    pub points_redeemed: i64,
    /// Value of the redeemed points in programme currency.
    pub redeemed_value: MoneyView,
    /// The same value in the purchase currency.
    pub redeemed_value_local: MoneyView,
    pub status: String,
    pub breakdown: Vec<tally_domain::receipt::BreakdownItem>,
    /// The amount returned so far, in the purchase currency.
    pub returned: MoneyView,
    /// Earned points taken back by returns.
    pub points_reversed: i64,
    /// Spent points given back by returns.
    pub points_refunded: i64,
}

/// A till's end-of-day upload: up to 1000 receipts, each idempotent and answered on its
/// own (`results[i]` answers `transactions[i]` with its status and receipt or error).
#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions", request_body = BatchBody,
    responses((status = 200, body = BatchResults), (status = 403, description = "`forbidden`: this needs a partner API key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_transaction_batch(
    State(state): State<AppState>,
    Till(partner_id): Till,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let partner = state.partner(&partner_id).await?;
    let (batch, _) = parse_json::<BatchBody>(&body)?;
    if batch.transactions.is_empty() || batch.transactions.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "invalid_field",
            format!("transactions: give 1 to {MAX_BATCH} receipts"),
        ));
    }
    let mut slots: Vec<Result<usize, ApiError>> = Vec::with_capacity(batch.transactions.len());
    let mut cmds = Vec::new();
    let mut prepared_all = Vec::new();
    for item in &batch.transactions {
        let prepared = read_value::<TransactionBody>(item, "the receipt")
            .and_then(|b| prepare_purchase(&state, &partner, b, canonical_hash(item)));
        let ruled = match prepared {
            Ok(p) => with_rules(&state, &partner, &p).await.map(|cmd| (p, cmd)),
            Err(e) => Err(e),
        };
        slots.push(ruled.map(|(p, cmd)| {
            cmds.push(cmd);
            prepared_all.push(p);
            cmds.len() - 1
        }));
    }
    let mut posted: Vec<Option<Result<tally_store::Posted, ApiError>>> = Vec::with_capacity(cmds.len());
    for (answer, p) in state.store.post_purchases(cmds).await.into_iter().zip(&prepared_all) {
        posted.push(Some(match answer {
            // Its rules saw a visit count another sale of the batch changed: again, alone.
            Err(StoreError::Domain(DomainError::Stale)) => post_ruled(&state, &partner, p).await,
            Ok(posted) => {
                crate::follow_up::after_write(&state, &posted).await;
                Ok(posted)
            }
            Err(e) => Err(ApiError::from(e)),
        }));
    }
    let mut out = String::with_capacity(posted.len() * 400 + 16);
    out.push_str("{\"results\":[");
    for (i, slot) in slots.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let result = slot.and_then(|idx| posted[idx].take().expect("each receipt answered once"));
        match result {
            Ok(p) => {
                out.push_str(if p.replayed {
                    "{\"status\":201,\"replayed\":true,\"transaction\":"
                } else {
                    "{\"status\":201,\"transaction\":"
                });
                out.push_str(&p.receipt_json);
                out.push('}');
            }
            Err(e) => {
                // A full disk refused this receipt inside a 200: /healthz must know.
                if let Some(fault) = e.fault {
                    state.health.record(fault);
                }
                out.push_str(&format!("{{\"status\":{},", e.status.as_u16()));
                out.push_str(&e.body()[1..]);
            }
        }
    }
    out.push_str("]}");
    Ok(raw_json(StatusCode::OK, out))
}

/// One transaction with what has been returned of it (a partner sees only its own).
#[utoipa::path(get, path = "/v1/transactions/{id}", tag = "transactions", params(("id" = String, Path)),
    responses((status = 200, body = TransactionView)), security(("bearer" = [])))]
pub async fn get_transaction(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<axum::Json<TransactionView>, ApiError> {
    let id: TransactionId = parse_id(&id, "transaction")?;
    let txn = state
        .store
        .transaction(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("transaction"))?;
    if who.partner_scope().is_some_and(|p| *p != txn.partner_id) {
        return Err(ApiError::not_found("transaction"));
    }
    let r: PurchaseReceipt = serde_json::from_str(&txn.receipt_json).map_err(|_| ApiError::internal())?;
    Ok(axum::Json(TransactionView {
        id: r.id,
        member_id: r.member_id,
        partner_id: r.partner_id,
        external_id: r.external_id,
        location_id: r.location_id,
        occurred_at: r.occurred_at,
        total: r.total,
        points_earned: r.points_earned,
        points_redeemed: r.points_redeemed,
        redeemed_value: r.redeemed_value,
        redeemed_value_local: r.redeemed_value_local,
        status: r.status,
        breakdown: r.breakdown,
        returned: MoneyView {
            amount: txn.returned_amount,
            currency: txn.total.currency.code().into(),
        },
        points_reversed: txn.points_reversed,
        points_refunded: txn.points_refunded,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ReturnBody {
    /// The till's id for this return: the same return is never applied twice.
    #[schema(schema_with = crate::schema::field::label::<100>)]
    pub external_id: String,
    /// The amount returned, in the purchase currency.
    pub amount: MoneyInput,
}

/// Returns part or all of a purchase: earned points are taken back in proportion, spent
/// points given back in proportion; what the member already spent is reported as
/// `points_unrecovered`.
#[utoipa::path(post, path = "/v1/transactions/{id}/returns", tag = "transactions", params(("id" = String, Path)), request_body = ReturnBody,
    responses((status = 201, body = ReturnReceipt, headers(("idempotent-replayed" = bool, description = "true when this answers an earlier request again"))),
        (status = 403, description = "`forbidden`: this needs a partner API key", body = crate::error::ErrorBody),
        (status = 404, description = "`transaction_not_found`: no such transaction of this partner", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_return(
    State(state): State<AppState>,
    Till(partner_id): Till,
    Path(id): Path<String>,
    body: ApiJson<ReturnBody>,
) -> Result<Response, ApiError> {
    let transaction_id: TransactionId = parse_id(&id, "transaction")?;
    let cmd = ReturnCmd {
        return_id: keys::new::<ReturnId>(),
        partner_id,
        transaction_id,
        external_id: parse_label("external_id", &body.value.external_id, 100)?,
        request_hash: body.hash,
        amount: body.value.amount.parse("amount")?,
        program: state.program().terms(),
        now: state.now(),
    };
    let posted = state.store.post_return(cmd).await?;
    crate::follow_up::after_write(&state, &posted).await;
    Ok(posted_response(posted))
}
