//! The SQL of the SQLite backend: synchronous functions over one connection, run by the
//! writer thread (inside its group transaction) or by a reader.

use crate::StoreError;
use crate::common::{
    activity_time, check_assumption, merge_due, money, needs_lots, plan_purchase_receipt, plan_return_receipt, replay,
    to_json,
};
use crate::model::*;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use tally_domain::identity::Identity;
use tally_domain::lots::{Lot, LotOrigin};
use tally_domain::money::Currency;
use tally_domain::plan::{Balance, MemberState, Plan, plan_settle};

fn ts(us: i64) -> Timestamp {
    from_micros(us)
}

fn opt_ts(us: Option<i64>) -> Option<Timestamp> {
    us.map(from_micros)
}

pub fn program(conn: &Connection) -> Result<ProgramRow, StoreError> {
    let (name, currency, point_value_minor, expiry_months): (String, String, i64, i64) = conn
        .prepare_cached("SELECT name, currency, point_value_minor, expiry_months FROM program WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(ProgramRow {
        name,
        currency: Currency::parse(&currency)?,
        point_value_minor,
        expiry_months: expiry_months as u32,
    })
}

pub fn update_program(conn: &Connection, u: &ProgramUpdate) -> Result<ProgramRow, StoreError> {
    let current = program(conn)?;
    conn.execute(
        "UPDATE program SET name = ?1, currency = ?2, point_value_minor = ?3, expiry_months = ?4 WHERE id = 1",
        params![
            u.name.clone().unwrap_or(current.name),
            u.currency.unwrap_or(current.currency).code(),
            u.point_value_minor.unwrap_or(current.point_value_minor),
            u.expiry_months.unwrap_or(current.expiry_months),
        ],
    )?;
    program(conn)
}

pub fn partner_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PartnerTuple> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

type PartnerTuple = (String, String, String, String, String, String, String, i64, i64);

pub fn partner_row(t: PartnerTuple) -> Result<PartnerRow, StoreError> {
    let (id, name, industry, country, currency, timezone, earn_rate, pending_days, created_at) = t;
    Ok(PartnerRow {
        id,
        name,
        industry,
        country,
        currency: Currency::parse(&currency)?,
        timezone,
        earn_rate: earn_rate
            .parse()
            .map_err(|_| StoreError::Database("bad earn_rate".into()))?,
        pending_days: pending_days as u32,
        created_at: ts(created_at),
    })
}

const PARTNER_COLUMNS: &str = "id, name, industry, country, currency, timezone, earn_rate, pending_days, created_at";

pub fn partners(conn: &Connection) -> Result<Vec<PartnerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PARTNER_COLUMNS} FROM partners ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], partner_from_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(partner_row).collect()
}

pub fn partner(conn: &Connection, id: &str) -> Result<Option<PartnerRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {PARTNER_COLUMNS} FROM partners WHERE id = ?1"))?;
    stmt.query_row([id], partner_from_row)
        .optional()?
        .map(partner_row)
        .transpose()
}

pub fn create_partner(conn: &Connection, p: &PartnerRow) -> Result<(), StoreError> {
    conn.execute(
        &format!("INSERT INTO partners ({PARTNER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
        params![
            p.id,
            p.name,
            p.industry,
            p.country,
            p.currency.code(),
            p.timezone,
            p.earn_rate.to_string(),
            p.pending_days,
            to_micros(p.created_at)
        ],
    )?;
    Ok(())
}

pub fn create_location(conn: &Connection, l: &LocationRow) -> Result<(), StoreError> {
    if partner(conn, &l.partner_id)?.is_none() {
        return Err(StoreError::NotFound("partner"));
    }
    conn.execute(
        "INSERT INTO locations (id, partner_id, name, city, country, timezone, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![l.id, l.partner_id, l.name, l.city, l.country, l.timezone, to_micros(l.created_at)],
    )?;
    Ok(())
}

pub fn locations(conn: &Connection, partner_id: &str) -> Result<Vec<LocationRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, partner_id, name, city, country, timezone, created_at FROM locations WHERE partner_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([partner_id], |r| {
        Ok(LocationRow {
            id: r.get(0)?,
            partner_id: r.get(1)?,
            name: r.get(2)?,
            city: r.get(3)?,
            country: r.get(4)?,
            timezone: r.get(5)?,
            created_at: ts(r.get(6)?),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn create_api_key(conn: &Connection, k: &ApiKeyRow) -> Result<(), StoreError> {
    if partner(conn, &k.partner_id)?.is_none() {
        return Err(StoreError::NotFound("partner"));
    }
    conn.execute(
        "INSERT INTO api_keys (id, partner_id, key_hash, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![k.id, k.partner_id, k.key_hash, to_micros(k.created_at)],
    )?;
    Ok(())
}

pub fn api_key_partner(conn: &Connection, hash: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT partner_id FROM api_keys WHERE key_hash = ?1")?
        .query_row([hash], |r| r.get(0))
        .optional()?)
}

pub fn fx_rates(conn: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT currency, rate FROM fx_rates")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn put_fx_rate(conn: &Connection, currency: &str, rate: &str, now: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO fx_rates (currency, rate, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (currency) DO UPDATE SET rate = excluded.rate, updated_at = excluded.updated_at",
    )?
    .execute(params![currency, rate, to_micros(now)])?;
    Ok(())
}

pub fn create_member(conn: &Connection, m: &NewMember) -> Result<(), StoreError> {
    for identity in &m.identities {
        if member_id_by_identity(conn, identity)?.is_some() {
            return Err(StoreError::IdentityTaken);
        }
    }
    let referred_by: Option<String> = match &m.referred_by_code {
        Some(code) => Some(
            conn.prepare_cached("SELECT id FROM members WHERE referral_code = ?1")?
                .query_row([code], |r| r.get(0))
                .optional()?
                .ok_or(StoreError::UnknownReferralCode)?,
        ),
        None => None,
    };
    conn.prepare_cached("INSERT INTO members (id, name, country, referral_code, referred_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![m.id, m.name, m.country, m.referral_code, referred_by, to_micros(m.created_at)])?;
    for identity in &m.identities {
        conn.prepare_cached("INSERT INTO identities (kind, value, member_id) VALUES (?1, ?2, ?3)")?
            .execute(params![identity.kind.as_str(), identity.value, m.id])?;
    }
    Ok(())
}

pub fn member_id_by_identity(conn: &Connection, identity: &Identity) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT member_id FROM identities WHERE kind = ?1 AND value = ?2")?
        .query_row(params![identity.kind.as_str(), identity.value], |r| r.get(0))
        .optional()?)
}

pub fn member(conn: &Connection, id: &str) -> Result<Option<MemberRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT id, name, country, referral_code, created_at, available, pending, lifetime_earned, next_due_at, referred_by,
                    tier, segments, plan FROM members WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(MemberRow {
                id: r.get(0)?,
                name: r.get(1)?,
                country: r.get(2)?,
                referral_code: r.get(3)?,
                referred_by: r.get(9)?,
                created_at: ts(r.get(4)?),
                balance: Balance { available: r.get(5)?, pending: r.get(6)?, lifetime_earned: r.get(7)? },
                identities: Vec::new(),
                next_due_at: opt_ts(r.get(8)?),
                profile: MemberProfile {
                    tier: r.get(10)?,
                    segments: crate::common::segments_from_json(&r.get::<_, String>(11)?),
                    plan: r.get(12)?,
                },
            })
        })
        .optional()?;
    let Some(mut row) = row else { return Ok(None) };
    let mut stmt =
        conn.prepare_cached("SELECT kind, value FROM identities WHERE member_id = ?1 ORDER BY kind, value")?;
    row.identities = stmt
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(row))
}

pub fn resolve_member(conn: &Connection, member: &MemberRef) -> Result<String, StoreError> {
    let id = match member {
        MemberRef::Id(id) => conn
            .prepare_cached("SELECT id FROM members WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?,
        MemberRef::Identity(identity) => member_id_by_identity(conn, identity)?,
    };
    id.ok_or(StoreError::NotFound("member"))
}

/// The member's balances and next due time; with `with_lots`, also the open lots.
pub fn load_state(
    conn: &Connection,
    member_id: &str,
    with_lots: bool,
) -> Result<(MemberState, Option<Timestamp>), StoreError> {
    let (balance, next_due) = conn
        .prepare_cached("SELECT available, pending, lifetime_earned, next_due_at FROM members WHERE id = ?1")?
        .query_row([member_id], |r| {
            Ok((
                Balance {
                    available: r.get(0)?,
                    pending: r.get(1)?,
                    lifetime_earned: r.get(2)?,
                },
                r.get::<_, Option<i64>>(3)?,
            ))
        })
        .optional()?
        .ok_or(StoreError::NotFound("member"))?;
    let mut lots = Vec::new();
    if with_lots {
        let mut stmt = conn.prepare_cached(
            "SELECT id, remaining, earned_at, expires_at, matures_at, transaction_id, origin FROM lots WHERE member_id = ?1 AND remaining > 0",
        )?;
        let rows = stmt.query_map([member_id], |r| {
            Ok(Lot {
                id: Some(r.get(0)?),
                remaining: r.get(1)?,
                earned_at: ts(r.get(2)?),
                expires_at: ts(r.get(3)?),
                matures_at: opt_ts(r.get(4)?),
                transaction_id: r.get(5)?,
                origin: LotOrigin::parse(&r.get::<_, String>(6)?),
            })
        })?;
        lots = rows.collect::<Result<Vec<_>, _>>()?;
    }
    Ok((
        MemberState {
            member_id: member_id.to_string(),
            balance,
            lots,
        },
        opt_ts(next_due),
    ))
}

/// Writes a plan: entries, lots, activity, and the member's balances.
pub fn write_plan(
    conn: &Connection,
    member_id: &str,
    plan: &Plan,
    stored_due: Option<Timestamp>,
    lots_loaded: bool,
    event_time: Timestamp,
    now: Timestamp,
) -> Result<(), StoreError> {
    let recorded = to_micros(now);
    let mut entry = conn.prepare_cached(
        "INSERT INTO entries (account, member_id, partner_id, amount, code, transaction_id, return_id, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for t in &plan.transfers {
        for (account, amount) in [(&t.from, -t.points), (&t.to, t.points)] {
            entry.execute(params![
                account.key(),
                account.member(),
                account.partner(),
                amount,
                t.code.as_str(),
                t.transaction_id,
                t.return_id,
                recorded
            ])?;
        }
    }
    let mut update_lot = conn.prepare_cached("UPDATE lots SET remaining = ?2, matures_at = ?3 WHERE id = ?1")?;
    for u in &plan.lot_updates {
        update_lot.execute(params![u.id, u.remaining, u.matures_at.map(to_micros)])?;
    }
    let mut insert_lot = conn.prepare_cached(
        "INSERT INTO lots (member_id, remaining, earned_at, expires_at, matures_at, transaction_id, origin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for lot in &plan.new_lots {
        insert_lot.execute(params![
            member_id,
            lot.remaining,
            to_micros(lot.earned_at),
            to_micros(lot.expires_at),
            lot.matures_at.map(to_micros),
            lot.transaction_id,
            lot.origin.as_str()
        ])?;
    }
    let mut activity = conn.prepare_cached(
        "INSERT INTO activity (member_id, kind, points, occurred_at, partner_id, transaction_id, description) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for a in &plan.activity {
        activity.execute(params![
            member_id,
            a.kind,
            a.points,
            to_micros(activity_time(a, event_time, now)),
            a.partner_id,
            a.transaction_id,
            a.description
        ])?;
    }
    let b = plan.balance_after;
    let due = merge_due(stored_due, plan.next_due_at, lots_loaded);
    conn.prepare_cached(
        "UPDATE members SET available = ?2, pending = ?3, lifetime_earned = ?4, next_due_at = ?5 WHERE id = ?1",
    )?
    .execute(params![
        member_id,
        b.available,
        b.pending,
        b.lifetime_earned,
        due.map(to_micros)
    ])?;
    Ok(())
}

pub fn post_purchase(conn: &Connection, cmd: &PurchaseCmd) -> Result<Posted, StoreError> {
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT request_hash, receipt FROM transactions WHERE partner_id = ?1 AND external_id = ?2")?
        .query_row(params![cmd.partner.id, cmd.external_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((hash, receipt)) = seen {
        return replay(&hash, receipt, &cmd.request_hash);
    }
    if let Some(location_id) = &cmd.location_id {
        let owner: Option<String> = conn
            .prepare_cached("SELECT partner_id FROM locations WHERE id = ?1")?
            .query_row([location_id], |r| r.get(0))
            .optional()?;
        if owner.as_deref() != Some(cmd.partner.id.as_str()) {
            return Err(StoreError::UnknownLocation);
        }
    }
    let member_id = match &cmd.member {
        // load_state finds (or refuses) a member named by id.
        MemberRef::Id(id) => id.clone(),
        other => resolve_member(conn, other)?,
    };
    let (state, stored_due) = load_state(conn, &member_id, false)?;
    let needs_lots = needs_lots(cmd, stored_due);
    let state = if needs_lots {
        load_state(conn, &member_id, true)?.0
    } else {
        state
    };
    check_assumption(&cmd.rules, &member_id, || {
        super::rules::visits(conn, &member_id, &cmd.partner.id)
    })?;
    let (valuation, granted, increments) = super::rules::grant(conn, &cmd.valuation, &cmd.rules, &member_id)?;
    let (plan, receipt) = plan_purchase_receipt(&state, cmd, &valuation, "posted")?;
    let receipt = to_json(&receipt)?;
    conn.prepare_cached(
        "INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
             total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        cmd.transaction_id,
        cmd.partner.id,
        cmd.external_id,
        member_id,
        cmd.location_id,
        to_micros(cmd.occurred_at),
        to_micros(cmd.now),
        cmd.total.amount,
        cmd.total.currency.code(),
        valuation.points_earned,
        cmd.redeem_points,
        cmd.lines_json,
        cmd.request_hash,
        receipt
    ])?;
    write_plan(
        conn,
        &member_id,
        &plan,
        stored_due,
        needs_lots,
        cmd.occurred_at,
        cmd.now,
    )?;
    super::rules::write_awards(conn, &cmd.transaction_id, &granted, &increments)?;
    super::rules::bump_visit(conn, &member_id, &cmd.partner.id, cmd.occurred_at)?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
    })
}

pub fn transaction(conn: &Connection, id: &str) -> Result<Option<TransactionRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT id, partner_id, member_id, external_id, total_amount, total_currency, points_earned, points_redeemed,
                    returned_amount, points_reversed, points_refunded, receipt FROM transactions WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, String>(3)?),
                (r.get::<_, i64>(4)?, r.get::<_, String>(5)?),
                (r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?, r.get::<_, String>(11)?),
            ))
        })
        .optional()?;
    let Some(((id, partner_id, member_id, external_id), (amount, currency), rest)) = row else {
        return Ok(None);
    };
    let (points_earned, points_redeemed, returned_amount, points_reversed, points_refunded, receipt_json) = rest;
    Ok(Some(TransactionRow {
        id,
        partner_id,
        member_id,
        external_id,
        total: money(amount, &currency)?,
        points_earned,
        points_redeemed,
        returned_amount,
        points_reversed,
        points_refunded,
        receipt_json,
    }))
}

pub fn post_return(conn: &Connection, cmd: &ReturnCmd) -> Result<Posted, StoreError> {
    let seen: Option<(String, String)> = conn
        .prepare_cached("SELECT request_hash, receipt FROM returns WHERE partner_id = ?1 AND external_id = ?2")?
        .query_row(params![cmd.partner_id, cmd.external_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((hash, receipt)) = seen {
        return replay(&hash, receipt, &cmd.request_hash);
    }
    let txn = transaction(conn, &cmd.transaction_id)?
        .filter(|t| t.partner_id == cmd.partner_id)
        .ok_or(StoreError::NotFound("transaction"))?;
    let partner_name = partner(conn, &txn.partner_id)?.map(|p| p.name).unwrap_or_default();
    let (state, stored_due) = load_state(conn, &txn.member_id, true)?;
    let (plan, result, receipt) = plan_return_receipt(&txn, partner_name, &state, cmd)?;
    conn.prepare_cached(
        "INSERT INTO returns (id, transaction_id, partner_id, external_id, amount, recorded_at, request_hash, receipt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        cmd.return_id,
        txn.id,
        cmd.partner_id,
        cmd.external_id,
        cmd.amount.amount,
        to_micros(cmd.now),
        cmd.request_hash,
        receipt
    ])?;
    conn.prepare_cached(
        "UPDATE transactions SET returned_amount = returned_amount + ?2, points_reversed = points_reversed + ?3,
             points_refunded = points_refunded + ?4 WHERE id = ?1",
    )?
    .execute(params![
        txn.id,
        cmd.amount.amount,
        result.points_reversed + result.points_unrecovered,
        result.points_refunded
    ])?;
    write_plan(conn, &txn.member_id, &plan, stored_due, true, cmd.now, cmd.now)?;
    super::rules::reverse_awards(
        conn,
        &txn.id,
        txn.returned_amount + cmd.amount.amount,
        txn.total.amount,
        &result,
    )?;
    Ok(Posted {
        receipt_json: receipt,
        replayed: false,
    })
}

/// Matures and expires what is due for one member; returns (matured, expired) points.
pub fn settle_member(conn: &Connection, member_id: &str, now: Timestamp) -> Result<(i64, i64), StoreError> {
    let (state, stored_due) = load_state(conn, member_id, true)?;
    let plan = plan_settle(&state, now);
    if plan.transfers.is_empty() && plan.next_due_at == stored_due {
        return Ok((0, 0));
    }
    write_plan(conn, member_id, &plan, stored_due, true, now, now)?;
    Ok(settled_points(&plan))
}

pub fn settled_points(plan: &Plan) -> (i64, i64) {
    use tally_domain::ledger::EntryCode;
    let sum = |code| {
        plan.transfers
            .iter()
            .filter(|t| t.code == code)
            .map(|t| t.points)
            .sum::<i64>()
    };
    (sum(EntryCode::Mature), sum(EntryCode::Expire))
}

pub fn due_members(conn: &Connection, now: Timestamp, limit: u32) -> Result<Vec<String>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM members WHERE next_due_at <= ?1 ORDER BY next_due_at LIMIT ?2")?;
    let rows = stmt.query_map(params![to_micros(now), limit], |r| r.get(0))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn activity(conn: &Connection, q: &ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, member_id, kind, points, occurred_at, partner_id, transaction_id, description FROM activity
         WHERE member_id = ?1 AND (?2 IS NULL OR partner_id = ?2) AND (?3 IS NULL OR id < ?3)
         ORDER BY id DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![q.member_id, q.partner_id, q.before_id, q.limit], |r| {
        Ok(ActivityRow {
            id: r.get(0)?,
            member_id: r.get(1)?,
            kind: r.get(2)?,
            points: r.get(3)?,
            occurred_at: ts(r.get(4)?),
            partner_id: r.get(5)?,
            transaction_id: r.get(6)?,
            description: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub fn verify(conn: &Connection) -> Result<Verification, StoreError> {
    let mut sums: HashMap<String, i64> = HashMap::new();
    let mut entries_checked = 0u64;
    let mut stmt = conn.prepare("SELECT account, SUM(amount), COUNT(*) FROM entries GROUP BY account")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        sums.insert(r.get(0)?, r.get(1)?);
        entries_checked += r.get::<_, i64>(2)? as u64;
    }
    let mut stored = Vec::new();
    let mut stmt = conn.prepare("SELECT id, available, pending FROM members")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        stored.push((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?));
    }
    Ok(crate::common::verification(sums, entries_checked, stored))
}

pub fn idempotent_response(
    conn: &Connection,
    principal: &str,
    key: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT request_hash, status, body FROM idempotency_keys WHERE principal = ?1 AND key = ?2")?
        .query_row(params![principal, key], |r| {
            Ok(StoredResponse {
                request_hash: r.get(0)?,
                status: r.get::<_, i64>(1)? as u16,
                body: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn save_idempotent_response(
    conn: &Connection,
    principal: &str,
    key: &str,
    resp: &StoredResponse,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO idempotency_keys (principal, key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (principal, key) DO NOTHING",
    )?
    .execute(params![principal, key, resp.request_hash, resp.status, resp.body, to_micros(now)])?;
    Ok(())
}

pub fn counts(conn: &Connection) -> Result<Counts, StoreError> {
    let count = |table: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0))? as u64)
    };
    Ok(Counts {
        members: count("members")?,
        partners: count("partners")?,
        transactions: count("transactions")?,
        entries: count("entries")?,
    })
}
