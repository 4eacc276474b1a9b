//! Members: sign-up, lookup at the till, balance and history.

use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, parse_id};
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tally_domain::identity::{Identity, parse_country, parse_label};
use tally_domain::ids::{MemberId, PartnerId};
use tally_store::{ActivityQuery, MemberRow, NewMember, keys};
use utoipa::{IntoParams, ToSchema};

/// A new member: email or phone (or both) is required.
#[derive(Deserialize)]
pub struct NewMemberBody {
    pub email: Option<String>,
    /// Any common format; stored in E.164 (read in `country` when it has no `+`).
    pub phone: Option<String>,
    /// A loyalty card number (digits).
    pub card: Option<String>,
    pub name: Option<String>,
    /// ISO 3166-1 alpha-2, such as `CZ`.
    pub country: Option<String>,
    /// The referral code of the member who brought this one.
    pub referral_code: Option<String>,
}

impl utoipa::PartialSchema for NewMemberBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        new_member_schema().into()
    }
}

impl ToSchema for NewMemberBody {}

/// [`NewMemberBody`], with "email or phone" said as `anyOf`.
fn new_member_schema() -> utoipa::openapi::schema::Schema {
    use crate::schema::field;
    use utoipa::openapi::schema::{AllOfBuilder, AnyOfBuilder, ObjectBuilder, Schema, SchemaType, Type};
    let code = ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .pattern(Some(r"^\s*[A-Za-z0-9]{1,32}\s*$"))
        .description(Some("The referral code of the member who brought this one."));
    let fields = ObjectBuilder::new()
        .property("email", field::nullable_email())
        .property("phone", field::nullable_phone())
        .property("card", field::nullable_card())
        .property("name", field::nullable_label::<200>())
        .property("country", field::nullable_country())
        .property("referral_code", code);
    let with = |name: &str| {
        ObjectBuilder::new()
            .property(name, ObjectBuilder::new().schema_type(Type::String))
            .required(name)
    };
    Schema::AllOf(
        AllOfBuilder::new()
            .description(Some("A new member: email or phone (or both) is required."))
            .item(fields)
            .item(AnyOfBuilder::new().item(with("email")).item(with("phone")))
            .build(),
    )
}

#[derive(Serialize, ToSchema)]
pub struct BalanceFull {
    pub available: i64,
    pub pending: i64,
    /// Points earned over the membership, net of returns.
    pub lifetime_earned: i64,
    /// Points set aside for vouchers not yet used: they go to the partner when the
    /// voucher is used, or back to `available`. Shown to the operator only: to a partner
    /// it would tell of vouchers the member holds with other partners.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved: Option<i64>,
}

impl BalanceFull {
    /// The balance as `who` may see it.
    fn for_caller(mut self, who: &Principal) -> Self {
        if who.partner_scope().is_some() {
            self.reserved = None;
        }
        self
    }
}

impl From<(tally_domain::plan::Balance, i64)> for BalanceFull {
    fn from((b, reserved): (tally_domain::plan::Balance, i64)) -> Self {
        BalanceFull {
            available: b.available,
            pending: b.pending,
            lifetime_earned: b.lifetime_earned,
            reserved: Some(reserved),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    pub name: Option<String>,
    pub country: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub cards: Vec<String>,
    /// This member's own code to refer others.
    pub referral_code: String,
    pub referred_by: Option<String>,
    pub created_at: String,
    pub balance: BalanceFull,
    /// Set by the operator; earning rules read them (`member.tier`, `member.segments`, `member.plan`).
    pub tier: Option<String>,
    pub segments: Vec<String>,
    pub plan: Option<String>,
}

impl From<MemberRow> for MemberView {
    fn from(m: MemberRow) -> Self {
        let find = |kind: &str| m.identities.iter().find(|(k, _)| k == kind).map(|(_, v)| v.clone());
        MemberView {
            email: find("email"),
            phone: find("phone"),
            cards: m
                .identities
                .iter()
                .filter(|(k, _)| k == "card")
                .map(|(_, v)| v.clone())
                .collect(),
            id: m.id.into_string(),
            name: m.name,
            country: m.country,
            referral_code: m.referral_code,
            referred_by: m.referred_by.map(MemberId::into_string),
            created_at: m.created_at.to_string(),
            balance: (m.balance, m.reserved).into(),
            tier: m.profile.tier,
            segments: m.profile.segments,
            plan: m.profile.plan,
        }
    }
}

/// What a partner's key sees of a member who has not shared their personal data with
/// that partner: enough to greet them and serve them at the till.
#[derive(Serialize, ToSchema)]
pub struct MemberSummary {
    pub id: String,
    /// The first name and the initial of the last (`Jana N.`), when a name is known.
    pub display_name: Option<String>,
    pub balance: BalanceFull,
    pub tier: Option<String>,
    /// False: this member has not shared their personal data with the calling partner
    /// (with consent, the partner sees the full member).
    pub shares_personal_data: bool,
}

/// A member as the caller may see them: in full for the operator and for partners the
/// member shares their data with, else as a summary.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum MemberAnswer {
    Full(Box<MemberView>),
    Summary(MemberSummary),
}

/// The first name and the initial of the last: `Jana Nováková` → `Jana N.`.
pub fn short_name(name: &str) -> Option<String> {
    let mut words = name.split_whitespace();
    let first = words.next()?;
    Some(match words.last().and_then(|w| w.chars().next()) {
        Some(initial) => format!("{first} {initial}."),
        None => first.to_string(),
    })
}

/// Whether `who` may see the member's personal data: the operator always, a partner
/// the member has given their consent to.
pub async fn sees_personal_data(state: &AppState, who: &Principal, member: &MemberId) -> Result<bool, ApiError> {
    let Some(partner) = who.partner_scope() else {
        return Ok(true);
    };
    Ok(state
        .store
        .consents(member)
        .await?
        .iter()
        .any(|c| c.partner_id == *partner))
}

/// `row` as `who` may see it.
pub async fn member_for(state: &AppState, who: &Principal, row: MemberRow) -> Result<MemberAnswer, ApiError> {
    if sees_personal_data(state, who, &row.id).await? {
        let mut view = MemberView::from(row);
        view.balance = view.balance.for_caller(who);
        return Ok(MemberAnswer::Full(Box::new(view)));
    }
    Ok(MemberAnswer::Summary(MemberSummary {
        id: row.id.into_string(),
        display_name: row.name.as_deref().and_then(short_name),
        balance: BalanceFull::from((row.balance, row.reserved)).for_caller(who),
        tier: row.profile.tier,
        shares_personal_data: false,
    }))
}

/// Signs up a member (operator or partner key). Email or phone is required.
#[utoipa::path(post, path = "/v1/members", tag = "members", request_body = NewMemberBody, responses((status = 201, body = MemberView),
    (status = 409, description = "`identity_taken`: another member has this email, phone or card; or `idempotency_conflict`", body = crate::error::ErrorBody),
    (status = 422, description = "`invalid_field`; `unknown_referral_code`: no member has this referral code", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn create_member(
    State(state): State<AppState>,
    _who: Principal,
    body: ApiJson<NewMemberBody>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let b = body.value;
    let country = b.country.as_deref().map(|c| parse_country("country", c)).transpose()?;
    if b.email.is_none() && b.phone.is_none() {
        return Err(ApiError::invalid("invalid_field", "email or phone is required"));
    }
    let mut identities = Vec::new();
    if let Some(email) = &b.email {
        identities.push(Identity::email(email)?);
    }
    if let Some(phone) = &b.phone {
        identities.push(Identity::phone(phone, country.as_deref())?);
    }
    if let Some(card) = &b.card {
        identities.push(Identity::card(card)?);
    }
    let referred_by_code = match b.referral_code.as_deref().map(str::trim) {
        Some(code) if code.len() > 32 || code.is_empty() => {
            return Err(ApiError::invalid(
                "unknown_referral_code",
                "no member has this referral code",
            ));
        }
        Some(code) => Some(code.to_uppercase()),
        None => None,
    };
    let member = NewMember {
        id: keys::new::<MemberId>(),
        name: b.name.as_deref().map(|n| parse_label("name", n, 200)).transpose()?,
        country,
        referral_code: keys::referral_code(),
        referred_by_code,
        identities,
        created_at: state.now(),
    };
    let row = state.store.create_member(member).await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

/// Reads a member, settling first if pending points have matured or points expired,
/// so the balance shown is the balance the member can spend now.
pub async fn fresh_member(state: &AppState, row: MemberRow) -> Result<MemberRow, ApiError> {
    let now = state.now();
    if row.next_due_at.is_some_and(|d| d <= now) {
        state.store.settle_member(&row.id, now).await?;
        return state
            .store
            .member(&row.id)
            .await?
            .ok_or_else(|| ApiError::not_found("member"));
    }
    Ok(row)
}

async fn load_member(state: &AppState, id: &str) -> Result<MemberRow, ApiError> {
    let id: MemberId = parse_id(id, "member")?;
    let row = state
        .store
        .member(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    fresh_member(state, row).await
}

/// One member with balance: in full for the operator and for a partner the member
/// shares their personal data with; a summary for other partners.
#[utoipa::path(get, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path)), responses((status = 200, body = MemberAnswer)), security(("bearer" = [])))]
pub async fn get_member(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<MemberAnswer>, ApiError> {
    let row = load_member(&state, &id).await?;
    Ok(Json(member_for(&state, &who, row).await?))
}

/// Exactly one of these (a malformed one finds no member: 404).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LookupParams {
    /// A phone number; without `+` it is read in the partner's country.
    #[param(max_length = 40)]
    pub phone: Option<String>,
    #[param(max_length = 254)]
    pub email: Option<String>,
    /// A loyalty card number.
    #[param(max_length = 64)]
    pub card: Option<String>,
}

/// Finds a member by phone, email or card at the till (operator or partner key); what a
/// partner sees is as for `GET /v1/members/{id}`.
#[utoipa::path(get, path = "/v1/members/lookup", tag = "members", params(LookupParams), responses((status = 200, body = MemberAnswer),
    (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody),
    (status = 422, description = "`invalid_query`: give exactly one of phone, email, card", body = crate::error::ErrorBody)), security(("bearer" = [])))]
pub async fn lookup_member(
    State(state): State<AppState>,
    who: Principal,
    ApiQuery(q): ApiQuery<LookupParams>,
) -> Result<Json<MemberAnswer>, ApiError> {
    // A local phone number is read in the partner's country.
    let region = match who.partner_scope() {
        Some(id) => Some(state.partner(id).await?.country),
        None => None,
    };
    let identity = match (q.phone, q.email, q.card) {
        (Some(p), None, None) => Identity::phone(&p, region.as_deref()),
        (None, Some(e), None) => Identity::email(&e),
        (None, None, Some(c)) => Identity::card(&c),
        _ => {
            return Err(ApiError::invalid(
                "invalid_query",
                "give exactly one of phone, email, card",
            ));
        }
    };
    // A malformed identity cannot belong to anyone.
    let identity = identity.map_err(|_| ApiError::not_found("member"))?;
    let row = state
        .store
        .lookup_member(&identity)
        .await?
        .ok_or_else(|| ApiError::not_found("member"))?;
    let row = fresh_member(&state, row).await?;
    Ok(Json(member_for(&state, &who, row).await?))
}

/// A member's points: available, pending and earned over time.
#[utoipa::path(get, path = "/v1/members/{id}/balance", tag = "members", params(("id" = String, Path)), responses((status = 200, body = BalanceFull)), security(("bearer" = [])))]
pub async fn get_balance(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<BalanceFull>, ApiError> {
    Ok(Json(
        MemberView::from(load_member(&state, &id).await?)
            .balance
            .for_caller(&who),
    ))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// 1 to 200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^([1-9][0-9]{0,17})?$")]
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityView {
    pub id: String,
    /// earn, earn_pending, mature, redeem, expire, return_reversal, return_refund
    pub kind: String,
    /// Change to the member's points (maturation: the points that became available).
    pub points: i64,
    pub occurred_at: String,
    pub partner_id: Option<String>,
    pub transaction_id: Option<String>,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
pub struct ActivityPage {
    pub items: Vec<ActivityView>,
    pub next_cursor: Option<String>,
}

/// A member's history, newest first. With a partner key, only that partner's items.
#[utoipa::path(get, path = "/v1/members/{id}/activity", tag = "members", params(("id" = String, Path), PageParams), responses((status = 200, body = ActivityPage)), security(("bearer" = [])))]
pub async fn list_activity(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<Json<ActivityPage>, ApiError> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("invalid_query", "limit must be 1 to 200"));
    }
    let before_id = match page.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ApiError::invalid("invalid_cursor", "the cursor is not one this API gave"))?,
        ),
    };
    let member = load_member(&state, &id).await?;
    let rows = state
        .store
        .activity(ActivityQuery {
            member_id: member.id,
            partner_id: who.partner_scope().cloned(),
            before_id,
            limit,
        })
        .await?;
    let next_cursor = if rows.len() == limit as usize {
        rows.last().map(|r| r.id.to_string())
    } else {
        None
    };
    let items = rows
        .into_iter()
        .map(|r| ActivityView {
            id: format!("act_{}", r.id),
            kind: r.kind,
            points: r.points,
            occurred_at: r.occurred_at.to_string(),
            partner_id: r.partner_id.map(PartnerId::into_string),
            transaction_id: r.transaction_id,
            description: r.description,
        })
        .collect();
    Ok(Json(ActivityPage { items, next_cursor }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileBody {
    /// The member's tier (`gold`); null clears it. With a tier ladder the tier is computed:
    /// give none (it is kept), or get `422 tier_is_computed`.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_label::<64>)]
    pub tier: Option<String>,
    /// Segments for rules and offers (`students`, `business_travellers`); at most 50.
    #[serde(default)]
    #[schema(schema_with = segments_schema)]
    pub segments: Vec<String>,
    /// A paid plan the member is on; null clears it.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_label::<64>)]
    pub plan: Option<String>,
}

fn segments_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::schema::field::label::<64>())
        .max_items(Some(50))
        .description(Some(
            "Segments for rules and offers (`students`, `business_travellers`); at most 50.",
        ))
        .build()
}

/// Sets what rules know of a member: tier, segments and plan (operator). The whole
/// profile is replaced.
#[utoipa::path(patch, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path)), request_body = ProfileBody,
    responses((status = 200, body = MemberView), (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn update_member(
    State(state): State<AppState>,
    _: crate::auth::Operator,
    Path(id): Path<String>,
    body: ApiJson<ProfileBody>,
) -> Result<Json<MemberView>, ApiError> {
    let id: MemberId = parse_id(&id, "member")?;
    let b = body.value;
    if b.segments.len() > 50 {
        return Err(ApiError::invalid("invalid_field", "segments: at most 50"));
    }
    // With a ladder the tier is computed: a level by hand goes through
    // PUT /v1/members/{id}/tier, with a reason and an end date.
    let keep_tier = !state.program().tiers.levels.is_empty();
    if keep_tier && b.tier.is_some() {
        return Err(ApiError::invalid(
            "tier_is_computed",
            "tier: the programme computes tiers from its ladder; set a level by hand with PUT /v1/members/{id}/tier",
        ));
    }
    // With membership plans on sale, memberships set the plan.
    let keep_plan = !state.program().plans.is_empty();
    if keep_plan && b.plan.is_some() {
        return Err(ApiError::invalid(
            "plan_from_membership",
            "plan: the programme sells membership plans; a member's plan comes from their membership",
        ));
    }
    let profile = tally_store::MemberProfile {
        keep_tier,
        keep_plan,
        tier: b.tier.map(|t| parse_label("tier", &t, 64)).transpose()?,
        segments: b
            .segments
            .iter()
            .map(|s| parse_label("segments", s, 64))
            .collect::<Result<Vec<_>, _>>()?,
        plan: b.plan.map(|p| parse_label("plan", &p, 64)).transpose()?,
    };
    Ok(Json(state.store.set_member_profile(&id, profile).await?.into()))
}
