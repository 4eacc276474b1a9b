//! A writer's group of sales in few round trips: the members of every sale locked and
//! their receipt ids probed in one statement, their open lots read in one more where a
//! decision needs them, each sale decided by the domain, and every decided sale written
//! in one statement. A group pays its BEGIN and COMMIT and two to four statements per
//! round, however many sales a round holds (a sale with a location, or under rules that
//! read visit counts, adds a query of its own; a round whose sales use shared wallets
//! or households adds one statement locking them all), where each sale used to pay five.
//!
//! A group's transaction starts with [`BEGIN_BY_KEY`]: every row a sale touches is
//! reached through an index. Left to itself, the planner scans a table it believes
//! small (members, lots, from statistics taken when they were) and hashes the sales
//! against it; under a stream of updates such a table is mostly dead row versions, and
//! those scans were the largest cost of a group.
//!
//! Sales of one member are decided one after another (the second must see what the
//! first changed): a group runs in rounds, each with at most one sale per member.

use super::budgets::{Budgets, Taken};
use super::challenges::count_group_steps;
use super::ledger::write_holder_plan;
use super::members::{load_wallet_state, lot_from, tier_from_row, visits};
use super::partners::location_owner;
use super::purchases::stored_receipt;
use super::referrals::{decide_referral, lock_referrers};
use super::rules::{AwardRows, award_rows, cap_keys, draw_budgets, keep_drawn, locked_counters};
use super::tiers::{TierColumns, read_tier, write_changes, write_tier};
use super::wallets::{lock_wallets, wallet_link};
use crate::codec::{route_code, stored_answer, to_json};
use crate::model::{Holder, MemberRef, Posted, PurchaseCmd, from_micros, to_micros};
use crate::{Entity, StoreError};
use sqlx::{PgConnection, Row};
use std::collections::{BTreeSet, HashMap, HashSet};
use tally_domain::decide::{
    PurchaseDecision, PurchaseFacts, ReceiptStatus, StoredAnswer, WalletFacts, decide_purchase, replay,
};
use tally_domain::ids::{Id, MemberId, WalletId};
use tally_domain::lots::Lot;
use tally_domain::plan::{Balance, MemberState, needs_lots};
use tally_domain::tiers::TierScope;

/// How a writer's transaction begins: sequential scans off (every statement of a group
/// reads rows by key), in the same round trip as the BEGIN.
pub(super) const BEGIN_BY_KEY: &str =
    "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan";

/// What became of one sale of a group.
pub(super) enum SaleOutcome {
    /// Written in the group's transaction, or answered from a stored copy.
    Posted(Posted),
    /// Another request took the receipt id first: replay its answer after the commit.
    Replay,
    /// Refused by the domain before anything was written.
    Refused(StoreError),
}

/// A decided sale, encoded and waiting for the group's write.
struct Decided {
    index: usize,
    decision: PurchaseDecision,
    receipt: String,
    awards: AwardRows,
}

/// Posts `cmds` inside `tx`. Each sale's budget draws are added to its `taken`. `Err`
/// is a failure of the database: the transaction is unusable and nothing of it counts.
pub(super) async fn post_sales(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    budgets: &Budgets,
    taken: &mut [Taken],
) -> Result<Vec<SaleOutcome>, StoreError> {
    let mut outcomes: Vec<Option<SaleOutcome>> = cmds.iter().map(|_| None).collect();
    let mut waiting: Vec<usize> = (0..cmds.len()).collect();
    // Written sales that may convert their buyer's referral: (sale, buyer, referrer).
    let mut referrals: Vec<(usize, MemberId, MemberId)> = Vec::new();
    // Written sales that count toward challenges: (sale, buyer).
    let mut stepped: Vec<(usize, MemberId)> = Vec::new();
    while !waiting.is_empty() {
        let mut found = read_round(tx, cmds, &waiting).await?;
        if waiting
            .iter()
            .any(|i| cmds[*i].program.tiers.scope == TierScope::Household)
        {
            find_households(tx, &mut found).await?;
        }
        let found = found;
        // Every shared wallet and household the waiting sales use, locked at once after
        // their members (`lock_wallets`): none is taken one by one while others are held.
        let wallets: BTreeSet<&str> = found
            .iter()
            .flat_map(|(i, f)| cmds[*i].wallet_in_play(&f.state).into_iter().chain(&f.household))
            .map(WalletId::as_str)
            .collect();
        lock_wallets(tx, wallets).await?;
        let mut seen = HashSet::new();
        let mut later = Vec::new();
        let mut round = Vec::new();
        let mut wallets_seen = HashSet::new();
        for i in waiting {
            match found.get(&i) {
                // A second sale of a member, or of a shared wallet (each is decided on
                // what the one before wrote), waits for the next round.
                Some(f) if seen.contains(&f.state.member_id) => later.push(i),
                // Held back, the member's later sales wait too: a member's sales are decided in
                // the order they arrived.
                Some(f)
                    if cmds[i]
                        .wallet_in_play(&f.state)
                        .is_some_and(|w| wallets_seen.contains(w))
                        || f.household.as_ref().is_some_and(|h| wallets_seen.contains(h)) =>
                {
                    seen.insert(f.state.member_id.clone());
                    later.push(i);
                }
                Some(f) => {
                    seen.insert(f.state.member_id.clone());
                    wallets_seen.extend(cmds[i].wallet_in_play(&f.state).cloned());
                    wallets_seen.extend(f.household.clone());
                    round.push(i);
                }
                None => {
                    // No such member: a receipt is still answered as stored.
                    outcomes[i] = Some(
                        match replay(stored_receipt(tx, cmds[i]).await?, &cmds[i].request_hash, None) {
                            Ok(Some(posted)) => SaleOutcome::Posted(posted),
                            Ok(None) => SaleOutcome::Refused(StoreError::NotFound(Entity::Member)),
                            Err(e) => SaleOutcome::Refused(e.into()),
                        },
                    );
                }
            }
        }
        let mut found = found;
        let lots_for: Vec<usize> = round
            .iter()
            .copied()
            .filter(|i| {
                let f = &found[i];
                f.stored.is_none() && needs_lots(cmds[*i].redeem_points, f.state.next_due_at, cmds[*i].now)
            })
            .collect();
        if !lots_for.is_empty() {
            let ids: Vec<String> = lots_for.iter().map(|i| found[i].state.member_id.to_string()).collect();
            let mut lots = open_lots(tx, &ids).await?;
            for i in &lots_for {
                let f = found.get_mut(i).expect("read above");
                f.state.lots = lots.remove(f.state.member_id.as_str()).unwrap_or_default();
                f.state.lots_loaded = true;
            }
        }
        // The round's cap counters, locked in one statement: its members differ, and a
        // member's cap counters are only written by sales holding the member's row.
        let mut own_keys: HashMap<usize, Vec<String>> = round
            .iter()
            .filter(|i| found[i].stored.is_none())
            .map(|i| (*i, cap_keys(&cmds[*i].rules, &found[i].state.member_id)))
            .collect();
        let all: std::collections::BTreeSet<&String> = own_keys.values().flatten().collect();
        let all: Vec<String> = all.into_iter().cloned().collect();
        let mut caps = locked_counters(tx, &all).await?;
        let mut decided = Vec::new();
        for i in round {
            let f = found.remove(&i).expect("read above");
            let own: HashMap<String, i64> = own_keys
                .remove(&i)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|k| caps.remove_entry(&k))
                .collect();
            match decide_one(tx, cmds[i], f, own, budgets, &mut taken[i]).await {
                Ok(Step::Answered(posted)) => outcomes[i] = Some(SaleOutcome::Posted(posted)),
                Ok(Step::Write(d)) => decided.push(Decided { index: i, ..*d }),
                Err(e) if e.is_database() => return Err(e),
                Err(refused) => outcomes[i] = Some(SaleOutcome::Refused(refused)),
            }
        }
        let written = write_sales(tx, cmds, &decided).await?;
        write_sale_tier_changes(tx, cmds, &decided, &written).await?;
        write_wallet_rows(tx, cmds, &decided, &written).await?;
        for d in decided {
            if let Some(referrer) = &d.decision.referral
                && written.contains(cmds[d.index].transaction_id.as_str())
            {
                referrals.push((d.index, d.decision.member_id.clone(), referrer.clone()));
            }
            if !cmds[d.index].rules.steps.is_empty() && written.contains(cmds[d.index].transaction_id.as_str()) {
                stepped.push((d.index, d.decision.member_id.clone()));
            }
            outcomes[d.index] = Some(match written.contains(cmds[d.index].transaction_id.as_str()) {
                true => SaleOutcome::Posted(Posted {
                    receipt_json: d.receipt,
                    replayed: false,
                    follow_up: None,
                    completed: Vec::new(),
                }),
                false => SaleOutcome::Replay,
            });
        }
        waiting = later;
    }
    // Challenge steps, all the group's at once, a member's in the order her sales arrived
    // (her row is locked).
    if !stepped.is_empty() {
        let sales: Vec<_> = stepped
            .iter()
            .map(|(i, member)| {
                let cmd = cmds[*i];
                (
                    *i,
                    member,
                    cmd.transaction_id.as_str(),
                    cmd.rules.steps.as_slice(),
                    cmd.now,
                )
            })
            .collect();
        for (i, completed) in count_group_steps(tx, &sales).await? {
            if let Some(SaleOutcome::Posted(p)) = &mut outcomes[i] {
                p.completed = completed;
            }
        }
    }
    decide_referrals(tx, cmds, referrals, &mut outcomes).await?;
    Ok(outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(SaleOutcome::Refused(StoreError::stopped(
                "a sale of the group was not decided",
            )))
        })
        .collect())
}

/// Decides the referrals the group's sales may convert, after every round (no member
/// row is locked after a referrer's advisory lock, and a referral names its referrer
/// without a foreign key, so deciding one takes no lock on the referrer's row), in the
/// order the sales arrived: a member's first qualifying sale decides, later ones find
/// it decided.
async fn decide_referrals(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    mut referrals: Vec<(usize, MemberId, MemberId)>,
    outcomes: &mut [Option<SaleOutcome>],
) -> Result<(), StoreError> {
    if referrals.is_empty() {
        return Ok(());
    }
    referrals.sort_by_key(|(i, _, _)| *i);
    lock_referrers(tx, referrals.iter().map(|(_, _, r)| r.as_str()).collect()).await?;
    for (i, member, referrer) in referrals {
        let converted = decide_referral(tx, cmds[i], &member, &referrer).await?;
        if let Some(SaleOutcome::Posted(p)) = &mut outcomes[i] {
            p.follow_up = converted;
        }
    }
    Ok(())
}

/// What the round's written sales did to shared wallets (their plans) and, under a
/// ladder per household, to households' standing: rare, a statement each. A sale whose
/// transaction row was not written writes neither.
async fn write_wallet_rows(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    decided: &[Decided],
    written: &HashSet<String>,
) -> Result<(), StoreError> {
    for d in decided {
        let cmd = cmds[d.index];
        if !written.contains(cmd.transaction_id.as_str()) {
            continue;
        }
        if let Some(w) = &d.decision.wallet {
            let holder = Holder::Wallet {
                id: &w.wallet_id,
                actor: Some(&d.decision.member_id),
            };
            write_holder_plan(tx, holder, &w.plan, cmd.now).await?;
        }
        // The household's changes went with the others (`write_sale_tier_changes`).
        if let Some((w, standing)) = &d.decision.household_tier {
            let holder = Holder::Wallet { id: w, actor: None };
            write_tier(tx, holder, standing, &cmd.program.tiers, &[], None).await?;
        }
    }
    Ok(())
}

/// A sale's member, locked, and the answer stored under its receipt id, if any.
struct Found {
    state: MemberState,
    stored: Option<StoredAnswer>,
    /// With a ladder per household: the member's household, whose standing the sale
    /// counts in (a round holds one sale per household).
    household: Option<WalletId>,
}

/// The households of the round's members, in one statement.
async fn find_households(tx: &mut PgConnection, found: &mut HashMap<usize, Found>) -> Result<(), StoreError> {
    let ids: Vec<String> = found.values().map(|f| f.state.member_id.to_string()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT member_id, wallet_id FROM wallet_members
         WHERE member_id = ANY($1) AND kind = 'household' AND left_at IS NULL",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let of: HashMap<String, String> = rows.into_iter().collect();
    for f in found.values_mut() {
        f.household = of.get(f.state.member_id.as_str()).cloned().map(WalletId::from_stored);
    }
    Ok(())
}

/// Locks the members of the sales `which` (in id order, as every writer does) and
/// probes their receipt ids, in one statement. Sales whose member is not found are
/// missing from the answer.
async fn read_round(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    which: &[usize],
) -> Result<HashMap<usize, Found>, StoreError> {
    let (mut ids, mut kinds, mut values, mut partners, mut externals, mut index) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for &i in which {
        let cmd = cmds[i];
        match &cmd.member {
            MemberRef::Id(id) => {
                ids.push(Some(id.to_string()));
                kinds.push(None);
                values.push(None);
            }
            MemberRef::Identity(identity) => {
                ids.push(None);
                kinds.push(Some(identity.kind.as_str().to_string()));
                values.push(Some(identity.value.clone()));
            }
        }
        partners.push(cmd.partner.id.to_string());
        externals.push(cmd.external_id.clone());
        index.push(i as i64);
    }
    let rows = sqlx::query(
        "WITH u AS (
             SELECT n, p, x, COALESCE(mid,
                 (SELECT i.member_id FROM identities i WHERE i.kind = u0.kind AND i.value = u0.val)) AS id
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
                 AS u0(mid, kind, val, p, x, n)
         )
         SELECT u.n, m.id, m.available, m.pending, m.lifetime_earned, m.next_due_at, t.request_hash, t.receipt,
             m.tier, m.tier_earned, m.tier_qualifying, m.tier_period_start, m.tier_previous_qualifying,
             m.tier_review_pending, m.tier_reached_at, m.tier_manual_until, m.created_at, m.plan, m.wallet_default,
             m.referred_by
         FROM u JOIN members m ON m.id = u.id
         LEFT JOIN transactions t ON t.partner_id = u.p AND t.external_id = u.x
         WHERE m.id = ANY(ARRAY(SELECT id FROM u))
         ORDER BY m.id
         FOR UPDATE OF m",
    )
    .bind(ids)
    .bind(kinds)
    .bind(values)
    .bind(partners)
    .bind(externals)
    .bind(index)
    .fetch_all(&mut *tx)
    .await?;
    let mut found = HashMap::with_capacity(rows.len());
    for r in rows {
        let stored = match r.try_get::<Option<String>, _>(6)? {
            Some(hash) => Some(stored_answer((hash, r.try_get(7)?))),
            None => None,
        };
        let state = MemberState {
            member_id: MemberId::from_stored(r.try_get(1)?),
            balance: Balance {
                available: r.try_get(2)?,
                pending: r.try_get(3)?,
                lifetime_earned: r.try_get(4)?,
            },
            lots: Vec::new(),
            lots_loaded: false,
            next_due_at: r.try_get::<Option<i64>, _>(5)?.map(from_micros),
            tier: tier_from_row(&r, 8)?,
            plan: r.try_get(17)?,
            wallet: None,
            default_wallet: r.try_get::<Option<String>, _>(18)?.map(WalletId::from_stored),
            referred_by: r.try_get::<Option<String>, _>(19)?.map(MemberId::from_stored),
            joined_at: from_micros(r.try_get(16)?),
        };
        found.insert(
            r.try_get::<i64, _>(0)? as usize,
            Found {
                state,
                stored,
                household: None,
            },
        );
    }
    Ok(found)
}

/// Every open lot of the members `ids`, by member.
async fn open_lots(tx: &mut PgConnection, ids: &[String]) -> Result<HashMap<String, Vec<Lot>>, StoreError> {
    let rows = sqlx::query(
        "SELECT member_id, id, remaining, earned_at, expires_at, matures_at, transaction_id, origin
         FROM lots WHERE member_id = ANY($1) AND remaining > 0",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut lots: HashMap<String, Vec<Lot>> = HashMap::new();
    for r in rows {
        lots.entry(r.try_get(0)?).or_default().push(lot_from(&r, 1)?);
    }
    Ok(lots)
}

enum Step {
    Answered(Posted),
    Write(Box<Decided>),
}

/// Reads the rest of a sale's facts (its location and visits, when it has them; its cap
/// counters come locked in `caps`), draws its budgets, and decides it.
async fn decide_one(
    tx: &mut PgConnection,
    cmd: &PurchaseCmd,
    found: Found,
    caps: HashMap<String, i64>,
    budgets: &Budgets,
    taken: &mut Taken,
) -> Result<Step, StoreError> {
    if let Some(posted) = replay(found.stored, &cmd.request_hash, None)? {
        return Ok(Step::Answered(posted));
    }
    let state = found.state;
    let owner = match &cmd.location_id {
        Some(id) => location_owner(tx, id).await?,
        None => None,
    };
    let visits = match cmd.rules.reads_visits() {
        true => Some(visits(tx, &state.member_id, &cmd.partner.id).await?),
        false => None,
    };
    // The shared wallet in play (its row locked with the round's others, after the
    // members); a round holds one sale per wallet.
    let wallet = match cmd.wallet_in_play(&state) {
        Some(w) => match wallet_link(tx, &state.member_id, w).await? {
            Some(link) => {
                let redeem = cmd.redeem_points;
                let want = |due| needs_lots(redeem, due, cmd.now);
                let wstate = load_wallet_state(tx, w, Some(&state.member_id), false, want).await?;
                Some((link, wstate))
            }
            None => None,
        },
        None => None,
    };
    // The household's standing, when the ladder counts per household (its row locked
    // with the round's wallets).
    let household = match found
        .household
        .filter(|_| cmd.program.tiers.scope == TierScope::Household)
    {
        Some(w) => {
            let standing = read_tier(tx, Holder::Wallet { id: &w, actor: None }, false).await?;
            Some((w, standing))
        }
        None => None,
    };
    let counters = draw_budgets(&cmd.rules, &state.member_id, caps, budgets, taken).await?;
    let facts = PurchaseFacts {
        state: &state,
        location_owner: owner.as_ref(),
        visits,
        counters: &counters,
        wallet: wallet.as_ref().map(|(link, state)| WalletFacts { link, state }),
        household_tier: household.as_ref().map(|(w, t)| (w, t)),
    };
    let decision = match decide_purchase(cmd, facts, ReceiptStatus::Posted) {
        Ok(d) => d,
        Err(refusal) => {
            // A copy of this receipt may have committed while this one waited for the
            // member's lock (and spent the points this one would): its answer, not a
            // refusal. Checked on refusals only, so a sale pays nothing for it.
            if let Some(posted) = replay(stored_receipt(tx, cmd).await?, &cmd.request_hash, None)? {
                return Ok(Step::Answered(posted));
            }
            return Err(refusal.into());
        }
    };
    keep_drawn(budgets, taken, &decision.granted).await;
    // Everything is encoded before the first write: past it, only the database fails.
    let receipt = to_json(&decision.receipt)?;
    let awards = award_rows(&cmd.rules, &decision.granted)?;
    Ok(Step::Write(Box::new(Decided {
        index: 0,
        decision,
        receipt,
        awards,
    })))
}

/// The tier changes of the round's written sales (upgrades, reviews that fell due):
/// rare, so a statement of their own only when there are some.
async fn write_sale_tier_changes(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    decided: &[Decided],
    written: &HashSet<String>,
) -> Result<(), StoreError> {
    let (mut members, mut changes, mut sales) = (vec![], vec![], vec![]);
    for d in decided {
        let sale = cmds[d.index].transaction_id.as_str();
        if !written.contains(sale) {
            continue;
        }
        // A household's changes go to its history (a ladder per household).
        let holder = match &d.decision.household_tier {
            Some((w, _)) => w.as_str(),
            None => d.decision.member_id.as_str(),
        };
        for c in &d.decision.tier_changes {
            members.push(holder.to_string());
            changes.push(c.clone());
            sales.push(Some(sale.to_string()));
        }
    }
    write_changes(tx, &members, &changes, &sales).await
}

/// The columns of a group's writes, one array per column in the order of the
/// statement's parameters; each row carries the id of its sale, so a sale whose
/// transaction row was not written (its receipt id was taken meanwhile) writes nothing
/// else.
#[derive(Default)]
struct Columns {
    t_id: Vec<String>,
    t_partner: Vec<String>,
    t_external: Vec<String>,
    t_member: Vec<String>,
    t_location: Vec<Option<String>>,
    t_occurred: Vec<i64>,
    t_recorded: Vec<i64>,
    t_amount: Vec<i64>,
    t_currency: Vec<String>,
    t_earned: Vec<i64>,
    t_operator: Vec<i64>,
    t_redeemed: Vec<i64>,
    t_lines: Vec<String>,
    t_hash: Vec<String>,
    t_receipt: Vec<String>,
    e_sale: Vec<String>,
    e_account: Vec<String>,
    e_member: Vec<Option<String>>,
    e_partner: Vec<Option<String>>,
    e_points: Vec<i64>,
    e_code: Vec<String>,
    e_transaction: Vec<Option<String>>,
    e_return: Vec<Option<String>>,
    e_at: Vec<i64>,
    lu_sale: Vec<String>,
    lu_id: Vec<i64>,
    lu_remaining: Vec<i64>,
    lu_matures: Vec<Option<i64>>,
    nl_sale: Vec<String>,
    nl_member: Vec<String>,
    nl_remaining: Vec<i64>,
    nl_earned: Vec<i64>,
    nl_expires: Vec<i64>,
    nl_matures: Vec<Option<i64>>,
    nl_transaction: Vec<Option<String>>,
    nl_origin: Vec<String>,
    ac_sale: Vec<String>,
    ac_member: Vec<String>,
    ac_kind: Vec<String>,
    ac_points: Vec<i64>,
    ac_at: Vec<i64>,
    ac_partner: Vec<Option<String>>,
    ac_transaction: Vec<Option<String>>,
    ac_description: Vec<String>,
    mb_sale: Vec<String>,
    mb_member: Vec<String>,
    mb_available: Vec<i64>,
    mb_pending: Vec<i64>,
    mb_lifetime: Vec<i64>,
    mb_due: Vec<Option<i64>>,
    mb_tier: TierColumns,
    t_qualifying: Vec<i64>,
    t_wallet: Vec<Option<String>>,
    t_route: Vec<Option<i16>>,
    t_household: Vec<Option<String>>,
    aw_sale: Vec<String>,
    aw_rule: Vec<String>,
    aw_version: Vec<i64>,
    aw_points: Vec<i64>,
    aw_keys: Vec<String>,
    ct_sale: Vec<String>,
    ct_key: Vec<String>,
    ct_delta: Vec<i64>,
    mp_sale: Vec<String>,
    mp_member: Vec<String>,
    mp_partner: Vec<String>,
    mp_at: Vec<i64>,
}

impl Columns {
    fn add(&mut self, cmd: &PurchaseCmd, d: &Decided) {
        let sale = cmd.transaction_id.to_string();
        let member = d.decision.member_id.to_string();
        let plan = &d.decision.plan;
        self.t_id.push(sale.clone());
        self.t_partner.push(cmd.partner.id.to_string());
        self.t_external.push(cmd.external_id.clone());
        self.t_member.push(member.clone());
        self.t_location.push(cmd.location_id.as_ref().map(|l| l.to_string()));
        self.t_occurred.push(to_micros(cmd.occurred_at));
        self.t_recorded.push(to_micros(cmd.now));
        self.t_amount.push(cmd.total.amount);
        self.t_currency.push(cmd.total.currency.code().to_string());
        self.t_earned.push(d.decision.points_earned());
        self.t_operator.push(d.decision.points_operator());
        self.t_redeemed.push(cmd.redeem_points);
        self.t_lines.push(cmd.lines_json.clone());
        self.t_hash.push(cmd.request_hash.clone());
        self.t_receipt.push(d.receipt.clone());
        for t in &plan.transfers {
            for (account, points) in [(&t.from, -t.points), (&t.to, t.points)] {
                self.e_sale.push(sale.clone());
                self.e_account.push(account.key());
                self.e_member.push(account.member().map(str::to_string));
                self.e_partner.push(account.partner().map(str::to_string));
                self.e_points.push(points);
                self.e_code.push(t.code.as_str().to_string());
                self.e_transaction.push(t.transaction_id.clone());
                self.e_return.push(t.return_id.clone());
                self.e_at.push(to_micros(cmd.now));
            }
        }
        for u in &plan.lot_updates {
            self.lu_sale.push(sale.clone());
            self.lu_id.push(u.id);
            self.lu_remaining.push(u.remaining);
            self.lu_matures.push(u.matures_at.map(to_micros));
        }
        for l in &plan.new_lots {
            self.nl_sale.push(sale.clone());
            self.nl_member.push(member.clone());
            self.nl_remaining.push(l.remaining);
            self.nl_earned.push(to_micros(l.earned_at));
            self.nl_expires.push(to_micros(l.expires_at));
            self.nl_matures.push(l.matures_at.map(to_micros));
            self.nl_transaction.push(l.transaction_id.clone());
            self.nl_origin.push(l.origin.as_str().to_string());
        }
        for a in &plan.activity {
            self.ac_sale.push(sale.clone());
            self.ac_member.push(member.clone());
            self.ac_kind.push(a.kind.as_str().to_string());
            self.ac_points.push(a.points);
            self.ac_at.push(to_micros(a.at));
            self.ac_partner.push(a.partner_id.clone());
            self.ac_transaction.push(a.transaction_id.clone());
            self.ac_description.push(a.description.clone());
        }
        let b = plan.balance_after;
        self.mb_sale.push(sale.clone());
        self.mb_member.push(member.clone());
        self.mb_available.push(b.available);
        self.mb_pending.push(b.pending);
        self.mb_lifetime.push(b.lifetime_earned);
        self.mb_due.push(plan.next_due_at.map(to_micros));
        self.mb_tier.push(&d.decision.tier, &cmd.program.tiers);
        self.t_qualifying.push(d.decision.tier_qualifying);
        let wallet = d.decision.wallet.as_ref();
        self.t_wallet.push(wallet.map(|w| w.wallet_id.to_string()));
        self.t_route.push(wallet.map(|w| route_code(w.route) as i16));
        self.t_household
            .push(d.decision.household_tier.as_ref().map(|(w, _)| w.to_string()));
        let rows = &d.awards;
        for k in 0..rows.rules.len() {
            self.aw_sale.push(sale.clone());
            self.aw_rule.push(rows.rules[k].clone());
            self.aw_version.push(rows.versions[k]);
            self.aw_points.push(rows.points[k]);
            self.aw_keys.push(rows.keys[k].clone());
        }
        for (key, delta) in rows.counter_keys.iter().zip(&rows.deltas) {
            self.ct_sale.push(sale.clone());
            self.ct_key.push(key.clone());
            self.ct_delta.push(*delta);
        }
        self.mp_sale.push(sale);
        self.mp_member.push(member);
        self.mp_partner.push(cmd.partner.id.to_string());
        self.mp_at.push(to_micros(cmd.occurred_at));
    }
}

/// Writes the decided sales of a round in one statement; answers the ids of the sales
/// whose transaction row was written.
async fn write_sales(
    tx: &mut PgConnection,
    cmds: &[&PurchaseCmd],
    decided: &[Decided],
) -> Result<HashSet<String>, StoreError> {
    if decided.is_empty() {
        return Ok(HashSet::new());
    }
    let mut c = Columns::default();
    for d in decided {
        c.add(cmds[d.index], d);
    }
    let written: Vec<String> = sqlx::query_scalar(
        "WITH t AS (
             INSERT INTO transactions (id, partner_id, external_id, member_id, location_id, occurred_at, recorded_at,
                 total_amount, total_currency, points_earned, points_redeemed, lines, request_hash, receipt, tier_qualifying,
                 wallet_id, wallet_route, tier_household, points_operator)
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bigint[],
                 $8::bigint[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::text[], $71::bigint[],
                 $72::text[], $73::smallint[], $74::text[], $75::bigint[])
             ON CONFLICT (partner_id, external_id) DO NOTHING RETURNING id
         ), e AS (
             INSERT INTO entries (account, member_id, partner_id, amount, code, transaction_id, return_id, recorded_at)
             SELECT a, m, p, n, c, tx, r, at
             FROM UNNEST($15::text[], $16::text[], $17::text[], $18::text[], $19::bigint[], $20::text[], $21::text[],
                 $22::text[], $23::bigint[]) AS u(s, a, m, p, n, c, tx, r, at)
             WHERE u.s IN (SELECT id FROM t)
         ), lu AS (
             UPDATE lots SET remaining = u.r, matures_at = u.m
             FROM UNNEST($24::text[], $25::bigint[], $26::bigint[], $27::bigint[]) AS u(s, i, r, m)
             WHERE lots.id = u.i AND u.s IN (SELECT id FROM t)
         ), nl AS (
             INSERT INTO lots (member_id, remaining, earned_at, expires_at, matures_at, transaction_id, origin)
             SELECT m, r, e, x, mt, tx, o
             FROM UNNEST($28::text[], $29::text[], $30::bigint[], $31::bigint[], $32::bigint[], $33::bigint[],
                 $34::text[], $35::text[]) AS u(s, m, r, e, x, mt, tx, o)
             WHERE u.s IN (SELECT id FROM t)
         ), ac AS (
             INSERT INTO activity (member_id, kind, points, occurred_at, partner_id, transaction_id, description)
             SELECT m, k, n, o, p, tx, d
             FROM UNNEST($36::text[], $37::text[], $38::text[], $39::bigint[], $40::bigint[], $41::text[], $42::text[],
                 $43::text[]) AS u(s, m, k, n, o, p, tx, d)
             WHERE u.s IN (SELECT id FROM t)
         ), mb AS (
             UPDATE members SET available = u.a, pending = u.p, lifetime_earned = u.l, next_due_at = u.d,
                 tier = u.te, tier_earned = u.tc, tier_qualifying = u.tq, tier_period_start = u.tp,
                 tier_previous_qualifying = u.tv, tier_review_pending = u.tr, tier_reached_at = u.th,
                 tier_manual_until = u.tm, tier_review_at = u.tw
             FROM UNNEST($44::text[], $45::text[], $46::bigint[], $47::bigint[], $48::bigint[], $49::bigint[],
                 $62::text[], $63::text[], $64::bigint[], $65::bigint[], $66::bigint[], $67::boolean[], $68::bigint[],
                 $69::bigint[], $70::bigint[])
                 AS u(s, m, a, p, l, d, te, tc, tq, tp, tv, tr, th, tm, tw)
             WHERE members.id = u.m AND u.s IN (SELECT id FROM t)
         ), aw AS (
             INSERT INTO rule_awards (transaction_id, rule_id, rule_version, points, counter_keys)
             SELECT s, r, v, p, k FROM UNNEST($50::text[], $51::text[], $52::bigint[], $53::bigint[], $54::text[])
                 AS u(s, r, v, p, k)
             WHERE u.s IN (SELECT id FROM t)
         ), ct AS (
             INSERT INTO rule_counters (key, used)
             SELECT k, SUM(n)::bigint FROM UNNEST($55::text[], $56::text[], $57::bigint[]) AS u(s, k, n)
             WHERE u.s IN (SELECT id FROM t) GROUP BY k
             ON CONFLICT (key) DO UPDATE SET used = rule_counters.used + EXCLUDED.used
         ), mp AS (
             INSERT INTO member_partners (member_id, partner_id, visits, first_at, last_at)
             SELECT m, p, COUNT(*), MIN(at), MAX(at) FROM UNNEST($58::text[], $59::text[], $60::text[], $61::bigint[])
                 AS u(s, m, p, at)
             WHERE u.s IN (SELECT id FROM t) GROUP BY m, p
             ON CONFLICT (member_id, partner_id) DO UPDATE
             SET visits = member_partners.visits + EXCLUDED.visits,
                 last_at = GREATEST(member_partners.last_at, EXCLUDED.last_at)
         )
         SELECT id FROM t",
    )
    .bind(c.t_id)
    .bind(c.t_partner)
    .bind(c.t_external)
    .bind(c.t_member)
    .bind(c.t_location)
    .bind(c.t_occurred)
    .bind(c.t_recorded)
    .bind(c.t_amount)
    .bind(c.t_currency)
    .bind(c.t_earned)
    .bind(c.t_redeemed)
    .bind(c.t_lines)
    .bind(c.t_hash)
    .bind(c.t_receipt)
    .bind(c.e_sale)
    .bind(c.e_account)
    .bind(c.e_member)
    .bind(c.e_partner)
    .bind(c.e_points)
    .bind(c.e_code)
    .bind(c.e_transaction)
    .bind(c.e_return)
    .bind(c.e_at)
    .bind(c.lu_sale)
    .bind(c.lu_id)
    .bind(c.lu_remaining)
    .bind(c.lu_matures)
    .bind(c.nl_sale)
    .bind(c.nl_member)
    .bind(c.nl_remaining)
    .bind(c.nl_earned)
    .bind(c.nl_expires)
    .bind(c.nl_matures)
    .bind(c.nl_transaction)
    .bind(c.nl_origin)
    .bind(c.ac_sale)
    .bind(c.ac_member)
    .bind(c.ac_kind)
    .bind(c.ac_points)
    .bind(c.ac_at)
    .bind(c.ac_partner)
    .bind(c.ac_transaction)
    .bind(c.ac_description)
    .bind(c.mb_sale)
    .bind(c.mb_member)
    .bind(c.mb_available)
    .bind(c.mb_pending)
    .bind(c.mb_lifetime)
    .bind(c.mb_due)
    .bind(c.aw_sale)
    .bind(c.aw_rule)
    .bind(c.aw_version)
    .bind(c.aw_points)
    .bind(c.aw_keys)
    .bind(c.ct_sale)
    .bind(c.ct_key)
    .bind(c.ct_delta)
    .bind(c.mp_sale)
    .bind(c.mp_member)
    .bind(c.mp_partner)
    .bind(c.mp_at)
    .bind(c.mb_tier.effective)
    .bind(c.mb_tier.earned)
    .bind(c.mb_tier.qualifying)
    .bind(c.mb_tier.period_start)
    .bind(c.mb_tier.previous)
    .bind(c.mb_tier.pending)
    .bind(c.mb_tier.reached)
    .bind(c.mb_tier.manual_until)
    .bind(c.mb_tier.review_at)
    .bind(c.t_qualifying)
    .bind(c.t_wallet)
    .bind(c.t_route)
    .bind(c.t_household)
    .bind(c.t_operator)
    .fetch_all(&mut *tx)
    .await?;
    Ok(written.into_iter().collect())
}
