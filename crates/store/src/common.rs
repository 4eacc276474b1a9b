//! Pieces both backends share: receipts, replay decisions, activity times.

use crate::StoreError;
use crate::model::{Posted, PurchaseCmd};
use jiff::Timestamp;
use tally_domain::money::Money;
use tally_domain::plan::{ActivityItem, Balance};
use tally_domain::receipt::{BalanceView, MoneyView, PurchaseReceipt};

/// The receipt for a purchase (or a quote, with `status = "quote"` and no id).
pub fn purchase_receipt(cmd: &PurchaseCmd, member_id: &str, balance: Balance, status: &str) -> PurchaseReceipt {
    let v = &cmd.valuation;
    PurchaseReceipt {
        id: if status == "quote" {
            String::new()
        } else {
            cmd.transaction_id.clone()
        },
        member_id: member_id.to_string(),
        partner_id: cmd.partner.id.clone(),
        external_id: cmd.external_id.clone(),
        location_id: cmd.location_id.clone(),
        occurred_at: cmd.occurred_at.to_string(),
        total: cmd.total.into(),
        points_earned: v.points_earned,
        points_redeemed: cmd.redeem_points,
        redeemed_value: MoneyView {
            amount: v.redeemed_value_minor,
            currency: cmd.program.currency.code().into(),
        },
        redeemed_value_local: MoneyView {
            amount: v.redeemed_value_local_minor,
            currency: cmd.total.currency.code().into(),
        },
        status: status.to_string(),
        breakdown: v.breakdown.iter().cloned().map(Into::into).collect(),
        balance: BalanceView {
            available: balance.available,
            pending: balance.pending,
        },
    }
}

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
}

/// An id seen before: the same request gets the first answer, another one is a conflict.
pub fn replay(stored_hash: &str, stored_receipt: String, request_hash: &str) -> Result<Posted, StoreError> {
    if stored_hash == request_hash {
        Ok(Posted {
            receipt_json: stored_receipt,
            replayed: true,
        })
    } else {
        Err(StoreError::IdempotencyConflict)
    }
}

/// Activity caused by the purchase or return shows its real-world time; maturation and
/// expiry happen at the time they are posted.
pub fn activity_time(item: &ActivityItem, event_time: Timestamp, now: Timestamp) -> Timestamp {
    match item.kind {
        "mature" | "expire" => now,
        _ => event_time,
    }
}

pub fn money(amount: i64, currency: &str) -> Result<Money, StoreError> {
    let c = tally_domain::money::Currency::parse(currency)?;
    Ok(Money { amount, currency: c })
}

/// The member's next due time when the plan only saw some of the lots.
pub fn merge_due(stored: Option<Timestamp>, planned: Option<Timestamp>, lots_loaded: bool) -> Option<Timestamp> {
    if lots_loaded {
        planned
    } else {
        match (stored, planned) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Compares stored member balances with the sums of their accounts' entries.
pub fn verification(
    sums: std::collections::HashMap<String, i64>,
    entries_checked: u64,
    members: Vec<(String, i64, i64)>,
) -> crate::model::Verification {
    use crate::model::Mismatch;
    let entries_sum: i64 = sums.values().sum();
    let mut mismatches = Vec::new();
    let mut accounts: std::collections::HashSet<&str> = sums.keys().map(String::as_str).collect();
    let member_accounts: Vec<(String, i64)> = members
        .iter()
        .flat_map(|(id, available, pending)| {
            [
                (format!("member:{id}:available"), *available),
                (format!("member:{id}:pending"), *pending),
            ]
        })
        .collect();
    for (account, stored) in &member_accounts {
        let from_entries = sums.get(account).copied().unwrap_or(0);
        if *stored != from_entries || *stored < 0 {
            mismatches.push(Mismatch {
                account: account.clone(),
                stored: *stored,
                from_entries,
            });
        }
        accounts.insert(account);
    }
    let known: std::collections::HashSet<&str> = member_accounts.iter().map(|(a, _)| a.as_str()).collect();
    for (account, sum) in &sums {
        if account.starts_with("member:") && !known.contains(account.as_str()) {
            mismatches.push(Mismatch {
                account: account.clone(),
                stored: 0,
                from_entries: *sum,
            });
        }
    }
    mismatches.sort_by(|a, b| a.account.cmp(&b.account));
    crate::model::Verification {
        balanced: mismatches.is_empty() && entries_sum == 0,
        accounts_checked: accounts.len() as u64,
        entries_checked,
        entries_sum,
        mismatches,
    }
}

/// FX rates as stored (code, decimal string) into the domain's rates.
pub fn fx_rates_from_rows(rows: Vec<(String, String)>) -> Result<tally_domain::earning::FxRates, StoreError> {
    let mut rates = tally_domain::earning::FxRates::new();
    for (code, rate) in rows {
        let rate = rate
            .parse()
            .map_err(|_| StoreError::Database(format!("bad stored rate for {code}")))?;
        rates.set(tally_domain::money::Currency::parse(&code)?, rate)?;
    }
    Ok(rates)
}

/// Plans a return of a stored purchase and makes its receipt (the JSON the client gets,
/// saved for replays). Both backends write the result the same way.
pub fn plan_return_receipt(
    txn: &crate::model::TransactionRow,
    partner_name: String,
    state: &tally_domain::plan::MemberState,
    cmd: &crate::model::ReturnCmd,
) -> Result<(tally_domain::plan::Plan, tally_domain::plan::ReturnResult, String), StoreError> {
    let record = tally_domain::plan::PurchaseRecord {
        id: txn.id.clone(),
        partner_id: txn.partner_id.clone(),
        partner_name,
        member_id: txn.member_id.clone(),
        total: txn.total,
        points_earned: txn.points_earned,
        points_redeemed: txn.points_redeemed,
        returned_amount: txn.returned_amount,
        points_reversed: txn.points_reversed,
        points_refunded: txn.points_refunded,
    };
    let (plan, result) =
        tally_domain::plan::plan_return(state, &cmd.program, &record, &cmd.return_id, cmd.amount, cmd.now)?;
    let receipt = to_json(&tally_domain::receipt::ReturnReceipt {
        id: cmd.return_id.clone(),
        transaction_id: txn.id.clone(),
        external_id: cmd.external_id.clone(),
        amount: cmd.amount.into(),
        points_reversed: result.points_reversed,
        points_refunded: result.points_refunded,
        points_unrecovered: result.points_unrecovered,
        balance: BalanceView {
            available: plan.balance_after.available,
            pending: plan.balance_after.pending,
        },
    })?;
    Ok((plan, result, receipt))
}

/// Whether a purchase needs the member's open lots: to spend, or to settle what is due.
pub fn needs_lots(cmd: &PurchaseCmd, stored_due: Option<Timestamp>) -> bool {
    cmd.redeem_points > 0 || stored_due.is_some_and(|d| d <= cmd.now)
}

/// Plans a purchase for a member's state and makes its receipt (`status` is "posted",
/// or "quote" for a quote, which writes nothing).
pub fn plan_purchase_receipt(
    state: &tally_domain::plan::MemberState,
    cmd: &PurchaseCmd,
    status: &str,
) -> Result<(tally_domain::plan::Plan, PurchaseReceipt), StoreError> {
    let purchase = tally_domain::plan::Purchase {
        transaction_id: &cmd.transaction_id,
        partner: &cmd.partner,
        occurred_at: cmd.occurred_at,
        redeem_points: cmd.redeem_points,
        valuation: &cmd.valuation,
    };
    let plan = tally_domain::plan::plan_purchase(state, &cmd.program, &purchase, cmd.now)?;
    let receipt = purchase_receipt(cmd, &state.member_id, plan.balance_after, status);
    Ok((plan, receipt))
}
