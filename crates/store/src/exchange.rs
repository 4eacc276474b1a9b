//! What both backends share about exchange with other programmes: the stored partner
//! and order, the answers kept for retries, and the volume per partner.

use crate::StoreError;
use crate::codec::to_json;
use crate::model::{ExchangeOutCmd, from_micros};
use jiff::Timestamp;
use tally_domain::decide::OrderDecision;
use tally_domain::exchange::{
    ExchangeCreditView, ExchangeOrder, ExchangeOrderView, ExchangePartner, ExchangeSpec, OrderStatus,
};
use tally_domain::ids::{ExchangeOrderId, ExchangePartnerId, Id, MemberId};
use tally_domain::plan::{Plan, TakenLot};
use tally_domain::receipt::BalanceView;

/// The columns an order is read from, in [`order_from`]'s order.
pub(crate) const ORDER_COLUMNS: &str = "id, exchange_partner_id, member_id, points, units, external_member, status, \
     taken, failure_reason, created_at, closed_at";

/// The pending order a command places, as decided.
pub(crate) fn new_order(cmd: &ExchangeOutCmd, d: &OrderDecision) -> ExchangeOrder {
    ExchangeOrder {
        id: cmd.order_id.clone(),
        exchange_partner_id: cmd.exchange_partner_id.clone(),
        member_id: cmd.member_id.clone(),
        points: cmd.points,
        units: d.units,
        external_member: cmd.external_member.clone(),
        status: OrderStatus::Pending,
        taken: d.taken.clone(),
        failure_reason: None,
        created_at: cmd.now,
        closed_at: None,
    }
}

/// An order's columns as stored.
pub(crate) type OrderRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
);

pub(crate) fn order_from(r: OrderRow) -> Result<ExchangeOrder, StoreError> {
    let (id, partner, member, points, units, external_member, status, taken, failure_reason, created, closed) = r;
    Ok(ExchangeOrder {
        id: ExchangeOrderId::from_stored(id),
        exchange_partner_id: ExchangePartnerId::from_stored(partner),
        member_id: MemberId::from_stored(member),
        points,
        units,
        external_member,
        status: OrderStatus::parse(&status).ok_or(StoreError::corrupt("an exchange order's status"))?,
        taken: serde_json::from_str::<Vec<TakenLot>>(&taken)
            .map_err(|_| StoreError::corrupt("an exchange order's lots"))?,
        failure_reason,
        created_at: from_micros(created),
        closed_at: closed.map(from_micros),
    })
}

pub(crate) fn partner_from(id: String, spec: &str) -> Result<ExchangePartner, StoreError> {
    Ok(ExchangePartner {
        id: ExchangePartnerId::from_stored(id),
        spec: serde_json::from_str::<ExchangeSpec>(spec).map_err(|_| StoreError::corrupt("an exchange partner"))?,
    })
}

fn balance(plan: &Plan) -> BalanceView {
    BalanceView {
        available: plan.balance_after.available,
        pending: plan.balance_after.pending,
    }
}

/// The answer to placing an order, kept for a retry.
pub(crate) fn order_receipt(order: &ExchangeOrder, plan: &Plan) -> Result<String, StoreError> {
    let mut view = ExchangeOrderView::from(order);
    view.balance = Some(balance(plan));
    to_json(&view)
}

/// The answer to a credit, kept for a retry under its reference.
#[allow(clippy::too_many_arguments)]
pub(crate) fn credit_receipt(
    id: &str,
    partner: &ExchangePartnerId,
    member: &MemberId,
    reference: &str,
    units: i64,
    points: i64,
    now: Timestamp,
    plan: &Plan,
) -> Result<String, StoreError> {
    to_json(&ExchangeCreditView {
        id: id.to_string(),
        exchange_partner_id: partner.to_string(),
        member_id: member.to_string(),
        reference: reference.to_string(),
        units,
        points,
        created_at: now.to_string(),
        balance: balance(plan),
    })
}
