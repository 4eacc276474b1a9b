//! How both backends turn stored values into domain values and back: money, rates,
//! rule specs, counter keys, segments, and the ledger check's arithmetic. No decisions
//! live here; those are in `tally_domain::decide`.

use crate::StoreError;
use crate::model::{Mismatch, RuleRow, TransactionRow, Verification, from_micros};
use std::collections::{HashMap, HashSet};
use tally_domain::earning::FxRates;
use tally_domain::ids::{Id, WalletId};
use tally_domain::money::{Currency, Money};
use tally_domain::plan::PurchaseRecord;
use tally_domain::tiers::{TierLadder, TierState};
use tally_domain::wallets::SaleRoute;

pub fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    Ok(serde_json::to_string(value)?)
}

pub fn money(amount: i64, currency: &str) -> Result<Money, StoreError> {
    let c = Currency::parse(currency).map_err(|_| StoreError::corrupt(format!("currency {currency:?}")))?;
    Ok(Money { amount, currency: c })
}

pub fn currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|_| StoreError::corrupt(format!("currency {code:?}")))
}

pub fn decimal(text: &str, what: &str) -> Result<rust_decimal::Decimal, StoreError> {
    text.parse()
        .map_err(|_| StoreError::corrupt(format!("{what} {text:?}")))
}

/// A stored purchase as a return's decision reads it.
pub fn purchase_record(txn: &TransactionRow, partner_name: String) -> PurchaseRecord {
    PurchaseRecord {
        id: txn.id.clone(),
        partner_id: txn.partner_id.clone(),
        partner_name,
        member_id: txn.member_id.clone(),
        total: txn.total,
        points_earned: txn.points_earned,
        points_operator: txn.points_operator,
        points_redeemed: txn.points_redeemed,
        returned_amount: txn.returned_amount,
        points_reversed: txn.points_reversed,
        points_refunded: txn.points_refunded,
        tier_qualifying: txn.tier_qualifying,
        recorded_at: txn.recorded_at,
        wallet: txn.wallet.clone(),
        tier_household: txn.tier_household.clone(),
    }
}

/// How a sale used a shared wallet, as `transactions.wallet_route` keeps it: 1 earned
/// into it, 2 paid from it, 3 both.
pub fn route_code(route: SaleRoute) -> i64 {
    i64::from(route.earns_into_wallet) | (i64::from(route.pays_from_wallet) << 1)
}

/// The stored wallet columns of a sale as the wallet and route it used.
pub fn sale_wallet(id: Option<String>, code: Option<i64>) -> Option<(WalletId, SaleRoute)> {
    let (id, code) = (id?, code?);
    Some((
        WalletId::from_stored(id),
        SaleRoute {
            earns_into_wallet: code & 1 != 0,
            pays_from_wallet: code & 2 != 0,
        },
    ))
}

/// The member row's tier columns, in the order [`tier_state`] reads them; every query
/// that reads a member's standing selects exactly these (after its own columns).
pub const TIER_COLUMNS: &str = "tier, tier_earned, tier_qualifying, tier_period_start, tier_previous_qualifying, \
     tier_review_pending, tier_reached_at, tier_manual_until, created_at";

/// The stored tier columns of a member as the domain's standing.
#[allow(clippy::too_many_arguments)]
pub fn tier_state(
    effective: Option<String>,
    earned: Option<String>,
    qualifying: i64,
    period_start: Option<i64>,
    previous_qualifying: i64,
    review_pending: bool,
    reached_at: Option<i64>,
    manual_until: Option<i64>,
    created_at: i64,
) -> TierState {
    TierState {
        effective,
        earned,
        qualifying,
        period_start: period_start.map(from_micros),
        previous_qualifying,
        review_pending,
        reached_at: reached_at.map(from_micros),
        manual_until: manual_until.map(from_micros),
        anchor: from_micros(created_at),
    }
}

/// A stored ladder (checked when it was saved); none or unreadable: tiers off.
pub fn tier_ladder(json: Option<&str>) -> std::sync::Arc<TierLadder> {
    std::sync::Arc::new(json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default())
}

/// The stored transfer policy; none stored (or unreadable) is the default, closed one.
pub fn transfer_policy(json: Option<&str>) -> tally_domain::transfers::TransferPolicy {
    json.and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default()
}

/// The stored referral policy (none, or unreadable: referrals never convert).
pub fn referral_policy(json: Option<&str>) -> Option<std::sync::Arc<tally_domain::referrals::ReferralPolicy>> {
    json.and_then(|j| serde_json::from_str(j).ok()).map(std::sync::Arc::new)
}

/// Compares stored member balances with the sums of their accounts' entries. Sums are
/// taken in 128 bits, so no ledger, however large, overflows the check.
pub fn verification(
    sums: HashMap<String, i128>,
    entries_checked: u64,
    holders: Vec<(String, i64, i64, i64)>,
    vouchers: HashMap<String, i64>,
    exchange_pending: HashMap<String, i64>,
) -> Verification {
    let entries_sum: i128 = sums.values().sum();
    let mut mismatches = Vec::new();
    let mut accounts: HashSet<&str> = sums.keys().map(String::as_str).collect();
    // Holders are `member:<id>` or `wallet:<id>`, as their accounts are keyed.
    let member_accounts: Vec<(String, i64)> = holders
        .iter()
        .flat_map(|(holder, available, pending, reserved)| {
            [
                (format!("{holder}:available"), *available),
                (format!("{holder}:pending"), *pending),
                (format!("{holder}:reserved"), *reserved),
            ]
        })
        .collect();
    for (account, stored) in &member_accounts {
        let from_entries = sums.get(account).copied().unwrap_or(0);
        if i128::from(*stored) != from_entries || *stored < 0 {
            mismatches.push(Mismatch {
                account: account.clone(),
                stored: *stored,
                from_entries: clamp(from_entries),
            });
        }
        accounts.insert(account);
    }
    let known: HashSet<&str> = member_accounts.iter().map(|(a, _)| a.as_str()).collect();
    for (account, sum) in &sums {
        if (account.starts_with("member:") || account.starts_with("wallet:")) && !known.contains(account.as_str()) {
            mismatches.push(Mismatch {
                account: account.clone(),
                stored: 0,
                from_entries: clamp(*sum),
            });
        }
    }
    // Points on their way between members arrive in the same write they leave in.
    let in_transit = sums
        .get(&tally_domain::ledger::Account::ProgramTransfers.key())
        .copied()
        .unwrap_or(0);
    if in_transit != 0 {
        mismatches.push(Mismatch {
            account: tally_domain::ledger::Account::ProgramTransfers.key(),
            stored: 0,
            from_entries: clamp(in_transit),
        });
    }
    // What waits at an exchange partner is what its pending orders hold, to the point.
    let mut partners: HashSet<String> = exchange_pending.keys().cloned().collect();
    partners.extend(sums.keys().filter_map(|a| {
        a.strip_prefix("exchange:")?
            .strip_suffix(":pending")
            .map(str::to_string)
    }));
    for partner in partners {
        let account = tally_domain::ledger::Account::ExchangePending(partner.clone()).key();
        let from_entries = sums.get(&account).copied().unwrap_or(0);
        let orders = exchange_pending.get(&partner).copied().unwrap_or(0);
        if from_entries != i128::from(orders) {
            mismatches.push(Mismatch {
                account: format!("{account} (pending orders)"),
                stored: orders,
                from_entries: clamp(from_entries),
            });
        }
    }
    // What a member holds reserved is what her issued vouchers hold, to the point.
    for (holder, _, _, reserved) in &holders {
        let Some(member) = holder.strip_prefix("member:") else {
            continue;
        };
        let open = vouchers.get(member).copied().unwrap_or(0);
        if open != *reserved {
            mismatches.push(Mismatch {
                account: format!("{holder}:reserved (issued vouchers)"),
                stored: *reserved,
                from_entries: open,
            });
        }
    }
    mismatches.sort_by(|a, b| a.account.cmp(&b.account));
    Verification {
        balanced: mismatches.is_empty() && entries_sum == 0,
        accounts_checked: accounts.len() as u64,
        entries_checked,
        entries_sum: clamp(entries_sum),
        mismatches,
    }
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// FX rates as stored (code, decimal string) into the domain's rates.
pub fn fx_rates_from_rows(rows: Vec<(String, String)>) -> Result<FxRates, StoreError> {
    let mut rates = FxRates::new();
    for (code, rate) in rows {
        let rate = decimal(&rate, &format!("rate for {code}"))?;
        rates.set(currency(&code)?, rate)?;
    }
    Ok(rates)
}

/// Counter keys as saved with an award.
pub fn keys_json(keys: &[String]) -> Result<String, StoreError> {
    to_json(&keys)
}

pub fn keys_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// A stored rule version's JSON into its spec.
pub fn spec_from_json(text: &str) -> Result<tally_domain::rules::RuleSpec, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// Rule rows as both backends select them: (id, current version, spec JSON, created,
/// updated).
pub fn rule_rows_from(rows: Vec<(String, i64, String, i64, i64)>) -> Result<Vec<RuleRow>, StoreError> {
    rows.into_iter()
        .map(|(id, version, spec, created, updated)| {
            Ok(RuleRow {
                id: tally_domain::ids::Id::from_stored(id),
                version,
                spec: spec_from_json(&spec)?,
                created_at: from_micros(created),
                updated_at: from_micros(updated),
            })
        })
        .collect()
}

/// Stored segments (a JSON list) into a list.
pub fn segments_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    Ok(serde_json::from_str(text)?)
}

/// Saved awards as both backends select them: (rule, points, reversed, counter keys).
pub fn saved_awards_from(
    rows: Vec<(String, i64, i64, String)>,
) -> Result<Vec<tally_domain::decide::SavedAward>, StoreError> {
    rows.into_iter()
        .map(|(rule_id, points, reversed, keys)| {
            Ok(tally_domain::decide::SavedAward {
                rule_id: tally_domain::ids::Id::from_stored(rule_id),
                points,
                reversed,
                keys: keys_from_json(&keys)?,
            })
        })
        .collect()
}

/// The first answer under an id, as both backends select it: (request hash, receipt).
pub fn stored_answer((request_hash, receipt_json): (String, String)) -> tally_domain::decide::StoredAnswer {
    tally_domain::decide::StoredAnswer {
        request_hash,
        receipt_json,
        target: None,
    }
}
