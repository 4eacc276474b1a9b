//! Exchanging points with another programme: an order placed, confirmed or failed by
//! the operator's back end, and units credited in.

use crate::DomainError;
use crate::exchange::{ExchangeOrder, ExchangePartner, OrderStatus};
use crate::ledger::{Account, EntryCode};
use crate::plan::ActivityKind;
use crate::plan::{
    MemberState, Plan, Reservation, TakenLot, plan_exchange_confirm, plan_exchange_credit, plan_exchange_refund,
    plan_reserve, plan_settle,
};
use jiff::Timestamp;

fn refused(code: &'static str, message: String) -> DomainError {
    DomainError::Refused { code, message }
}

/// What to write for an outbound order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderDecision {
    pub plan: Plan,
    pub taken: Vec<TakenLot>,
    pub units: i64,
}

fn open(partner: &ExchangePartner) -> Result<(), DomainError> {
    if !partner.spec.active {
        return Err(refused(
            "exchange_closed",
            format!("exchange with {} is closed", partner.spec.name),
        ));
    }
    Ok(())
}

fn within_day(partner: &ExchangePartner, today: i64, points: i64) -> Result<(), DomainError> {
    let left = partner.spec.daily_limit_points.saturating_sub(today).max(0);
    if points > left {
        return Err(refused(
            "daily_limit_reached",
            format!(
                "a member may exchange {} points a day with {}; {left} more today",
                partner.spec.daily_limit_points, partner.spec.name
            ),
        ));
    }
    Ok(())
}

/// Decides a member's order of `points` out to `partner`, recorded as `order_id`, given
/// the points she exchanged out to it since the UTC day began.
pub fn decide_exchange_out(
    partner: &ExchangePartner,
    state: &MemberState,
    exchanged_today: i64,
    order_id: &str,
    points: i64,
    external_member: &str,
    now: Timestamp,
) -> Result<OrderDecision, DomainError> {
    let spec = &partner.spec;
    open(partner)?;
    if !spec.direction.allows_out() {
        return Err(refused(
            "exchange_direction",
            format!(
                "{} only sends {} in; points cannot go out to it",
                spec.name, spec.unit_name
            ),
        ));
    }
    if points < spec.min_points {
        return Err(refused(
            "below_minimum",
            format!("exchange at least {} points with {}", spec.min_points, spec.name),
        ));
    }
    // A whole number of steps is worth whole units (the spec was checked when saved).
    let Some(units) = (points % spec.step_points == 0)
        .then(|| spec.rate.units_for(points))
        .flatten()
    else {
        return Err(refused(
            "not_a_step",
            format!("exchange points in steps of {}", spec.step_points),
        ));
    };
    within_day(partner, exchanged_today, points)?;
    let available = plan_settle(state, now)?.balance_after.available;
    if points > available {
        return Err(DomainError::InsufficientPoints {
            available,
            requested: points,
        });
    }
    let order = Reservation {
        id: order_id,
        points,
        to: Account::ExchangePending(partner.id.to_string()),
        code: EntryCode::ExchangeOut,
        kind: ActivityKind::ExchangeOut,
        partner: None,
        description: format!(
            "Exchanged {points} points for {units} {} with {} (membership {external_member})",
            spec.unit_name, spec.name
        ),
    };
    let (plan, taken) = plan_reserve(state, &order, now)?;
    Ok(OrderDecision { plan, taken, units })
}

/// What the other programme answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Confirm,
    Fail { reason: String },
}

/// Decides the other programme's answer to `order`: the plan to write, or `None` when
/// the order already has this answer (the back end sent it again: nothing more happens).
/// The other answer to a closed order is `409 order_closed`.
pub fn decide_exchange_outcome(
    partner: &ExchangePartner,
    order: &ExchangeOrder,
    outcome: &Outcome,
    state: &MemberState,
    now: Timestamp,
) -> Result<Option<Plan>, DomainError> {
    let id = order.id.as_str();
    let spec = &partner.spec;
    match (order.status, outcome) {
        (OrderStatus::Confirmed, Outcome::Confirm) | (OrderStatus::Failed, Outcome::Fail { .. }) => Ok(None),
        (OrderStatus::Confirmed | OrderStatus::Failed, _) => Err(refused(
            "order_closed",
            format!("this order was {} already", order.status.as_str()),
        )),
        (OrderStatus::Pending, Outcome::Confirm) => plan_exchange_confirm(
            state,
            partner.id.as_str(),
            id,
            order.points,
            format!(
                "{} credited {} {} for {} points",
                spec.name, order.units, spec.unit_name, order.points
            ),
            now,
        )
        .map(Some),
        (OrderStatus::Pending, Outcome::Fail { reason }) => plan_exchange_refund(
            state,
            partner.id.as_str(),
            id,
            &order.taken,
            format!(
                "{} points back: {} did not credit the exchange ({reason})",
                order.points, spec.name
            ),
            now,
        )
        .map(Some),
    }
}

/// Decides `units` of `partner`'s programme credited to a member as points, given the
/// points she received from it since the UTC day began. Answers the plan and the points.
pub fn decide_exchange_in(
    partner: &ExchangePartner,
    state: &MemberState,
    received_today: i64,
    credit_id: &str,
    units: i64,
    expiry_months: u32,
    now: Timestamp,
) -> Result<(Plan, i64), DomainError> {
    let spec = &partner.spec;
    open(partner)?;
    if !spec.direction.allows_in() {
        return Err(refused(
            "exchange_direction",
            format!(
                "points only go out to {}; it cannot send {} in",
                spec.name, spec.unit_name
            ),
        ));
    }
    let Some(points) = spec.rate.points_for(units).filter(|p| *p > 0) else {
        return Err(DomainError::invalid(
            "units",
            format!(
                "must be a multiple of {} {} (the rate is {} points = {} {})",
                spec.rate.unit_step(),
                spec.unit_name,
                spec.rate.points,
                spec.rate.units,
                spec.unit_name
            ),
        ));
    };
    within_day(partner, received_today, points)?;
    let plan = plan_exchange_credit(
        state,
        partner.id.as_str(),
        credit_id,
        points,
        expiry_months,
        format!("{points} points for {units} {} from {}", spec.unit_name, spec.name),
        now,
    )?;
    Ok((plan, points))
}

#[cfg(test)]
mod tests;
