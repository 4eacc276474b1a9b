//! Challenges: a goal over a window, across the coalition. Members join one (or are
//! enrolled automatically, where a condition over the member holds); purchases or
//! events that meet its condition are its steps; progress is a count, the number of
//! different partners or industries, or an amount. The step that reaches the target
//! completes it, once: the member keeps its badge, and Tally posts
//! `challenge_completed` so the operator's rules give the points. A counted purchase
//! returned in full before completion no longer counts.
//!
//! [`Challenge::step`] says what a sale or event counts for (evaluated before the
//! write, as rules are); [`decide_step`] decides, inside the write, from the member's
//! steps so far, whether it counts and whether it completes the challenge.

use crate::DomainError;
use crate::ids::ChallengeId;
use crate::rewards::check_texts;
use crate::rules::{FactCondition, Facts, MemberCondition, MemberFacts};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The event Tally posts to a member who completes a challenge.
pub const COMPLETED_EVENT: &str = "challenge_completed";
/// The largest target of a count or of distinct partners or industries.
pub const MAX_COUNT_TARGET: i64 = 10_000;
/// The largest amount target, in minor units of the programme currency.
pub const MAX_AMOUNT_TARGET: i64 = 1_000_000_000;
/// The longest a challenge may run, in days.
pub const MAX_DAYS: i64 = 3660;

/// What a challenge counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    Purchases,
    /// Engagement events of `event_type`.
    Events,
}

/// How a challenge's progress is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// Steps: purchases or events.
    Count,
    /// Different partners among the steps.
    Partners,
    /// Different partner industries among the steps.
    Industries,
    /// The purchases' amount in minor units of the programme currency (purchases only).
    Amount,
}

/// How members come to take part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Enrolment {
    /// A member joins (`POST /v1/members/{id}/challenges/{challenge_id}/join`); steps
    /// before she joined do not count.
    Join,
    /// Every member for whom `enrol_condition` holds (everyone without one) takes part
    /// from her first step.
    Automatic,
}

/// The badge a completed challenge leaves on the member's profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BadgeSpec {
    /// 1 to 32 lower-case letters, digits or `_`.
    pub code: String,
    /// By language (`en` required, the fallback).
    pub name: BTreeMap<String, String>,
}

/// A challenge as the operator writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeSpec {
    /// 1 to 32 lower-case letters, digits or `_`: what `challenge_completed` names.
    pub code: String,
    /// By language (`en` required, the fallback), at most 80 characters each.
    pub name: BTreeMap<String, String>,
    /// By language, at most 500 characters each.
    #[serde(default)]
    pub description: BTreeMap<String, String>,
    /// RFC 3339: steps count from here...
    #[schema(format = DateTime)]
    pub starts_at: String,
    /// ...until here (not included).
    #[schema(format = DateTime)]
    pub ends_at: String,
    pub counts: Counts,
    /// The event type counted, with `counts: events`.
    #[serde(default)]
    pub event_type: Option<String>,
    /// CEL over the sale or event, as a rule's condition (not `member.visits`): what
    /// counts. None: every purchase (or event of the type).
    #[serde(default)]
    pub condition: Option<String>,
    pub measure: Measure,
    /// The progress that completes it: 1 to 10,000 (count, partners, industries), or 1
    /// to 10^9 minor units (amount).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub target: i64,
    pub enrolment: Enrolment,
    /// With `automatic` enrolment: CEL over `member` and `local` (as a reward's
    /// eligibility); none: every member.
    #[serde(default)]
    pub enrol_condition: Option<String>,
    pub badge: BadgeSpec,
}

/// A challenge checked and compiled.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: ChallengeId,
    pub spec: ChallengeSpec,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    condition: Option<FactCondition>,
    enrol: Option<MemberCondition>,
}

fn time(field: &'static str, s: &str) -> Result<Timestamp, DomainError> {
    s.parse()
        .map_err(|_| DomainError::invalid(field, "must be an RFC 3339 time"))
}

fn text(t: &Option<String>) -> Option<&str> {
    t.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

impl ChallengeSpec {
    /// Checks the challenge as the operator sent it; `event_known` says whether an event
    /// type exists.
    pub fn check(self, id: ChallengeId, event_known: impl Fn(&str) -> bool) -> Result<Challenge, DomainError> {
        if !crate::identity::is_code(&self.code) {
            return Err(DomainError::invalid(
                "code",
                "must be 1 to 32 lower-case letters, digits or _",
            ));
        }
        if !crate::identity::is_code(&self.badge.code) {
            return Err(DomainError::invalid(
                "badge.code",
                "must be 1 to 32 lower-case letters, digits or _",
            ));
        }
        check_texts("name", &self.name, 80, true)?;
        check_texts("description", &self.description, 500, false)?;
        check_texts("badge.name", &self.badge.name, 80, true)?;
        let starts_at = time("starts_at", &self.starts_at)?;
        let ends_at = time("ends_at", &self.ends_at)?;
        if ends_at <= starts_at {
            return Err(DomainError::invalid("ends_at", "must be after starts_at"));
        }
        if ends_at.as_second() - starts_at.as_second() > MAX_DAYS * 86_400 {
            return Err(DomainError::invalid(
                "ends_at",
                format!("at most {MAX_DAYS} days after starts_at"),
            ));
        }
        match (self.counts, text(&self.event_type)) {
            (Counts::Events, None) => {
                return Err(DomainError::invalid(
                    "event_type",
                    "counting events needs the event type",
                ));
            }
            (Counts::Events, Some(t)) if !event_known(t) => {
                return Err(DomainError::UnknownEventType(t.to_string()));
            }
            (Counts::Purchases, Some(_)) => {
                return Err(DomainError::invalid("event_type", "only with counts: events"));
            }
            _ => {}
        }
        if self.counts == Counts::Events && self.measure == Measure::Amount {
            return Err(DomainError::invalid("measure", "amount counts purchases only"));
        }
        let max = match self.measure {
            Measure::Amount => MAX_AMOUNT_TARGET,
            _ => MAX_COUNT_TARGET,
        };
        if !(1..=max).contains(&self.target) {
            return Err(DomainError::invalid("target", format!("must be 1 to {max}")));
        }
        for (field, t) in [
            ("condition", &self.condition),
            ("enrol_condition", &self.enrol_condition),
        ] {
            if t.as_ref().is_some_and(|t| t.len() > crate::rules::MAX_EXPRESSION_LEN) {
                return Err(DomainError::invalid(
                    field,
                    format!("at most {} characters", crate::rules::MAX_EXPRESSION_LEN),
                ));
            }
        }
        let condition = text(&self.condition)
            .map(|c| FactCondition::compile("condition", c))
            .transpose()?;
        let enrol = match (self.enrolment, text(&self.enrol_condition)) {
            (Enrolment::Join, Some(_)) => {
                return Err(DomainError::invalid(
                    "enrol_condition",
                    "only with enrolment: automatic",
                ));
            }
            (_, c) => c.map(|c| MemberCondition::compile("enrol_condition", c)).transpose()?,
        };
        Ok(Challenge {
            id,
            spec: self,
            starts_at,
            ends_at,
            condition,
            enrol,
        })
    }
}

/// What one sale or event counts for in one challenge, evaluated before the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub challenge_id: ChallengeId,
    /// The partner or industry the step was at (measures over distinct ones), else "".
    pub key: String,
    /// 1, or the purchase's amount in programme minor units (measure `amount`).
    pub amount: i64,
    /// Whether the member takes part without having joined (automatic enrolment whose
    /// condition holds for her).
    pub enrols: bool,
    /// The challenge's measure and target, for the write to decide on.
    pub measure: Measure,
    pub target: i64,
    /// When the sale or event happened: one from before she joined does not count.
    pub occurred_at: Timestamp,
}

impl Challenge {
    /// Whether counting it needs the member's facts.
    pub fn reads_member(&self) -> bool {
        self.condition.as_ref().is_some_and(FactCondition::reads_member) || self.enrol.is_some()
    }

    /// Whether it is open at `at`.
    pub fn open_at(&self, at: Timestamp) -> bool {
        self.starts_at <= at && at < self.ends_at
    }

    /// What a sale (`facts.basket` set; `amount_minor` its amount in programme minor
    /// units, `rate` units of its currency per programme unit) or an event (`facts.event`
    /// set) counts for, if anything: in the window, of the kind counted, meeting the
    /// condition.
    pub fn step(&self, facts: &Facts<'_>, amount_minor: i64, rate: f64) -> Option<Step> {
        if !self.open_at(facts.at) {
            return None;
        }
        let kind_matches = match (self.spec.counts, facts.event) {
            (Counts::Purchases, None) => facts.basket.is_some(),
            (Counts::Events, Some(e)) => Some(e.event_type.as_str()) == text(&self.spec.event_type),
            _ => false,
        };
        if !kind_matches || self.condition.as_ref().is_some_and(|c| !c.holds(facts, rate)) {
            return None;
        }
        let partner = facts.partner;
        let key = match self.spec.measure {
            Measure::Partners => partner.map(|p| p.id.clone())?,
            Measure::Industries => partner.map(|p| p.industry.clone())?,
            Measure::Count | Measure::Amount => String::new(),
        };
        let amount = match self.spec.measure {
            Measure::Amount => amount_minor.max(0),
            _ => 1,
        };
        let enrols = self.spec.enrolment == Enrolment::Automatic
            && self
                .enrol
                .as_ref()
                .is_none_or(|c| facts.member.is_some_and(|m| c.holds(m, facts.at)));
        Some(Step {
            challenge_id: self.id.clone(),
            key,
            amount,
            enrols,
            measure: self.spec.measure,
            target: self.spec.target,
            occurred_at: facts.at,
        })
    }

    /// Whether a member with `member` facts may take part now (joining one with
    /// automatic enrolment also needs its condition to hold).
    pub fn may_join(&self, member: &MemberFacts, now: Timestamp) -> Result<(), DomainError> {
        if now >= self.ends_at {
            return Err(DomainError::Refused {
                code: "challenge_closed",
                message: "the challenge has ended".into(),
            });
        }
        if self.enrol.as_ref().is_some_and(|c| !c.holds(member, now)) {
            return Err(DomainError::Refused {
                code: "not_eligible",
                message: "the challenge is not open to this member".into(),
            });
        }
        Ok(())
    }
}

/// What the write reads of a member's part in a challenge before a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepFacts {
    pub standing: Standing,
    /// When she joined (or was enrolled), if she takes part.
    pub joined_at: Option<Timestamp>,
    /// Her progress so far.
    pub progress: i64,
    /// Whether the step's partner or industry is counted already (distinct measures).
    pub key_counted: bool,
}

/// A step counted earlier, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedStep {
    pub key: String,
    pub amount: i64,
}

/// A member's progress from her counted steps.
pub fn progress(measure: Measure, steps: &[CountedStep]) -> i64 {
    match measure {
        Measure::Count => steps.len() as i64,
        Measure::Partners | Measure::Industries => {
            steps.iter().map(|s| s.key.as_str()).collect::<BTreeSet<_>>().len() as i64
        }
        Measure::Amount => steps.iter().fold(0i64, |a, s| a.saturating_add(s.amount)),
    }
}

/// A member's standing in a challenge, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Standing {
    /// Not taking part (yet).
    Open,
    Joined,
    Completed,
}

impl Standing {
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Open => "open",
            Standing::Joined => "joined",
            Standing::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Standing {
        match s {
            "joined" => Standing::Joined,
            "completed" => Standing::Completed,
            _ => Standing::Open,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// It does not count: she does not take part, or has completed the challenge.
    Ignored,
    /// It counts: her progress after it, and whether it completes the challenge (and
    /// whether she takes part from this step on).
    Counted {
        progress: i64,
        completes: bool,
        enrols: bool,
    },
}

/// Decides a step from what the write read of her part. A member who joined counts
/// what happened from then on; one the programme enrolled, what happened in the window.
pub fn decide_step(facts: StepFacts, step: &Step) -> StepOutcome {
    let enrols = match facts.standing {
        Standing::Completed => return StepOutcome::Ignored,
        Standing::Joined => false,
        Standing::Open if step.enrols => true,
        Standing::Open => return StepOutcome::Ignored,
    };
    if !step.enrols && facts.joined_at.is_some_and(|j| step.occurred_at < j) {
        return StepOutcome::Ignored;
    }
    let progress = match step.measure {
        Measure::Count => facts.progress.saturating_add(1),
        Measure::Partners | Measure::Industries => facts.progress + i64::from(!facts.key_counted),
        Measure::Amount => facts.progress.saturating_add(step.amount),
    };
    StepOutcome::Counted {
        progress,
        completes: progress >= step.target,
        enrols,
    }
}
#[cfg(test)]
mod tests;
