//! Tally's storage: one [`Store`] with a SQLite and a PostgreSQL implementation.
//!
//! Both backends take the same commands and give the same answers; the shared contract
//! suite in `tests/` runs every storage test against both. The decisions live in
//! `tally_domain::decide`: a backend reads the facts a command needs, calls the
//! decision, and writes what it says in one database transaction.
//!
//! - SQLite: one writer thread groups many requests into one transaction and one fsync
//!   (group commit, WAL with `synchronous=FULL`); reads use a pool of read connections.
//! - PostgreSQL: short transactions that lock the member's row (`FOR UPDATE`).

pub mod baseline;
pub mod challenges;
mod changes;
pub mod codec;
mod error;
mod exchange;
pub mod keys;
mod migrations;
pub mod model;
mod postgres;
pub mod referrals;
mod rewards;
pub mod settlement;
mod sqlite;
pub mod testing;
mod transfers;
pub mod web;

pub use changes::Change;
pub use error::{DatabaseError, Entity, Fault, StoreError};
pub use model::*;

use jiff::Timestamp;
use tally_domain::earning::FxRates;
use tally_domain::identity::Identity;
use tally_domain::ids::{MemberId, PartnerId, RuleId, TransactionId};

/// The store behind the API: SQLite or PostgreSQL, chosen by the database URL.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $body:expr) => {
        match $self {
            Store::Sqlite($s) => $body,
            Store::Postgres($s) => $body,
        }
    };
}

impl Store {
    /// Opens (creating if needed) the database at `url` and applies pending migrations.
    /// `sqlite://path` (or a plain path) selects SQLite; `postgres://…` PostgreSQL.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(postgres::PgStore::connect(url, None).await?))
        } else {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            Ok(Store::Sqlite(sqlite::SqliteStore::open(path).await?))
        }
    }

    /// PostgreSQL inside one schema (created if missing): lets tests share a database.
    pub async fn connect_postgres_schema(url: &str, schema: &str) -> Result<Store, StoreError> {
        Ok(Store::Postgres(postgres::PgStore::connect(url, Some(schema)).await?))
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    pub async fn program(&self) -> Result<ProgramRow, StoreError> {
        dispatch!(self, s => s.program().await)
    }

    pub async fn update_program(&self, update: ProgramUpdate) -> Result<ProgramRow, StoreError> {
        dispatch!(self, s => s.update_program(update).await)
    }

    /// The hash of the operator key chosen at first start, if any.
    pub async fn admin_key_hash(&self) -> Result<Option<String>, StoreError> {
        dispatch!(self, s => s.admin_key_hash().await)
    }

    pub async fn set_admin_key_hash(&self, hash: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.set_admin_key_hash(hash.to_string()).await)
    }

    pub async fn fx_rates(&self) -> Result<FxRates, StoreError> {
        dispatch!(self, s => s.fx_rates().await)
    }

    /// Saves rates (each replaces the previous rate of its currency).
    pub async fn put_fx_rates(&self, rates: FxRates, now: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, s => s.put_fx_rates(rates, now).await)
    }

    pub async fn create_partner(&self, partner: PartnerRow) -> Result<PartnerRow, StoreError> {
        dispatch!(self, s => s.create_partner(partner).await)
    }

    pub async fn partners(&self) -> Result<Vec<PartnerRow>, StoreError> {
        dispatch!(self, s => s.partners().await)
    }

    pub async fn partner(&self, id: &PartnerId) -> Result<Option<PartnerRow>, StoreError> {
        dispatch!(self, s => s.partner(id.clone()).await)
    }

    pub async fn create_location(&self, location: LocationRow) -> Result<LocationRow, StoreError> {
        dispatch!(self, s => s.create_location(location).await)
    }

    pub async fn locations(&self, partner_id: &PartnerId) -> Result<Vec<LocationRow>, StoreError> {
        dispatch!(self, s => s.locations(partner_id.clone()).await)
    }

    /// Saves a partner API key by its hash; the key itself is never stored.
    pub async fn create_api_key(&self, key: ApiKeyRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_api_key(key).await)
    }

    /// The partner owning the key with this hash.
    pub async fn api_key_partner(&self, key_hash: &str) -> Result<Option<PartnerId>, StoreError> {
        dispatch!(self, s => s.api_key_partner(key_hash.to_string()).await)
    }

    /// Follows changes made through any server on this database (PostgreSQL); `None`
    /// on SQLite, whose database belongs to one server.
    pub async fn follow_changes(&self) -> Result<Option<tokio::sync::mpsc::Receiver<Change>>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.follow_changes().await.map(Some),
        }
    }

    /// A partner's API keys, revoked ones included (never a key or its hash).
    pub async fn api_keys(&self, partner_id: &PartnerId) -> Result<Vec<ApiKeyInfo>, StoreError> {
        dispatch!(self, s => s.api_keys(partner_id.clone()).await)
    }

    /// Revokes a partner's key at `now`, and gives its hash (to drop it from caches).
    /// `NotFound(ApiKey)` when the partner has no key with this id.
    pub async fn revoke_api_key(
        &self,
        partner_id: &PartnerId,
        key_id: &str,
        now: Timestamp,
    ) -> Result<(ApiKeyInfo, String), StoreError> {
        dispatch!(self, s => s.revoke_api_key(partner_id.clone(), key_id.to_string(), now).await)
    }

    /// Records that a member shares (or no longer shares) their personal data with a
    /// partner; a grant answers the consent as it stands.
    pub async fn set_consent(
        &self,
        member_id: &MemberId,
        partner_id: &PartnerId,
        granted: bool,
        now: Timestamp,
    ) -> Result<Option<ConsentRow>, StoreError> {
        dispatch!(self, s => s.set_consent(member_id.clone(), partner_id.clone(), granted, now).await)
    }

    /// The partners a member shares their personal data with now.
    pub async fn consents(&self, member_id: &MemberId) -> Result<Vec<ConsentRow>, StoreError> {
        dispatch!(self, s => s.consents(member_id.clone()).await)
    }

    pub async fn create_member(&self, member: NewMember) -> Result<MemberRow, StoreError> {
        dispatch!(self, s => s.create_member(member).await)
    }

    /// Saves a checked challenge; false when its code is taken.
    pub async fn create_challenge(
        &self,
        row: challenges::ChallengeRow,
        code: String,
        measure: tally_domain::challenges::Measure,
        target: i64,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.create_challenge(row, code, measure, target).await)
    }

    /// Every challenge, oldest first.
    pub async fn challenges(&self) -> Result<Vec<challenges::ChallengeRow>, StoreError> {
        dispatch!(self, s => s.challenges().await)
    }

    /// `member` takes part in `challenge` from `now` (nothing if she already does).
    pub async fn join_challenge(
        &self,
        member: &MemberId,
        challenge: &tally_domain::ids::ChallengeId,
        now: Timestamp,
    ) -> Result<tally_domain::challenges::Standing, StoreError> {
        dispatch!(self, s => s.join_challenge(member.clone(), challenge.clone(), now).await)
    }

    /// The challenges a member takes or took part in, with her progress.
    pub async fn member_challenges(
        &self,
        member: &MemberId,
    ) -> Result<Vec<challenges::MemberChallengeRow>, StoreError> {
        dispatch!(self, s => s.member_challenges(member.clone()).await)
    }

    /// A member's badges, oldest first.
    pub async fn badges(&self, member: &MemberId) -> Result<Vec<challenges::BadgeRow>, StoreError> {
        dispatch!(self, s => s.badges(member.clone()).await)
    }

    /// Completed challenges whose `challenge_completed` is still to be posted.
    pub async fn unrewarded_challenges(&self, limit: u32) -> Result<Vec<challenges::Unrewarded>, StoreError> {
        dispatch!(self, s => s.unrewarded_challenges(limit).await)
    }

    /// Records that `challenge_completed` was posted to `member` for `challenge`.
    pub async fn mark_challenge_rewarded(
        &self,
        challenge: &tally_domain::ids::ChallengeId,
        member: &MemberId,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.mark_challenge_rewarded(challenge.clone(), member.clone()).await)
    }

    /// The referral of `member`, once her first qualifying purchase decided it.
    pub async fn referral(&self, member: &MemberId) -> Result<Option<referrals::ReferralRecord>, StoreError> {
        dispatch!(self, s => s.referral(member.clone()).await)
    }

    /// Gives the points of a converted referral: posts `cmds` (`referral_converted`,
    /// one per member) if it is still converted and not yet rewarded, with the
    /// referral marked rewarded in the same transaction. Answers whether it did.
    pub async fn reward_referral(&self, member: &MemberId, cmds: Vec<EventCmd>) -> Result<bool, StoreError> {
        dispatch!(self, s => s.reward_referral(member.clone(), cmds).await)
    }

    /// Takes back the points of a reversed referral from both members, once.
    pub async fn take_back_referral(&self, member: &MemberId, now: Timestamp) -> Result<bool, StoreError> {
        dispatch!(self, s => s.take_back_referral(member.clone(), now).await)
    }

    /// Referrals whose points still have to be given or taken back (the referred
    /// members), at most `limit`.
    pub async fn unfinished_referrals(&self, limit: u32) -> Result<Vec<MemberId>, StoreError> {
        dispatch!(self, s => s.unfinished_referrals(limit).await)
    }

    /// A referrer's referrals: counts, points, and the members she invited, newest
    /// first, after member `after`.
    pub async fn member_referrals(
        &self,
        referrer: &MemberId,
        limit: u32,
        after: Option<MemberId>,
    ) -> Result<referrals::MemberReferrals, StoreError> {
        dispatch!(self, s => s.member_referrals(referrer.clone(), limit, after).await)
    }

    /// The member whose referral code this is.
    pub async fn member_by_referral_code(&self, code: String) -> Result<Option<MemberId>, StoreError> {
        dispatch!(self, s => s.member_by_referral_code(code).await)
    }

    pub async fn member(&self, id: &MemberId) -> Result<Option<MemberRow>, StoreError> {
        dispatch!(self, s => s.member(id.clone()).await)
    }

    pub async fn lookup_member(&self, identity: &Identity) -> Result<Option<MemberRow>, StoreError> {
        dispatch!(self, s => s.lookup_member(identity.clone()).await)
    }

    /// A member's history, newest first; with `partner_id`, only that partner's items.
    pub async fn activity(&self, query: ActivityQuery) -> Result<Vec<ActivityRow>, StoreError> {
        dispatch!(self, s => s.activity(query).await)
    }

    /// Posts a purchase, or returns the first answer for a receipt already posted.
    pub async fn post_purchase(&self, cmd: PurchaseCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.post_purchase(cmd).await)
    }

    /// Posts many purchases; each is answered on its own, in order.
    pub async fn post_purchases(&self, cmds: Vec<PurchaseCmd>) -> Vec<Result<Posted, StoreError>> {
        dispatch!(self, s => s.post_purchases(cmds).await)
    }

    /// A sale's decision without the write: what the member would earn and pay, with
    /// caps and budgets as they stand (nothing is locked).
    pub async fn quote_purchase(&self, cmd: PurchaseCmd) -> Result<tally_domain::receipt::PurchaseReceipt, StoreError> {
        dispatch!(self, s => s.quote_purchase(cmd).await)
    }

    pub async fn save_rule(
        &self,
        id: RuleId,
        partner_id: Option<PartnerId>,
        spec_json: String,
        now: Timestamp,
    ) -> Result<RuleRow, StoreError> {
        dispatch!(self, s => s.save_rule(id, partner_id, spec_json, now).await)
    }

    /// Every rule at its current version (active or paused).
    pub async fn rules(&self) -> Result<Vec<RuleRow>, StoreError> {
        dispatch!(self, s => s.rules().await)
    }

    pub async fn rule(&self, id: &RuleId) -> Result<Option<RuleRow>, StoreError> {
        dispatch!(self, s => s.rule(id.clone()).await)
    }

    /// Every saved version of a rule: (version, spec JSON, saved at), oldest first.
    pub async fn rule_versions(&self, id: &RuleId) -> Result<Vec<(i64, String, Timestamp)>, StoreError> {
        dispatch!(self, s => s.rule_versions(id.clone()).await)
    }

    pub async fn set_member_profile(&self, id: &MemberId, profile: MemberProfile) -> Result<MemberRow, StoreError> {
        dispatch!(self, s => s.set_member_profile(id.clone(), profile).await)
    }

    /// What rules may know of a member (with the visits at `partner_id`); none if unknown.
    /// With `household_tier` (a ladder per household), `tier` is their household's level.
    pub async fn member_facts(
        &self,
        member: MemberRef,
        partner_id: Option<PartnerId>,
        household_tier: bool,
    ) -> Result<Option<tally_domain::rules::MemberFacts>, StoreError> {
        dispatch!(self, s => s.member_facts(member, partner_id, household_tier).await)
    }

    /// How much of each cap or budget counter is used (a missing one is unused).
    pub async fn rule_counters(&self, keys: Vec<String>) -> Result<std::collections::HashMap<String, i64>, StoreError> {
        dispatch!(self, s => s.rule_counters(keys).await)
    }

    pub async fn event_types(&self) -> Result<Vec<(String, String)>, StoreError> {
        dispatch!(self, s => s.event_types().await)
    }

    /// Adds an event type; false if it exists already.
    pub async fn create_event_type(
        &self,
        name: String,
        description: String,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        dispatch!(self, s => s.create_event_type(name, description, now).await)
    }

    pub async fn post_event(&self, cmd: EventCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.post_event(cmd).await)
    }

    pub async fn events(
        &self,
        member_id: &MemberId,
        partner_id: Option<&PartnerId>,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        dispatch!(self, s => s.events(member_id.clone(), partner_id.cloned(), limit).await)
    }

    pub async fn post_return(&self, cmd: ReturnCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.post_return(cmd).await)
    }

    pub async fn transaction(&self, id: &TransactionId) -> Result<Option<TransactionRow>, StoreError> {
        dispatch!(self, s => s.transaction(id.clone()).await)
    }

    /// Settles (matures and expires) one member at `now`; returns the plan's balance.
    pub async fn settle_member(&self, member_id: &MemberId, now: Timestamp) -> Result<(), StoreError> {
        dispatch!(self, s => s.settle_member(member_id.clone(), now).await)
    }

    /// Settles (matures and expires) one shared wallet at `now`.
    pub async fn settle_wallet(
        &self,
        wallet_id: &tally_domain::ids::WalletId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.settle_wallet(wallet_id, now).await.map(|_| ()))
    }

    /// The expiry run: settles up to `limit` members that are due at `now`.
    /// Returns how many members were settled; call again while it returns `limit`.
    pub async fn settle_due(&self, now: Timestamp, limit: u32) -> Result<SettleReport, StoreError> {
        dispatch!(self, s => s.settle_due(now, limit).await)
    }

    /// The scheduled tier review: brings up to date up to `limit` members whose tier
    /// standing changes with time by `now` (a review fell due, a level set by hand
    /// ended). Returns how many; call again while it returns `limit`.
    pub async fn review_tiers(
        &self,
        ladder: std::sync::Arc<tally_domain::tiers::TierLadder>,
        now: Timestamp,
        limit: u32,
    ) -> Result<u64, StoreError> {
        dispatch!(self, s => s.review_tiers(ladder, now, limit).await)
    }

    /// Saves a new membership plan (`409 plan_exists` for a code in use).
    pub async fn create_plan(
        &self,
        plan: tally_domain::memberships::MembershipPlan,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_plan(plan, now).await)
    }

    /// Starts a membership of `plan_code` for a member with none that has not ended.
    pub async fn create_membership(
        &self,
        id: String,
        member_id: MemberId,
        plan_code: String,
        now: Timestamp,
    ) -> Result<MembershipRow, StoreError> {
        dispatch!(self, s => s.create_membership(id, member_id, plan_code, now).await)
    }

    pub async fn membership(&self, id: String) -> Result<Option<MembershipRow>, StoreError> {
        dispatch!(self, s => s.membership(id).await)
    }

    pub async fn member_memberships(&self, member_id: MemberId) -> Result<Vec<MembershipRow>, StoreError> {
        dispatch!(self, s => s.member_memberships(member_id).await)
    }

    /// Every membership with its payments, for the operator's report.
    pub async fn all_memberships(&self) -> Result<Vec<MembershipRow>, StoreError> {
        dispatch!(self, s => s.all_memberships().await)
    }

    /// Cancels a membership: it runs to the end of what is covered.
    pub async fn cancel_membership(&self, id: String, now: Timestamp) -> Result<MembershipRow, StoreError> {
        dispatch!(self, s => s.cancel_membership(id, now).await)
    }

    /// Records a payment (the same external id again replays the first answer) and posts
    /// the plan's bonus points for the period it pays.
    pub async fn post_membership_payment(&self, cmd: PaymentCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.post_membership_payment(cmd).await)
    }

    /// Opens a shared wallet (a household with its owner as first member, or a business).
    pub async fn create_wallet(&self, new: NewWallet) -> Result<WalletRow, StoreError> {
        dispatch!(self, s => s.create_wallet(new).await)
    }

    /// A shared wallet with its balances and members (those who left too).
    pub async fn wallet(&self, id: tally_domain::ids::WalletId) -> Result<Option<WalletRow>, StoreError> {
        dispatch!(self, s => s.wallet(id).await)
    }

    /// The open wallets a member belongs to now.
    pub async fn member_wallets(&self, member_id: MemberId) -> Result<Vec<WalletRow>, StoreError> {
        dispatch!(self, s => s.member_wallets(member_id).await)
    }

    /// Keeps the hash of a household's invitation code until `expires_at`.
    pub async fn create_wallet_invite(
        &self,
        wallet_id: tally_domain::ids::WalletId,
        code_hash: String,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_wallet_invite(wallet_id, code_hash, expires_at, now).await)
    }

    /// A member joins: a household with an invitation code, a business as a contact.
    pub async fn join_wallet(&self, join: JoinWallet) -> Result<WalletRow, StoreError> {
        dispatch!(self, s => s.join_wallet(join).await)
    }

    /// Changes a member's rights in a wallet, and whether it is their default.
    pub async fn set_wallet_rights(&self, rights: WalletRights) -> Result<WalletRow, StoreError> {
        dispatch!(self, s => s.set_wallet_rights(rights).await)
    }

    /// A member leaves a wallet; what they pooled stays in it.
    pub async fn leave_wallet(
        &self,
        wallet_id: tally_domain::ids::WalletId,
        member_id: MemberId,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        dispatch!(self, s => s.leave_wallet(wallet_id, member_id, now).await)
    }

    /// Closes a wallet, giving every point out to its members as `split` says.
    pub async fn close_wallet(
        &self,
        wallet_id: tally_domain::ids::WalletId,
        split: Vec<(MemberId, i64)>,
        now: Timestamp,
    ) -> Result<WalletRow, StoreError> {
        dispatch!(self, s => s.close_wallet(wallet_id, split, now).await)
    }

    /// What each member moved in and out of a wallet, per entry code, from the ledger.
    pub async fn wallet_statement(
        &self,
        wallet_id: tally_domain::ids::WalletId,
    ) -> Result<Vec<StatementLine>, StoreError> {
        dispatch!(self, s => s.wallet_statement(wallet_id).await)
    }

    /// Saves a new reward (`insert`) or replaces one; `scope`: only a reward this
    /// partner fulfils (another's is not found). `stock`: the units left (`Some(None)`:
    /// none kept); `None` keeps them as they are (a new reward: none kept).
    pub async fn save_reward(
        &self,
        reward: tally_domain::rewards::Reward,
        stock: Option<Option<i64>>,
        scope: Option<PartnerId>,
        insert: bool,
        now: Timestamp,
    ) -> Result<RewardRow, StoreError> {
        dispatch!(self, s => s.save_reward(reward, stock, scope, insert, now).await)
    }

    pub async fn reward(&self, id: tally_domain::ids::RewardId) -> Result<Option<RewardRow>, StoreError> {
        dispatch!(self, s => s.reward(id).await)
    }

    /// Every reward, or those `partner` fulfils.
    pub async fn rewards(&self, partner: Option<PartnerId>) -> Result<Vec<RewardRow>, StoreError> {
        dispatch!(self, s => s.rewards(partner).await)
    }

    /// What a member's catalogue is decided on (one snapshot).
    pub async fn member_offers(
        &self,
        member_id: MemberId,
        household_tier: bool,
        now: Timestamp,
    ) -> Result<MemberOffers, StoreError> {
        dispatch!(self, s => s.member_offers(member_id, household_tier, now).await)
    }

    /// Redeems a reward: decided by `tally_domain::decide::decide_redeem`; the same
    /// `request_id` again answers the first answer.
    pub async fn redeem(&self, cmd: RedeemCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.redeem(cmd).await)
    }

    /// A member sends points to another: decided by
    /// `tally_domain::decide::decide_transfer`; the same `request_id` again answers the
    /// first answer.
    pub async fn send_points(&self, cmd: TransferCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.send_points(cmd).await)
    }

    /// Saves an exchange partner: a new one, or (`create` false) one that exists.
    pub async fn save_exchange_partner(
        &self,
        p: tally_domain::exchange::ExchangePartner,
        create: bool,
        now: Timestamp,
    ) -> Result<tally_domain::exchange::ExchangePartner, StoreError> {
        dispatch!(self, s => s.save_exchange_partner(p, create, now).await)
    }

    pub async fn exchange_partner(
        &self,
        id: tally_domain::ids::ExchangePartnerId,
    ) -> Result<Option<tally_domain::exchange::ExchangePartner>, StoreError> {
        dispatch!(self, s => s.exchange_partner(id).await)
    }

    pub async fn exchange_partners(&self) -> Result<Vec<tally_domain::exchange::ExchangePartner>, StoreError> {
        dispatch!(self, s => s.exchange_partners().await)
    }

    /// A member's points exchanged out (`decide_exchange_out`); the same `request_id`
    /// again answers the first answer.
    pub async fn exchange_out(&self, cmd: ExchangeOutCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.exchange_out(cmd).await)
    }

    /// The other programme's answer to an order (`decide_exchange_outcome`).
    pub async fn exchange_outcome(
        &self,
        id: tally_domain::ids::ExchangeOrderId,
        outcome: tally_domain::decide::Outcome,
        now: Timestamp,
    ) -> Result<tally_domain::exchange::ExchangeOrder, StoreError> {
        dispatch!(self, s => s.exchange_outcome(id, outcome, now).await)
    }

    /// Units credited in (`decide_exchange_in`); the same reference again answers the
    /// first answer.
    pub async fn exchange_in(&self, cmd: ExchangeInCmd) -> Result<Posted, StoreError> {
        dispatch!(self, s => s.exchange_in(cmd).await)
    }

    pub async fn exchange_order(
        &self,
        id: tally_domain::ids::ExchangeOrderId,
    ) -> Result<Option<tally_domain::exchange::ExchangeOrder>, StoreError> {
        dispatch!(self, s => s.exchange_order(id).await)
    }

    pub async fn exchange_orders(
        &self,
        q: ExchangeOrderQuery,
    ) -> Result<Vec<tally_domain::exchange::ExchangeOrder>, StoreError> {
        dispatch!(self, s => s.exchange_orders(q).await)
    }

    /// What went out to and came in from an exchange partner in `[from, to)`.
    pub async fn exchange_volume(
        &self,
        id: tally_domain::ids::ExchangePartnerId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<ExchangeVolume, StoreError> {
        dispatch!(self, s => s.exchange_volume(id, from, to).await)
    }

    /// A member's transfers, sent and received, newest first.
    pub async fn transfers(
        &self,
        q: TransferQuery,
    ) -> Result<Vec<tally_domain::transfers::MemberTransfer>, StoreError> {
        dispatch!(self, s => s.transfers(q).await)
    }

    /// A partner uses a voucher (`decide_use`).
    pub async fn use_voucher(&self, u: VoucherUse) -> Result<tally_domain::rewards::Redemption, StoreError> {
        dispatch!(self, s => s.use_voucher(u).await)
    }

    /// The redemption whose voucher code has this hash.
    pub async fn voucher(&self, code_hash: String) -> Result<Option<tally_domain::rewards::Redemption>, StoreError> {
        dispatch!(self, s => s.voucher(code_hash).await)
    }

    pub async fn redemption(
        &self,
        id: tally_domain::ids::RedemptionId,
    ) -> Result<Option<tally_domain::rewards::Redemption>, StoreError> {
        dispatch!(self, s => s.redemption(id).await)
    }

    /// Cancels an issued voucher: points and stock back (`decide_release`).
    pub async fn cancel_redemption(
        &self,
        id: tally_domain::ids::RedemptionId,
        scope: Option<PartnerId>,
        now: Timestamp,
    ) -> Result<tally_domain::rewards::Redemption, StoreError> {
        dispatch!(self, s => s.cancel_redemption(id, scope, now).await)
    }

    /// The scheduled run: vouchers past their expiry, unused (at most `limit`).
    pub async fn expire_vouchers(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        dispatch!(self, s => s.expire_vouchers(now, limit).await)
    }

    pub async fn redemptions(&self, q: RedemptionQuery) -> Result<Vec<tally_domain::rewards::Redemption>, StoreError> {
        dispatch!(self, s => s.redemptions(q).await)
    }

    /// A new code for an issued voucher; the old one stops working.
    pub async fn reissue_code(
        &self,
        id: tally_domain::ids::RedemptionId,
        hash: String,
        hint: String,
        now: Timestamp,
    ) -> Result<tally_domain::rewards::Redemption, StoreError> {
        dispatch!(self, s => s.reissue_code(id, hash, hint, now).await)
    }

    /// The scheduled run: memberships whose status changed with time (at most `limit`).
    pub async fn review_memberships(&self, now: Timestamp, limit: u32) -> Result<u64, StoreError> {
        dispatch!(self, s => s.review_memberships(now, limit).await)
    }

    /// After the ladder changed: every member with a standing is due for the scheduled
    /// tier review.
    pub async fn mark_tier_reviews(&self, now: Timestamp) -> Result<u64, StoreError> {
        dispatch!(self, s => s.mark_tier_reviews(now).await)
    }

    /// A member's tier standing as stored, and its history (newest first).
    pub async fn member_tier(
        &self,
        member_id: MemberId,
        ladder: std::sync::Arc<tally_domain::tiers::TierLadder>,
    ) -> Result<MemberTierRow, StoreError> {
        dispatch!(self, s => s.member_tier(member_id, ladder).await)
    }

    /// Sets a member's level by hand until a date (or ends a level set by hand).
    pub async fn set_member_tier(
        &self,
        member_id: MemberId,
        ladder: std::sync::Arc<tally_domain::tiers::TierLadder>,
        manual: ManualTier,
        now: Timestamp,
    ) -> Result<MemberTierRow, StoreError> {
        dispatch!(self, s => s.set_member_tier(member_id, ladder, manual, now).await)
    }

    /// The programme's accounts (all but members' and wallets' own) from the entries,
    /// and what members and wallets hold in all.
    pub async fn ledger_balances(&self) -> Result<LedgerBalances, StoreError> {
        dispatch!(self, s => s.ledger_balances().await)
    }

    /// Saves a version of the prices (the programme's, or a partner's); a version for
    /// the same scope and day replaces it. Refused when it would take effect in a closed
    /// period.
    pub async fn put_price(
        &self,
        version: tally_domain::settlement::PriceVersion,
    ) -> Result<tally_domain::settlement::PriceVersion, StoreError> {
        dispatch!(self, s => s.put_price(version).await)
    }

    pub async fn price_book(&self) -> Result<tally_domain::settlement::PriceBook, StoreError> {
        dispatch!(self, s => s.price_book().await)
    }

    /// The closed periods, oldest first.
    pub async fn settlement_periods(&self) -> Result<Vec<settlement::StoredPeriod>, StoreError> {
        dispatch!(self, s => s.settlement_periods().await)
    }

    /// A period's statements and netting view: as stored once it is closed, from the
    /// ledger (one snapshot) while it is open.
    /// `only` one partner's statement (no netting view) or, without, everything.
    pub async fn settlement(
        &self,
        period: tally_domain::settlement::Period,
        only: Option<PartnerId>,
    ) -> Result<settlement::Settlement, StoreError> {
        dispatch!(self, s => s.settlement(period, only).await)
    }

    /// Closes a period at the current FX rates with those `stated` for it: its
    /// statements are stored with their hashes and never change.
    pub async fn close_period(
        &self,
        period: tally_domain::settlement::Period,
        now: Timestamp,
        stated: FxRates,
    ) -> Result<settlement::StoredPeriod, StoreError> {
        dispatch!(self, s => s.close_period(period, now, stated).await)
    }

    /// What members hold at the end of a day, valued and split among funders.
    pub async fn liability(&self, at: jiff::civil::Date) -> Result<tally_domain::settlement::Liability, StoreError> {
        dispatch!(self, s => s.liability(at).await)
    }

    /// Breakage by the month points were earned.
    pub async fn breakage(&self) -> Result<Vec<tally_domain::settlement::Cohort>, StoreError> {
        dispatch!(self, s => s.breakage().await)
    }

    /// Recomputes every balance from the entries.
    pub async fn verify_ledger(&self) -> Result<Verification, StoreError> {
        dispatch!(self, s => s.verify_ledger().await)
    }

    /// Claims an `Idempotency-Key` for a request before it runs, in one write: a new key
    /// (or one whose claim was made before `abandoned_before` and never finished) is
    /// claimed for `request_hash`; otherwise the claim found is returned.
    pub async fn claim_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
        now: Timestamp,
        abandoned_before: Timestamp,
    ) -> Result<Claim, StoreError> {
        let (principal, key, hash) = (principal.to_string(), key.to_string(), request_hash.to_string());
        dispatch!(self, s => s.claim_idempotency_key(principal, key, hash, now, abandoned_before).await)
    }

    /// Saves the answer of the request that claimed the key.
    pub async fn finish_idempotency_key(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        body: String,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.finish_idempotency_key(principal.to_string(), key.to_string(), status, body).await)
    }

    /// Lets the key go again (the request failed on our side; a retry may run).
    pub async fn release_idempotency_key(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.release_idempotency_key(principal.to_string(), key.to_string()).await)
    }

    /// What the database server has written so far, where it tells (PostgreSQL); SQLite
    /// writes from this process, which the process's own I/O counters show.
    pub async fn write_volume(&self) -> Result<Option<WriteVolume>, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(None),
            Store::Postgres(s) => s.write_volume().await.map(Some),
        }
    }

    /// Counts used by `/metrics` and the demo: members, transactions, entries.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        dispatch!(self, s => s.counts().await)
    }

    // The web faces: staff users, sessions, sign-in codes, the audit log, signing keys
    // and the pages' read models (types in the `web` module).

    /// Creates a staff user: `409 email_taken` when another has the email; an unknown
    /// partner is `NotFound(Partner)`; a role unknown or without its partner, invalid.
    pub async fn create_user(&self, user: web::NewUser) -> Result<web::UserRow, StoreError> {
        dispatch!(self, s => s.create_user(user).await)
    }

    /// The staff user with this (lowercased) email.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<web::UserRow>, StoreError> {
        dispatch!(self, s => s.user_by_email(email.to_string()).await)
    }

    pub async fn user(&self, id: &str) -> Result<Option<web::UserRow>, StoreError> {
        dispatch!(self, s => s.user(id.to_string()).await)
    }

    /// Every staff user, or a partner's, by email.
    pub async fn users(&self, partner: Option<&PartnerId>) -> Result<Vec<web::UserRow>, StoreError> {
        dispatch!(self, s => s.users(partner.cloned()).await)
    }

    /// Saves a session (dropping those expired by its start).
    pub async fn create_session(&self, session: web::SessionRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_session(session).await)
    }

    /// The session with this token hash, unless it expired by `now`.
    pub async fn session(&self, token_hash: &str, now: Timestamp) -> Result<Option<web::SessionRow>, StoreError> {
        dispatch!(self, s => s.session(token_hash.to_string(), now).await)
    }

    /// Signs a session out (nothing if there is none).
    pub async fn end_session(&self, token_hash: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.end_session(token_hash.to_string()).await)
    }

    /// Keeps a sign-in code sent to a member (`NotFound(Member)` for an unknown one).
    pub async fn create_login_code(&self, code: web::NewLoginCode) -> Result<(), StoreError> {
        dispatch!(self, s => s.create_login_code(code).await)
    }

    /// Disables a staff user (once: a second call keeps the first time) and ends their
    /// sessions; false when there is no such user.
    pub async fn disable_user(&self, id: &str, now: Timestamp) -> Result<bool, StoreError> {
        dispatch!(self, s => s.disable_user(id.to_string(), now).await)
    }

    /// Tries a code in one transaction: the newest code sent to `destination` that is
    /// unused, unexpired at `now` and tried fewer than `max_attempts` times. Its hash
    /// equal to `code_hash` uses it (once) and answers its member; otherwise the try
    /// counts against it and the answer is `None`.
    pub async fn use_login_code(
        &self,
        destination: &str,
        code_hash: &str,
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<Option<MemberId>, StoreError> {
        let (destination, code_hash) = (destination.to_string(), code_hash.to_string());
        dispatch!(self, s => s.use_login_code(destination, code_hash, now, max_attempts).await)
    }

    /// Appends a line to the audit log (which never changes otherwise).
    pub async fn append_audit(&self, row: web::AuditRow) -> Result<(), StoreError> {
        dispatch!(self, s => s.append_audit(row).await)
    }

    /// The audit log, newest first: all of it, or the lines of a partner's users.
    pub async fn audit(&self, partner: Option<&PartnerId>, limit: u32) -> Result<Vec<web::AuditEntry>, StoreError> {
        dispatch!(self, s => s.audit(partner.cloned(), limit).await)
    }

    /// The signing key `name`: `fresh` if none was stored yet, else the stored one, so
    /// every server of the database uses the same.
    pub async fn web_key(&self, name: &str, fresh: String) -> Result<String, StoreError> {
        dispatch!(self, s => s.web_key(name.to_string(), fresh).await)
    }

    /// Members in all, and those with a sale that took place since `active_since`.
    pub async fn member_counts(&self, active_since: Timestamp) -> Result<(u64, u64), StoreError> {
        dispatch!(self, s => s.member_counts(active_since).await)
    }

    /// Points issued to and redeemed by members per calendar month (UTC) recorded from
    /// `from` on, oldest first; months with neither are left out. Which entries count:
    /// [`web::ISSUED_CODES`], [`web::REDEEMED_CODES`], [`web::PROGRAMME_SIDE`].
    pub async fn monthly_points(&self, from: Timestamp) -> Result<Vec<web::MonthPoints>, StoreError> {
        dispatch!(self, s => s.monthly_points(from).await)
    }

    /// Per member and partner, from the ledger: the points the member earned at the
    /// partner's sales (`earn`, partner- and operator-funded) and spent paying there
    /// (`redeem`), as posted (returns not taken off). Events and vouchers are not sales.
    pub async fn partner_member_points(&self) -> Result<Vec<web::PartnerMemberPoints>, StoreError> {
        dispatch!(self, s => s.partner_member_points().await)
    }

    /// A partner's sales and returns, newest first, after `before` (the cursor of the
    /// previous page's last line).
    pub async fn partner_transactions(
        &self,
        partner: &PartnerId,
        before: Option<web::TxnCursor>,
        limit: u32,
    ) -> Result<Vec<web::PartnerTxn>, StoreError> {
        dispatch!(self, s => s.partner_transactions(partner.clone(), before, limit).await)
    }

    /// A member's lots that still hold points (pending or available), soonest to expire
    /// first, at most [`web::OPEN_LOTS_READ`].
    pub async fn open_lots(&self, member: &MemberId) -> Result<Vec<web::OpenLot>, StoreError> {
        dispatch!(self, s => s.open_lots(member.clone()).await)
    }

    /// The members who bought at a partner since `since`, the most recent first (their
    /// visits and points counted since then).
    pub async fn partner_customers(
        &self,
        partner: &PartnerId,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<web::PartnerCustomer>, StoreError> {
        dispatch!(self, s => s.partner_customers(partner.clone(), since, limit).await)
    }
}
