//! Redeeming a reward, using its voucher at the partner, and giving a voucher back
//! (cancelled, or expired unused).

use crate::DomainError;
use crate::ids::PartnerId;
use crate::ledger::{Account, EntryCode};
use crate::plan::{ActivityKind, MemberState, Plan, Reservation, TakenLot, plan_fulfil, plan_release, plan_reserve};
use crate::rewards::{Availability, Lang, OfferFacts, Redemption, RedemptionStatus, Reward, RewardKind, reason_text};
use jiff::Timestamp;

/// What to write for a redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemDecision {
    pub plan: Plan,
    /// What the points were taken from, kept with the voucher.
    pub taken: Vec<TakenLot>,
    /// `issued` (a voucher), or `donated`.
    pub status: RedemptionStatus,
    pub expires_at: Option<Timestamp>,
    /// The reward's stock after this one; `None` for a reward without stock.
    pub stock_left: Option<i64>,
    /// Whether it took a unit of stock: only then does giving it back return one.
    pub took_stock: bool,
}

/// Decides a member's redemption of `reward`, recorded as `redemption_id`, from what
/// the store read (`offer`: her points, the stock left, what she took this period;
/// `state`: her balances and lots). A voucher sets the points aside in her `reserved`
/// account; a donation gives them to the charity at once.
pub fn decide_redeem(
    reward: &Reward,
    offer: &OfferFacts<'_>,
    state: &MemberState,
    redemption_id: &str,
) -> Result<RedeemDecision, DomainError> {
    // Her points as they stand once what is due has matured or expired, as her
    // catalogue showed them (reads settle first).
    let settled = OfferFacts {
        available: crate::plan::plan_settle(state, offer.now)?.balance_after.available,
        ..*offer
    };
    let offer = &settled;
    match reward.availability(offer) {
        Availability::Redeemable => {}
        Availability::NeedsPoints { .. } => {
            return Err(DomainError::InsufficientPoints {
                available: offer.available,
                requested: reward.spec.cost,
            });
        }
        other => {
            let note = crate::rewards::text_in(&reward.spec.eligibility_note, Lang::EN);
            return Err(DomainError::Refused {
                code: other.code(),
                message: reason_text(&other, Lang::EN, note).unwrap_or_default(),
            });
        }
    }
    let name = reward.name_in(Lang::EN);
    let points = reward.spec.cost;
    let (to, code, kind, status, description, expires_at) = match (&reward.spec.kind, &reward.spec.charity) {
        (RewardKind::Donation, Some(charity)) => (
            Account::ProgramDonations(charity.clone()),
            EntryCode::Donation,
            ActivityKind::Donation,
            RedemptionStatus::Donated,
            format!("Gave {points} points: {name}"),
            None,
        ),
        _ => (
            Account::MemberReserved(state.member_id.to_string()),
            EntryCode::RewardReserve,
            ActivityKind::RewardReserve,
            RedemptionStatus::Issued,
            format!("Redeemed {points} points for {name} (a voucher)"),
            Some(reward.voucher_expiry(offer.now)),
        ),
    };
    let reservation = Reservation {
        id: redemption_id,
        points,
        to,
        code,
        kind,
        partner: reward.spec.partner_id.as_ref().map(PartnerId::as_str),
        description,
    };
    let (plan, taken) = plan_reserve(state, &reservation, offer.now)?;
    let took_stock = offer.stock_left.is_some();
    Ok(RedeemDecision {
        plan,
        taken,
        status,
        expires_at,
        stock_left: offer.stock_left.map(|s| s - 1),
        took_stock,
    })
}

/// Why a voucher in `status` (not `issued`, or past its expiry: `Expired`) cannot be
/// used or given back.
fn closed(status: RedemptionStatus) -> DomainError {
    let (code, message) = match status {
        RedemptionStatus::Used => ("voucher_used", "this voucher was used already"),
        RedemptionStatus::Cancelled => ("voucher_cancelled", "this voucher was cancelled"),
        RedemptionStatus::Expired | RedemptionStatus::Forfeited => ("voucher_expired", "this voucher has expired"),
        RedemptionStatus::Donated | RedemptionStatus::Issued => ("not_a_voucher", "a donation has no voucher"),
    };
    DomainError::Refused {
        code,
        message: message.into(),
    }
}

fn expired(r: &Redemption, now: Timestamp) -> bool {
    r.expires_at.is_some_and(|e| e <= now)
}

/// The voucher used by `partner` (its till or staff) at `now`: refused at another
/// partner, once used, cancelled or expired (even before the expiry run has given it
/// back).
pub fn decide_use(
    r: &Redemption,
    state: &MemberState,
    partner: &PartnerId,
    partner_name: &str,
    now: Timestamp,
) -> Result<Plan, DomainError> {
    // Another partner learns only that: not whether the voucher was used or cancelled.
    if r.partner_id.as_ref() != Some(partner) {
        return Err(DomainError::Refused {
            code: "voucher_wrong_partner",
            message: "this voucher is for another partner".into(),
        });
    }
    if r.status != RedemptionStatus::Issued {
        return Err(closed(r.status));
    }
    if expired(r, now) {
        return Err(closed(RedemptionStatus::Expired));
    }
    plan_fulfil(
        state,
        r.id.as_str(),
        r.points,
        partner.as_str(),
        format!("Voucher for {} used at {partner_name}", r.reward_name),
        now,
    )
}

/// Whether a voucher may get a new code (for a member who lost hers): only one a till
/// would still take, issued and not past its expiry.
pub fn may_reissue(r: &Redemption, now: Timestamp) -> Result<(), DomainError> {
    let status = match r.status {
        RedemptionStatus::Issued if expired(r, now) => "expired",
        RedemptionStatus::Issued => return Ok(()),
        other => other.as_str(),
    };
    Err(DomainError::Refused {
        code: "voucher_closed",
        message: format!("the voucher is {status}: only a voucher that can still be used gets a new code"),
    })
}

/// Why an issued voucher is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The member, the operator or the partner cancelled it before use.
    Cancel,
    /// It reached its expiry unused (the scheduled run).
    Expire,
}

/// What to write when a voucher is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseDecision {
    pub plan: Plan,
    /// `cancelled`, `expired` or `forfeited`.
    pub status: RedemptionStatus,
}

/// Gives an issued voucher back: its points return to the member (as the lots they
/// came from) or, for an expired voucher of a reward that says so, are forfeit; the
/// store returns its unit of stock. `Expire` before the voucher's expiry, or on one no
/// longer issued, is `None`: nothing to do.
pub fn decide_release(
    r: &Redemption,
    state: &MemberState,
    why: Release,
    now: Timestamp,
) -> Result<Option<ReleaseDecision>, DomainError> {
    if r.status != RedemptionStatus::Issued {
        return match why {
            Release::Cancel => Err(closed(r.status)),
            Release::Expire => Ok(None),
        };
    }
    let (status, forfeit, description) = match why {
        Release::Cancel if expired(r, now) => {
            return Err(closed(RedemptionStatus::Expired));
        }
        Release::Cancel => (
            RedemptionStatus::Cancelled,
            false,
            format!("{} points back: voucher for {} cancelled", r.points, r.reward_name),
        ),
        Release::Expire if !expired(r, now) => return Ok(None),
        Release::Expire if r.forfeit_on_expiry => (
            RedemptionStatus::Forfeited,
            true,
            format!(
                "Voucher for {} expired unused: its {} points are forfeit",
                r.reward_name, r.points
            ),
        ),
        Release::Expire => (
            RedemptionStatus::Expired,
            false,
            format!("{} points back: voucher for {} expired unused", r.points, r.reward_name),
        ),
    };
    let plan = plan_release(state, r.id.as_str(), &r.taken, forfeit, description, now)?;
    Ok(Some(ReleaseDecision { plan, status }))
}
