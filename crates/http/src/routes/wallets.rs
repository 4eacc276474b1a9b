//! Shared wallets (`/v1/wallets`): households and businesses that collect points
//! together. The operator opens them and manages who belongs with which rights (a
//! household's members join with an invitation code); the till names a wallet on a sale
//! (`wallet_id`) or the member's default applies. A partner sees, for a member at its
//! till, which wallets they may earn into and spend, never the wallet's members or
//! statement.

use crate::auth::Operator;
use crate::error::ApiError;
use crate::extract::{ApiJson, parse_id};
use crate::idempotency::CarriesSecret;
use crate::state::{AppState, Principal};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use tally_domain::identity::parse_label;
use tally_domain::ids::{MemberId, WalletId};
use tally_domain::receipt::BalanceView;
use tally_domain::wallets::{Rights, WalletKind};
use tally_store::{JoinWallet, NewWallet, StatementLine, WalletRights, WalletRow, keys};
use utoipa::ToSchema;

/// Opens a wallet (`POST /v1/wallets`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletBody {
    pub kind: WalletKind,
    /// What members and staff call it ("The Nováks", "Acme s.r.o. travel").
    #[schema(schema_with = crate::schema::field::label::<80>)]
    pub name: String,
    /// A household's owner (required for a household, refused for a business): the
    /// first member, who invites the others and splits the points when it closes.
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_id)]
    pub owner_id: Option<String>,
    /// The owner's rights (default: both).
    #[serde(default)]
    pub owner_rights: Option<Rights>,
    /// A business's registered name (required for a business).
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_label::<120>)]
    pub company_name: Option<String>,
    /// A business's VAT id, as registered (letters and digits, 4 to 20).
    #[serde(default)]
    #[schema(schema_with = vat_schema)]
    pub vat_id: Option<String>,
}

fn vat_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::String,
            utoipa::openapi::schema::Type::Null,
        ]))
        .pattern(Some("^[A-Z0-9]{4,20}$"))
        .examples([serde_json::json!("CZ12345678")])
        .build()
}

/// A member's place in a wallet.
#[derive(Serialize, ToSchema)]
pub struct WalletMemberView {
    pub member_id: String,
    /// `owner` or `member` of a household, `contact` of a business.
    pub role: String,
    pub earn_into: bool,
    pub spend: bool,
    /// The wallet a sale uses for this member when the till names none.
    pub default: bool,
    pub joined_at: String,
    /// When the member left (what they pooled stayed).
    pub left_at: Option<String>,
}

/// A shared wallet, as the operator sees it.
#[derive(Serialize, ToSchema)]
pub struct WalletView {
    pub id: String,
    pub kind: WalletKind,
    pub name: String,
    pub owner_id: Option<String>,
    pub company_name: Option<String>,
    pub vat_id: Option<String>,
    /// `open`, or `closed` (its points were split; nothing moves any more).
    pub status: String,
    pub created_at: String,
    pub closed_at: Option<String>,
    pub balance: BalanceView,
    pub lifetime_earned: i64,
    pub members: Vec<WalletMemberView>,
}

fn view(w: WalletRow) -> WalletView {
    WalletView {
        id: w.id.into_string(),
        kind: w.kind,
        name: w.name,
        owner_id: w.owner.map(MemberId::into_string),
        company_name: w.company_name,
        vat_id: w.vat_id,
        status: if w.closed_at.is_some() { "closed" } else { "open" }.into(),
        created_at: w.created_at.to_string(),
        closed_at: w.closed_at.map(|t| t.to_string()),
        balance: BalanceView {
            available: w.balance.available,
            pending: w.balance.pending,
        },
        lifetime_earned: w.balance.lifetime_earned,
        members: w
            .members
            .into_iter()
            .map(|m| WalletMemberView {
                member_id: m.member_id.into_string(),
                role: m.role,
                earn_into: m.rights.earn_into,
                spend: m.rights.spend,
                default: m.is_default,
                joined_at: m.joined_at.to_string(),
                left_at: m.left_at.map(|t| t.to_string()),
            })
            .collect(),
    }
}

fn wallet_id(raw: &str) -> Result<WalletId, ApiError> {
    parse_id(raw, "wallet")
}

/// A member named in a body: a malformed id is a bad field, not a missing resource.
fn member_field(raw: &str, field: &str) -> Result<MemberId, ApiError> {
    tally_domain::ids::Id::parse(raw)
        .ok_or_else(|| ApiError::invalid("invalid_field", format!("{field}: not a member id")))
}

/// Opens a shared wallet (operator): a household with its owner as first member, or a
/// business (its contacts are added next).
#[utoipa::path(post, path = "/v1/wallets", tag = "wallets", request_body = WalletBody,
    responses((status = 201, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`member_not_found`: no such owner", body = crate::error::ErrorBody),
        (status = 409, description = "`household_taken`: the owner already belongs to a household", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_wallet(
    State(state): State<AppState>,
    _operator: Operator,
    body: ApiJson<WalletBody>,
) -> Result<(StatusCode, Json<WalletView>), ApiError> {
    let b = body.value;
    let name = parse_label("name", &b.name, 80)?;
    let company_name = b
        .company_name
        .as_deref()
        .map(|c| parse_label("company_name", c, 120))
        .transpose()?;
    if let Some(vat) = &b.vat_id
        && !(4..=20).contains(&vat.len()) | !vat.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Err(ApiError::invalid(
            "invalid_field",
            "vat_id: 4 to 20 capital letters and digits, as CZ12345678",
        ));
    }
    let owner = match (b.kind, &b.owner_id, &company_name) {
        (WalletKind::Household, Some(owner), None) if b.vat_id.is_none() => Some(member_field(owner, "owner_id")?),
        (WalletKind::Business, None, Some(_)) if b.owner_rights.is_none() => None,
        (WalletKind::Household, ..) => {
            return Err(ApiError::invalid(
                "invalid_field",
                "a household needs owner_id and has no company_name or vat_id",
            ));
        }
        (WalletKind::Business, ..) => {
            return Err(ApiError::invalid(
                "invalid_field",
                "a business needs company_name and has no owner_id or owner_rights; add its contacts next",
            ));
        }
    };
    let new = NewWallet {
        id: keys::new::<WalletId>(),
        kind: b.kind,
        name,
        owner,
        owner_rights: b.owner_rights.unwrap_or(Rights {
            earn_into: true,
            spend: true,
        }),
        company_name,
        vat_id: b.vat_id,
        now: state.now(),
    };
    let row = state.store.create_wallet(new).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// A shared wallet with its balance and members, those who left included (operator).
#[utoipa::path(get, path = "/v1/wallets/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_wallet(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<WalletView>, ApiError> {
    let row = state
        .store
        .wallet(wallet_id(&id)?)
        .await?
        .ok_or_else(|| ApiError::not_found("wallet"))?;
    Ok(Json(view(fresh_wallet(&state, row).await?)))
}

/// A wallet read again after settling, if pending points have matured or points
/// expired since: the balance shown is what its members can spend now.
async fn fresh_wallet(state: &AppState, row: WalletRow) -> Result<WalletRow, ApiError> {
    let now = state.now();
    if row.closed_at.is_none() && row.next_due_at.is_some_and(|d| d <= now) {
        state.store.settle_wallet(&row.id, now).await?;
        return state
            .store
            .wallet(row.id.clone())
            .await?
            .ok_or_else(|| ApiError::not_found("wallet"));
    }
    Ok(row)
}

/// An invitation to a household (`POST /v1/wallets/{id}/invites`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    /// How long the code may be used (1 to 30 days, default 7).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 30)]
    pub valid_days: Option<u32>,
}

/// A new invitation code: shown once, only its hash is kept.
#[derive(Serialize, ToSchema)]
pub struct InviteView {
    /// 16 characters (80 random bits) in groups of four; case and dashes do not matter.
    #[schema(example = "7K3M-QX9D-2HPT-V8NC")]
    pub code: String,
    pub expires_at: String,
}

/// Crockford's base32: no I, L, O, U, so a code read aloud is not misread.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn new_code() -> String {
    let chars: Vec<char> = keys::random_bytes::<16>()
        .iter()
        .map(|b| CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The stored form of a code as typed: capitals, without dashes or spaces.
fn code_hash(typed: &str) -> Result<String, ApiError> {
    let code: String = typed
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if code.len() != 16 || !code.bytes().all(|b| CODE_ALPHABET.contains(&b)) {
        return Err(ApiError::invalid(
            "invalid_field",
            "code: 16 letters and digits as given with the invitation",
        ));
    }
    Ok(keys::hash_key(&code))
}

/// Issues an invitation code for a household (operator, for its owner). A member joins
/// with it once, before it expires.
#[utoipa::path(post, path = "/v1/wallets/{id}/invites", tag = "wallets", params(("id" = String, Path)), request_body = InviteBody,
    responses((status = 201, body = InviteView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`wallet_closed`; `not_a_household`: a business has no invitations", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_invite(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<InviteBody>,
) -> Result<(StatusCode, axum::Extension<CarriesSecret>, Json<InviteView>), ApiError> {
    let id = wallet_id(&id)?;
    let days = body.value.valid_days.unwrap_or(7);
    if !(1..=30).contains(&days) {
        return Err(ApiError::invalid("invalid_field", "valid_days: 1 to 30"));
    }
    let now = state.now();
    let expires_at = now
        .checked_add((i64::from(days) * 24).hours())
        .map_err(|_| ApiError::invalid("invalid_field", "valid_days: too far"))?;
    let code = new_code();
    state
        .store
        .create_wallet_invite(id, code_hash(&code)?, expires_at, now)
        .await?;
    // The code is shown once: an Idempotency-Key retry does not get it again.
    Ok((
        StatusCode::CREATED,
        axum::Extension(CarriesSecret),
        Json(InviteView {
            code,
            expires_at: expires_at.to_string(),
        }),
    ))
}

/// A member joining (`POST /v1/wallets/{id}/members`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBody {
    #[schema(schema_with = crate::schema::field::id)]
    pub member_id: String,
    /// A household's invitation code (required for a household; a business's contacts
    /// are added without one).
    #[serde(default)]
    #[schema(schema_with = crate::schema::field::nullable_label::<40>)]
    pub code: Option<String>,
    pub earn_into: bool,
    pub spend: bool,
    /// Make this the member's default wallet at the till (default: only if they earn
    /// into it and have no default yet).
    #[serde(default)]
    pub default: bool,
}

/// Adds a member to a wallet (operator): to a household with an invitation code, to a
/// business as a contact. A member belongs to one household at most.
#[utoipa::path(post, path = "/v1/wallets/{id}/members", tag = "wallets", params(("id" = String, Path)), request_body = JoinBody,
    responses((status = 201, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`, `member_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`household_taken`, `already_in_wallet`, `wallet_closed`", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: a missing, used, expired or mistyped code", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn join_wallet(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<JoinBody>,
) -> Result<(StatusCode, Json<WalletView>), ApiError> {
    let b = body.value;
    let join = JoinWallet {
        wallet_id: wallet_id(&id)?,
        member_id: member_field(&b.member_id, "member_id")?,
        invite_hash: b.code.as_deref().map(code_hash).transpose()?,
        rights: Rights {
            earn_into: b.earn_into,
            spend: b.spend,
        },
        make_default: b.default,
        now: state.now(),
    };
    let row = state.store.join_wallet(join).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// New rights for a member (`PATCH /v1/wallets/{id}/members/{member_id}`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RightsBody {
    pub earn_into: bool,
    pub spend: bool,
    /// `true` makes this the member's default wallet, `false` stops it being so;
    /// absent leaves it.
    #[serde(default)]
    pub default: Option<bool>,
}

/// Changes a member's rights in a wallet (operator).
#[utoipa::path(patch, path = "/v1/wallets/{id}/members/{member_id}", tag = "wallets",
    params(("id" = String, Path), ("member_id" = String, Path)), request_body = RightsBody,
    responses((status = 200, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`; `member_not_found`: not a member of this wallet", body = crate::error::ErrorBody),
        (status = 409, description = "`wallet_closed`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn set_rights(
    State(state): State<AppState>,
    _operator: Operator,
    Path((id, member)): Path<(String, String)>,
    body: ApiJson<RightsBody>,
) -> Result<Json<WalletView>, ApiError> {
    let b = body.value;
    let rights = WalletRights {
        wallet_id: wallet_id(&id)?,
        member_id: parse_id(&member, "member")?,
        rights: Rights {
            earn_into: b.earn_into,
            spend: b.spend,
        },
        make_default: b.default,
    };
    Ok(Json(view(state.store.set_wallet_rights(rights).await?)))
}

/// A member leaves a wallet (operator); what they pooled stays. A household's owner
/// closes it instead.
#[utoipa::path(delete, path = "/v1/wallets/{id}/members/{member_id}", tag = "wallets",
    params(("id" = String, Path), ("member_id" = String, Path)),
    responses((status = 200, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`; `member_not_found`: not a member of this wallet", body = crate::error::ErrorBody),
        (status = 409, description = "`owner_cannot_leave`, `wallet_closed`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn leave_wallet(
    State(state): State<AppState>,
    _operator: Operator,
    Path((id, member)): Path<(String, String)>,
) -> Result<Json<WalletView>, ApiError> {
    let (id, member) = (wallet_id(&id)?, parse_id(&member, "member")?);
    Ok(Json(view(state.store.leave_wallet(id, member, state.now()).await?)))
}

/// One member's share of a closing wallet.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShareBody {
    #[schema(schema_with = crate::schema::field::id)]
    pub member_id: String,
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    pub points: i64,
}

/// Closing a wallet (`POST /v1/wallets/{id}/close`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    /// Every available point to its current members, each named once (empty for an
    /// empty wallet). Each receives the points with the expiry dates they had.
    #[schema(max_items = 100)]
    pub split: Vec<ShareBody>,
}

/// Closes a wallet (operator, for a household's owner or a business): its points are
/// split among its members as a ledger transfer (`wallet_split`), every membership ends.
#[utoipa::path(post, path = "/v1/wallets/{id}/close", tag = "wallets", params(("id" = String, Path)), request_body = CloseBody,
    responses((status = 200, body = WalletView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`", body = crate::error::ErrorBody),
        (status = 409, description = "`wallet_not_empty`: the split does not give out every point, or points are pending; `wallet_closed`; `retry`: members kept joining while it closed, send it again", body = crate::error::ErrorBody),
        (status = 422, description = "`invalid_field`: a member named twice or not in the wallet", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn close_wallet(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
    body: ApiJson<CloseBody>,
) -> Result<Json<WalletView>, ApiError> {
    let id = wallet_id(&id)?;
    if body.value.split.len() > 100 {
        return Err(ApiError::invalid("invalid_field", "split: at most 100 shares"));
    }
    let split = body
        .value
        .split
        .iter()
        .map(|s| {
            let points = tally_domain::money::parse_points("split", s.points)?;
            Ok((member_field(&s.member_id, "split")?, points))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(view(state.store.close_wallet(id, split, state.now()).await?)))
}

/// One line of a wallet's statement.
#[derive(Serialize, ToSchema)]
pub struct StatementLineView {
    /// The member who earned, spent or received the points; null for expiry.
    pub member_id: Option<String>,
    /// The ledger code: `earn`, `redeem`, `return_reversal`, `return_refund`,
    /// `expire`, `wallet_split`.
    pub code: String,
    /// Net points in (+) or out (−) of the wallet.
    pub points: i64,
    pub entries: i64,
}

/// Who put what into a wallet and took what out, per member and ledger code.
#[derive(Serialize, ToSchema)]
pub struct StatementView {
    pub wallet_id: String,
    pub lines: Vec<StatementLineView>,
}

/// A wallet's statement per member, from the ledger (operator).
#[utoipa::path(get, path = "/v1/wallets/{id}/statement", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = StatementView),
        (status = 403, description = "`forbidden`: this needs the operator key", body = crate::error::ErrorBody),
        (status = 404, description = "`wallet_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn wallet_statement(
    State(state): State<AppState>,
    _operator: Operator,
    Path(id): Path<String>,
) -> Result<Json<StatementView>, ApiError> {
    let id = wallet_id(&id)?;
    let lines = state.store.wallet_statement(id.clone()).await?;
    Ok(Json(StatementView {
        wallet_id: id.into_string(),
        lines: lines
            .into_iter()
            .map(|l: StatementLine| StatementLineView {
                member_id: l.member_id.map(MemberId::into_string),
                code: l.code,
                points: l.points,
                entries: l.entries,
            })
            .collect(),
    }))
}

/// A wallet a member belongs to, as the till needs it.
#[derive(Serialize, ToSchema)]
pub struct MemberWalletView {
    pub id: String,
    pub kind: WalletKind,
    /// The wallet's name (a family's, a company's): null for a partner the member has not
    /// shared their personal data with.
    pub name: Option<String>,
    /// `owner`, `member` or `contact`: null where `name` is.
    pub role: Option<String>,
    pub earn_into: bool,
    /// The member may pay with this wallet's points (`not_allowed_to_spend` otherwise).
    pub spend: bool,
    pub default: bool,
    /// What the member may spend now (absent without `spend`).
    pub available: Option<i64>,
}

/// The open wallets a member belongs to (operator or partner key): rights, default and,
/// where they may spend, the points available now. Never other members or statements;
/// a partner the member has not shared their personal data with sees no names or roles.
#[utoipa::path(get, path = "/v1/members/{id}/wallets", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = Vec<MemberWalletView>),
        (status = 404, description = "`member_not_found`", body = crate::error::ErrorBody)),
    security(("bearer" = [])))]
pub async fn member_wallets(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<Json<Vec<MemberWalletView>>, ApiError> {
    let member: MemberId = parse_id(&id, "member")?;
    let mut rows = Vec::new();
    for w in state.store.member_wallets(member.clone()).await? {
        rows.push(fresh_wallet(&state, w).await?);
    }
    // Consents are looked up only when there is a name to show or hide.
    let personal = !rows.is_empty() && crate::routes::members::sees_personal_data(&state, &who, &member).await?;
    Ok(Json(
        rows.into_iter()
            .filter_map(|w| {
                let me = w
                    .members
                    .iter()
                    .find(|m| m.member_id == member && m.left_at.is_none())?;
                Some(MemberWalletView {
                    id: w.id.to_string(),
                    kind: w.kind,
                    name: personal.then(|| w.name.clone()),
                    role: personal.then(|| me.role.clone()),
                    earn_into: me.rights.earn_into,
                    spend: me.rights.spend,
                    default: me.is_default,
                    available: me.rights.spend.then_some(w.balance.available),
                })
            })
            .collect(),
    ))
}
