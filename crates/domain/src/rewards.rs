//! The rewards catalogue: what members can spend points on besides a bill (vouchers,
//! products, experiences, early access to a launch, merchandise, donations), who may
//! redeem each and when, and in plain words why a member cannot yet.
//!
//! A reward is data the operator (or the partner that fulfils it) writes; its
//! conditions are CEL over the member, checked when saved as a rule's are. Whether one
//! member may redeem one reward now is decided here ([`Reward::availability`]) from
//! facts the store reads: her points, the stock left, how many she took this period.

mod texts;

pub use texts::{Lang, OWN_LANGUAGES, reason_text, text_in};

use crate::DomainError;
use crate::ids::{PartnerId, RewardId};
use crate::money::MAX_POINTS;
use crate::rules::{MemberCondition, MemberFacts};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a reward is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// Money off at the fulfilling partner.
    Voucher,
    Product,
    /// An evening, a stay, an upgrade: on a date (`starts_at`), with limited places.
    Experience,
    /// The right to buy in a sale or launch before it opens to everyone.
    EarlyAccess,
    Merchandise,
    /// Points given to a named charity; posts at once, no voucher.
    Donation,
}

impl RewardKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RewardKind::Voucher => "voucher",
            RewardKind::Product => "product",
            RewardKind::Experience => "experience",
            RewardKind::EarlyAccess => "early_access",
            RewardKind::Merchandise => "merchandise",
            RewardKind::Donation => "donation",
        }
    }
}

/// The period a per-member limit counts over (calendar periods in UTC; weeks start on
/// Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitPeriod {
    Day,
    Week,
    Month,
    Year,
    /// For as long as the reward exists.
    Ever,
}

/// At most `count` redemptions per member per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberLimit {
    #[schema(minimum = 1, maximum = 1000)]
    pub count: u32,
    pub per: LimitPeriod,
}

/// Members matching `condition` (or holding a plan with the early-access benefit) see
/// and redeem the reward `days` before it opens to everyone (`available_from`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlyAccess {
    #[schema(minimum = 1, maximum = 90)]
    pub days: u32,
    /// CEL over `member` and `local`, e.g. `member.tier == "gold"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// A reward as the operator wrote it (stored as JSON; the stock is kept apart, as a
/// counter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewardSpec {
    pub kind: RewardKind,
    /// By language (`en`, `de`, `cs`, …); English is required and is the fallback.
    pub name: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub description: BTreeMap<String, String>,
    /// Points a member pays.
    pub cost: i64,
    /// The partner that fulfils it (uses its vouchers); none for a donation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_id: Option<PartnerId>,
    /// A donation's charity, a code such as `red_cross`: its points go to
    /// `program:donations:<charity>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<MemberLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_from: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_until: Option<Timestamp>,
    /// Who may redeem it: CEL over `member` and `local`. Absent: every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligibility: Option<String>,
    /// What a member who may not redeem it is told, by language (e.g. "for Gold
    /// members").
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub eligibility_note: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_access: Option<EarlyAccess>,
    /// An experience's date: it can be redeemed until then, and its vouchers are good
    /// for a day after it begins (an evening past midnight anywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// Days a voucher may be used (1 to 365).
    pub voucher_days: u32,
    /// A voucher that expires unused forfeits its points (to `program:expired`) instead
    /// of giving them back.
    #[serde(default)]
    pub forfeit_on_expiry: bool,
    /// Withdrawn rewards are shown to no member and cannot be redeemed.
    pub active: bool,
}

/// A reward checked and ready to decide on.
#[derive(Debug, Clone)]
pub struct Reward {
    pub id: RewardId,
    pub spec: RewardSpec,
    eligibility: Option<MemberCondition>,
    early: Option<MemberCondition>,
}

/// Most languages one text may be given in.
const MAX_LANGUAGES: usize = 12;

pub(crate) fn check_texts(
    field: &'static str,
    texts: &BTreeMap<String, String>,
    max_chars: usize,
    need_english: bool,
) -> Result<(), DomainError> {
    if need_english && !texts.contains_key("en") {
        return Err(DomainError::invalid(
            field,
            "needs an English text (\"en\"), the fallback",
        ));
    }
    if texts.len() > MAX_LANGUAGES {
        return Err(DomainError::invalid(
            field,
            format!("at most {MAX_LANGUAGES} languages"),
        ));
    }
    for (lang, text) in texts {
        if Lang::parse_code(lang).is_none() {
            return Err(DomainError::invalid(
                field,
                format!("{lang:?} is not a language: two small letters, as \"en\", \"de\" or \"cs\""),
            ));
        }
        let chars = text.chars().count();
        if text.trim().is_empty() || chars > max_chars || text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(DomainError::invalid(
                field,
                format!("the {lang} text must be 1 to {max_chars} characters, without control characters"),
            ));
        }
    }
    Ok(())
}

fn condition(field: &'static str, source: Option<&str>) -> Result<Option<MemberCondition>, DomainError> {
    if source.is_some_and(|s| s.chars().count() > 2_000) {
        return Err(DomainError::invalid(field, "at most 2,000 characters"));
    }
    match source.map(str::trim).filter(|s| !s.is_empty()) {
        Some(src) => MemberCondition::compile(field, src).map(Some),
        None => Ok(None),
    }
}

impl RewardSpec {
    /// Checks every field and compiles the conditions; what is wrong comes back in
    /// plain words naming the field.
    pub fn check(self, id: RewardId) -> Result<Reward, DomainError> {
        check_texts("name", &self.name, 120, true)?;
        check_texts("description", &self.description, 2_000, false)?;
        check_texts("eligibility_note", &self.eligibility_note, 120, false)?;
        if !(1..=MAX_POINTS).contains(&self.cost) {
            return Err(DomainError::invalid("cost", format!("1 to {MAX_POINTS} points")));
        }
        match (self.kind, &self.partner_id, &self.charity) {
            (RewardKind::Donation, None, Some(c)) if crate::identity::is_code(c) => {}
            (RewardKind::Donation, None, _) => {
                return Err(DomainError::invalid(
                    "charity",
                    "a donation names its charity: a code of small letters, digits and _",
                ));
            }
            (RewardKind::Donation, Some(_), _) => {
                return Err(DomainError::invalid(
                    "partner_id",
                    "a donation has no fulfilling partner",
                ));
            }
            (_, None, _) => {
                return Err(DomainError::invalid(
                    "partner_id",
                    "names the partner that fulfils the reward",
                ));
            }
            (_, Some(_), Some(_)) => {
                return Err(DomainError::invalid("charity", "only a donation names a charity"));
            }
            (_, Some(_), None) => {}
        }
        match (self.kind, self.starts_at) {
            (RewardKind::Experience, None) => {
                return Err(DomainError::invalid("starts_at", "an experience has a date"));
            }
            (RewardKind::Experience, Some(_)) | (_, None) => {}
            (_, Some(_)) => return Err(DomainError::invalid("starts_at", "only an experience has a date")),
        }
        if let (Some(from), Some(until)) = (self.available_from, self.available_until)
            && from >= until
        {
            return Err(DomainError::invalid("available_until", "must be after available_from"));
        }
        if !(1..=365).contains(&self.voucher_days) {
            return Err(DomainError::invalid("voucher_days", "1 to 365 days"));
        }
        if let Some(l) = self.limit
            && !(1..=1000).contains(&l.count)
        {
            return Err(DomainError::invalid("limit", "count: 1 to 1000"));
        }
        let mut early = None;
        if let Some(e) = &self.early_access {
            if !(1..=90).contains(&e.days) {
                return Err(DomainError::invalid("early_access", "days: 1 to 90"));
            }
            if self.available_from.is_none() {
                return Err(DomainError::invalid(
                    "early_access",
                    "needs available_from: early access is the days before it",
                ));
            }
            early = condition("early_access.condition", e.condition.as_deref())?;
        }
        let eligibility = condition("eligibility", self.eligibility.as_deref())?;
        Ok(Reward {
            id,
            spec: self,
            eligibility,
            early,
        })
    }
}

/// Whether one member may redeem one reward now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Redeemable,
    /// She has `short` points too few.
    NeedsPoints {
        short: i64,
    },
    /// The reward's eligibility condition does not hold for her.
    NotEligible,
    /// It opens to her at `at` (earlier than to everyone when she has early access).
    OpensOn {
        at: Timestamp,
    },
    SoldOut,
    /// She took as many as the limit allows in this period; `until` the next one (none
    /// for a limit over all time).
    LimitReached {
        until: Option<Timestamp>,
    },
    /// Withdrawn, past its window, or its experience has begun: not shown to members.
    Closed,
}

impl Availability {
    /// The stable code a client may switch on.
    pub fn code(&self) -> &'static str {
        match self {
            Availability::Redeemable => "redeemable",
            Availability::NeedsPoints { .. } => "insufficient_points",
            Availability::NotEligible => "not_eligible",
            Availability::OpensOn { .. } => "not_open_yet",
            Availability::SoldOut => "sold_out",
            Availability::LimitReached { .. } => "limit_reached",
            Availability::Closed => "reward_closed",
        }
    }
}

/// What the store read for one member and one reward.
#[derive(Debug, Clone, Copy)]
pub struct OfferFacts<'a> {
    pub member: &'a MemberFacts,
    /// Points she can spend now.
    pub available: i64,
    /// Units left; `None` for a reward without stock.
    pub stock_left: Option<i64>,
    /// Her redemptions of this reward that count toward the limit (not cancelled or
    /// given back) since [`Reward::limit_window`]'s start.
    pub taken: u32,
    /// Her membership plan gives early access.
    pub plan_early_access: bool,
    pub now: Timestamp,
}

impl Reward {
    /// When the reward opens to everyone, and to members with early access.
    fn openings(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let public = self.spec.available_from;
        let early = match (&self.spec.early_access, public) {
            (Some(e), Some(from)) => from
                .checked_sub(SignedDuration::from_hours(24 * i64::from(e.days)))
                .ok(),
            _ => None,
        };
        (public, early)
    }

    /// Whether members may see it at all at `now`: active, its window not over, its
    /// experience not begun.
    pub fn is_open(&self, now: Timestamp) -> bool {
        self.spec.active
            && self.spec.available_until.is_none_or(|u| now < u)
            && self.spec.starts_at.is_none_or(|s| now < s)
    }

    /// Whether `member` has early access to it.
    fn early_for(&self, f: &OfferFacts<'_>) -> bool {
        self.spec.early_access.is_some()
            && (f.plan_early_access || self.early.as_ref().is_some_and(|c| c.holds(f.member, f.now)))
    }

    /// Whether the member may redeem it now. The order is the order a member can do
    /// something about it: what no one can change first (closed, sold out), then her
    /// limit, who she is, when it opens to her, and last her points.
    pub fn availability(&self, f: &OfferFacts<'_>) -> Availability {
        if !self.is_open(f.now) {
            return Availability::Closed;
        }
        if f.stock_left.is_some_and(|s| s <= 0) {
            return Availability::SoldOut;
        }
        if let Some(limit) = self.spec.limit
            && f.taken >= limit.count
        {
            return Availability::LimitReached {
                until: next_period(limit.per, f.now),
            };
        }
        if self.eligibility.as_ref().is_some_and(|c| !c.holds(f.member, f.now)) {
            return Availability::NotEligible;
        }
        let (public, early) = self.openings();
        let opens = match (self.early_for(f), early) {
            (true, Some(e)) => Some(e),
            _ => public,
        };
        if let Some(at) = opens.filter(|at| f.now < *at) {
            return Availability::OpensOn { at };
        }
        if f.available < self.spec.cost {
            return Availability::NeedsPoints {
                short: self.spec.cost - f.available,
            };
        }
        Availability::Redeemable
    }

    /// The start of the limit's current period, from which the store counts the
    /// member's redemptions; `None` without a limit.
    pub fn limit_window(&self, now: Timestamp) -> Option<Timestamp> {
        self.spec.limit.map(|l| period_start(l.per, now))
    }

    /// When a voucher issued at `now` expires: after `voucher_days`, and for an
    /// experience no later than a day after it begins.
    pub fn voucher_expiry(&self, now: Timestamp) -> Timestamp {
        let after = |t: Timestamp, days: u32| {
            t.checked_add(SignedDuration::from_hours(24 * i64::from(days)))
                .unwrap_or(t)
        };
        let by_days = after(now, self.spec.voucher_days);
        match self.spec.starts_at {
            Some(s) => by_days.min(after(s, 1)),
            None => by_days,
        }
    }

    /// The name in `lang`, else English.
    pub fn name_in(&self, lang: Lang) -> &str {
        text_in(&self.spec.name, lang).unwrap_or_default()
    }
}

/// When the UTC period `per` that holds `now` began.
pub(crate) fn period_start(per: LimitPeriod, now: Timestamp) -> Timestamp {
    let date = now.to_zoned(TimeZone::UTC).date();
    let start = match per {
        LimitPeriod::Day => date,
        LimitPeriod::Week => date
            .checked_sub((date.weekday().to_monday_zero_offset() as i64).days())
            .unwrap_or(date),
        LimitPeriod::Month => date.first_of_month(),
        LimitPeriod::Year => date.first_of_year(),
        LimitPeriod::Ever => return Timestamp::UNIX_EPOCH,
    };
    start
        .to_zoned(TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// When the UTC period after the one holding `now` begins (`None` for `Ever`).
pub(crate) fn next_period(per: LimitPeriod, now: Timestamp) -> Option<Timestamp> {
    let start = period_start(per, now).to_zoned(TimeZone::UTC);
    let span = match per {
        LimitPeriod::Day => 1.day(),
        LimitPeriod::Week => 1.week(),
        LimitPeriod::Month => 1.month(),
        LimitPeriod::Year => 1.year(),
        LimitPeriod::Ever => return None,
    };
    start.checked_add(span).ok().map(|z| z.timestamp())
}

#[cfg(test)]
mod tests;

mod redemption;
pub use redemption::{Redemption, RedemptionStatus, RedemptionView};
