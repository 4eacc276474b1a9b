//! Pieces both backends share: receipts, replay decisions, activity times.

use crate::StoreError;
use crate::model::{AwardRow, GrantedAward, Posted, PurchaseCmd, RuleDraft};
use jiff::Timestamp;
use std::collections::HashMap;
use tally_domain::earning::{BreakdownLine, Valuation, proportion_half_up};
use tally_domain::money::Money;
use tally_domain::plan::{ActivityItem, Balance};
use tally_domain::receipt::{BalanceView, MoneyView, PurchaseReceipt};

/// The receipt for a purchase (or a quote, with `status = "quote"` and no id).
pub fn purchase_receipt(
    cmd: &PurchaseCmd,
    v: &Valuation,
    member_id: &str,
    balance: Balance,
    status: &str,
) -> PurchaseReceipt {
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
    valuation: &Valuation,
    status: &str,
) -> Result<(tally_domain::plan::Plan, PurchaseReceipt), StoreError> {
    let purchase = tally_domain::plan::Purchase {
        transaction_id: &cmd.transaction_id,
        partner: &cmd.partner,
        occurred_at: cmd.occurred_at,
        redeem_points: cmd.redeem_points,
        valuation,
        label: None,
    };
    let plan = tally_domain::plan::plan_purchase(state, &cmd.program, &purchase, cmd.now)?;
    let receipt = purchase_receipt(cmd, valuation, &state.member_id, plan.balance_after, status);
    Ok((plan, receipt))
}

/// Refuses a write whose rules saw another member, or another visit count, than the
/// one found now (`visits` reads the current count only when it is needed).
pub fn check_assumption(
    draft: &RuleDraft,
    member_id: &str,
    visits: impl FnOnce() -> Result<i64, StoreError>,
) -> Result<(), StoreError> {
    match &draft.assumed {
        None => Ok(()),
        Some(a) if a.member_id != member_id => Err(StoreError::Stale),
        Some(a) => {
            if visits()? == a.visits {
                Ok(())
            } else {
                Err(StoreError::Stale)
            }
        }
    }
}

/// The counters (caps and budgets) the draft's awards use, each once, in a fixed order
/// so concurrent writers lock them in the same order.
pub fn counter_keys(draft: &RuleDraft, member_id: &str) -> Vec<String> {
    let mut keys: Vec<String> = draft
        .awards
        .iter()
        .flat_map(|a| a.limits.iter().map(|l| l.key(&a.rule_id, member_id)))
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Applies caps and budgets: each award gets at most what every one of its counters has
/// left. Returns the final valuation (base plus what the rules gave, explained), the
/// awards to save, and how much each counter grows.
pub fn grant_awards(
    base: &Valuation,
    draft: &RuleDraft,
    member_id: &str,
    used: &HashMap<String, i64>,
) -> crate::model::Granted {
    let mut valuation = base.clone();
    let mut used = used.clone();
    let mut granted_awards = Vec::new();
    let mut increments: HashMap<String, i64> = HashMap::new();
    for award in &draft.awards {
        let keys: Vec<String> = award.limits.iter().map(|l| l.key(&award.rule_id, member_id)).collect();
        let mut points = award.points;
        let mut reached = None;
        for (limit, key) in award.limits.iter().zip(&keys) {
            let left = (limit.limit - used.get(key).copied().unwrap_or(0)).max(0);
            if left < points {
                points = left;
                reached = Some(limit);
            }
        }
        if points <= 0 {
            continue;
        }
        for key in &keys {
            *used.entry(key.clone()).or_insert(0) += points;
            *increments.entry(key.clone()).or_insert(0) += points;
        }
        let mut reason = award.sentence(points);
        if let Some(l) = reached {
            reason.push_str(&format!(" (limit reached: {} points {})", l.limit, l.label));
        }
        valuation.points_earned += points;
        valuation.breakdown.push(BreakdownLine {
            rule: award.rule_id.clone(),
            version: Some(award.version),
            points,
            reason,
        });
        granted_awards.push(GrantedAward {
            rule_id: award.rule_id.clone(),
            version: award.version,
            points,
            keys,
        });
    }
    let mut increments: Vec<(String, i64)> = increments.into_iter().collect();
    increments.sort();
    (valuation, granted_awards, increments)
}

/// What a return gives back to caps and budgets: each award's points are taken back in
/// the proportion of the purchase returned so far (half up, cumulative, as the ledger
/// does), and its counters get back only the share the member still had: points the
/// member already spent (`result.points_unrecovered`) stay counted, or earning a cap,
/// spending it and returning the goods would renew the cap. Returns (rule id, points
/// newly taken back, points given back to the counters, counters to lower).
pub fn award_reversals(
    awards: &[AwardRow],
    returned_after: i64,
    total: i64,
    result: &tally_domain::plan::ReturnResult,
) -> Vec<(String, i64, i64, Vec<String>)> {
    let whole = total.max(1);
    let part = if total == 0 { 1 } else { returned_after.min(total) };
    let taken_back = result.points_reversed + result.points_unrecovered;
    awards
        .iter()
        .filter_map(|a| {
            let delta = proportion_half_up(a.points, part, whole) - a.reversed;
            let give_back = if taken_back == 0 {
                0
            } else {
                (i128::from(delta) * i128::from(result.points_reversed) / i128::from(taken_back)) as i64
            };
            (delta > 0).then(|| (a.rule_id.clone(), delta, give_back, a.keys.clone()))
        })
        .collect()
}

/// Counter keys as saved with an award.
pub fn keys_json(keys: &[String]) -> String {
    serde_json::to_string(keys).unwrap_or_else(|_| "[]".into())
}

pub fn keys_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Plans an engagement event's points (what the rules gave, after caps) and makes its
/// receipt. The points come from the event's partner, or from the programme.
pub fn plan_event_receipt(
    state: &tally_domain::plan::MemberState,
    cmd: &crate::model::EventCmd,
    valuation: &Valuation,
) -> Result<(tally_domain::plan::Plan, String), StoreError> {
    let terms = cmd
        .partner
        .clone()
        .unwrap_or_else(|| tally_domain::plan::PartnerTerms::programme("the programme"));
    let label = format!("Earned for {}", cmd.event_type.replace('_', " "));
    let purchase = tally_domain::plan::Purchase {
        transaction_id: &cmd.id,
        partner: &terms,
        occurred_at: cmd.occurred_at,
        redeem_points: 0,
        valuation,
        label: Some(&label),
    };
    let plan = tally_domain::plan::plan_purchase(state, &cmd.program, &purchase, cmd.now)?;
    let receipt = to_json(&tally_domain::receipt::EventReceipt {
        id: cmd.id.clone(),
        external_id: cmd.external_id.clone(),
        member_id: state.member_id.clone(),
        partner_id: cmd.partner.as_ref().map(|p| p.id.clone()),
        event_type: cmd.event_type.clone(),
        occurred_at: cmd.occurred_at.to_string(),
        points_earned: valuation.points_earned,
        breakdown: valuation.breakdown.iter().cloned().map(Into::into).collect(),
        balance: BalanceView {
            available: plan.balance_after.available,
            pending: plan.balance_after.pending,
        },
    })?;
    Ok((plan, receipt))
}

/// The valuation of an event before rules: nothing earned, nothing paid.
pub fn empty_valuation() -> Valuation {
    Valuation {
        points_earned: 0,
        breakdown: Vec::new(),
        redeemed_value_minor: 0,
        redeemed_value_local_minor: 0,
        earning_amount: rust_decimal::Decimal::ZERO,
    }
}

/// A stored rule version's JSON into its spec.
pub fn spec_from_json(text: &str) -> Result<tally_domain::rules::RuleSpec, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("bad stored rule: {e}")))
}

/// Rule rows as both backends select them: (id, current version, spec JSON, created,
/// updated).
pub fn rule_rows_from(rows: Vec<(String, i64, String, i64, i64)>) -> Result<Vec<crate::model::RuleRow>, StoreError> {
    rows.into_iter()
        .map(|(id, version, spec, created, updated)| {
            Ok(crate::model::RuleRow {
                id,
                version,
                spec: spec_from_json(&spec)?,
                created_at: crate::model::from_micros(created),
                updated_at: crate::model::from_micros(updated),
            })
        })
        .collect()
}

/// Stored segments (a JSON list) into a list.
pub fn segments_from_json(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}
