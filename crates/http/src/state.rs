//! Shared state of the server: the store, a clock, and the caches the POS path reads
//! instead of the database (programme, FX rates, partners, API keys).

use crate::error::ApiError;
use crate::metrics::Metrics;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tally_domain::challenges::Challenge;
use tally_domain::earning::FxRates;
use tally_domain::ids::{Id, LocationId, PartnerId};
use tally_domain::rules::{CompiledRule, RuleSet};
use tally_store::{Change, LocationRow, PartnerRow, ProgramRow, RuleRow, Store};

/// Where "now" comes from: the system clock in production, a test's own clock in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Partner(PartnerId),
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    /// Body, head and request deadlines and the connection cap.
    pub limits: crate::server::Limits,
    /// Faults of the database answers reported lately, for `/healthz`.
    pub health: Arc<crate::health::Health>,
    /// Signs members' QR tokens and the web forms' CSRF tokens.
    pub signer: crate::signing::Signer,
    /// Delivers members' one-time sign-in codes (by default nowhere: `NoSender`).
    pub codes: Arc<dyn crate::web::codes::CodeSender>,
    caches: Arc<Caches>,
}

struct Caches {
    admin_key_hash: String,
    program: RwLock<ProgramRow>,
    /// Raised each time a request sets the programme: a reload that read it before a
    /// newer value was set does not put the older one back.
    program_version: std::sync::atomic::AtomicU64,
    /// Held across a reload's read and store: of two reloads, the later read is the
    /// one kept.
    program_reload: tokio::sync::Mutex<()>,
    fx: RwLock<FxRates>,
    partners: RwLock<HashMap<PartnerId, PartnerRow>>,
    /// SHA-256 of a key → whose it is. Misses fall back to the store (another server
    /// may have made the key).
    keys: RwLock<HashMap<String, Principal>>,
    /// SHA-256 of keys the store did not know, until when: guessing keys costs the
    /// database nothing (a key is random, so none of these can be made meanwhile).
    unknown_keys: RwLock<HashMap<String, Timestamp>>,
    locations: RwLock<HashMap<LocationId, LocationRow>>,
    /// The active earning rules, compiled; replaced whole when a rule is saved.
    rules: RwLock<Arc<RuleSet>>,
    /// Every challenge, compiled; replaced whole when one is saved.
    challenges: RwLock<Arc<Vec<Challenge>>>,
    /// One reload at a time, so an older rule set never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
    /// Grows whenever cached keys, partners or locations are dropped (a revocation, a
    /// change from another server, a refresh). A lookup that read the store before the
    /// drop does not put what it read into the cache: it may be what was dropped.
    generation: std::sync::atomic::AtomicU64,
}

/// Compiles stored challenges, as [`compile_rules`] does rules.
pub fn compile_challenges(rows: Vec<tally_store::challenges::ChallengeRow>) -> Vec<Challenge> {
    rows.into_iter()
        .filter_map(|r| {
            let checked = serde_json::from_str::<tally_domain::challenges::ChallengeSpec>(&r.spec_json)
                .map_err(|e| e.to_string())
                .and_then(|spec| spec.check(r.id.clone(), |_| true).map_err(|e| e.to_string()));
            match checked {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(challenge = %r.id, error = %e, "a stored challenge does not compile; it is skipped");
                    None
                }
            }
        })
        .collect()
}

/// Compiles stored rules (they were checked when saved; one that no longer compiles is
/// left out and logged rather than stopping the server).
pub fn compile_rules(rows: Vec<RuleRow>) -> RuleSet {
    let compiled: Vec<CompiledRule> = rows
        .into_iter()
        .filter_map(|r| match tally_domain::rules::compile(&r.id, r.version, r.spec) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(rule = %r.id, error = %e, "a stored rule does not compile; it is skipped");
                None
            }
        })
        .collect();
    RuleSet::new(compiled)
}

impl AppState {
    /// Loads the caches from the store. `admin_key_hash` is the hash of the operator key.
    pub async fn new(store: Store, clock: Clock, admin_key_hash: String) -> Result<AppState, tally_store::StoreError> {
        let program = store.program().await?;
        let fx = store.fx_rates().await?;
        let partners = store.partners().await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let rules = compile_rules(store.rules().await?);
        let challenges = compile_challenges(store.challenges().await?);
        let signing_key = store
            .web_key("signing", hex::encode(tally_store::keys::random_bytes::<32>()))
            .await?;
        Ok(AppState {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
            limits: crate::server::Limits::default(),
            health: Arc::default(),
            signer: crate::signing::Signer::new(&signing_key),
            codes: Arc::new(crate::web::codes::NoSender),
            caches: Arc::new(Caches {
                admin_key_hash,
                program: RwLock::new(program),
                program_version: std::sync::atomic::AtomicU64::new(0),
                program_reload: tokio::sync::Mutex::new(()),
                fx: RwLock::new(fx),
                partners: RwLock::new(partners),
                keys: RwLock::new(HashMap::new()),
                unknown_keys: RwLock::new(HashMap::new()),
                locations: RwLock::new(HashMap::new()),
                rules: RwLock::new(Arc::new(rules)),
                challenges: RwLock::new(Arc::new(challenges)),
                reloading: tokio::sync::Mutex::new(()),
                generation: std::sync::atomic::AtomicU64::new(0),
            }),
        })
    }

    /// The time now, to the microsecond: what the databases store, so an answer given
    /// when something is written says the same time as every later read of it.
    pub fn now(&self) -> Timestamp {
        let now = (self.clock)();
        Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
    }

    pub fn program(&self) -> ProgramRow {
        self.caches.program.read().expect("program cache").clone()
    }

    pub fn set_program(&self, program: ProgramRow) {
        let mut cached = self.caches.program.write().expect("program cache");
        self.caches
            .program_version
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *cached = program;
    }

    /// Reads the programme again (a change elsewhere, the periodic refresh) and caches
    /// it, unless a newer one was set while it was read.
    async fn reload_program(&self) -> Result<(), tally_store::StoreError> {
        use std::sync::atomic::Ordering::SeqCst;
        let _one_at_a_time = self.caches.program_reload.lock().await;
        let seen = self.caches.program_version.load(SeqCst);
        let program = self.store.program().await?;
        let mut cached = self.caches.program.write().expect("program cache");
        if self.caches.program_version.load(SeqCst) == seen {
            *cached = program;
        }
        Ok(())
    }

    pub fn fx(&self) -> FxRates {
        self.caches.fx.read().expect("fx cache").clone()
    }

    pub fn with_fx<T>(&self, f: impl FnOnce(&FxRates) -> T) -> T {
        f(&self.caches.fx.read().expect("fx cache"))
    }

    pub fn set_fx(&self, fx: FxRates) {
        *self.caches.fx.write().expect("fx cache") = fx;
    }

    /// Re-reads every cache (programme, FX rates, rules, partners) and drops the
    /// cached keys and locations: the fallback that makes several servers on one
    /// database converge even when the change feed was down.
    pub async fn refresh(&self) -> Result<(), tally_store::StoreError> {
        self.reload_program().await?;
        let fx = self.store.fx_rates().await?;
        self.set_fx(fx);
        self.drop_cached(true, true);
        self.reload_partners().await?;
        self.reload_rules().await
    }

    /// Follows changes made through other servers on the same database (PostgreSQL),
    /// so a rule saved, a key revoked or a rate changed there applies here at once.
    /// The periodic [`AppState::refresh`] stays as a fallback. Returns whether a feed
    /// is followed (never on SQLite, whose database belongs to one server).
    pub async fn follow_changes(&self) -> Result<bool, tally_store::StoreError> {
        let Some(mut feed) = self.store.follow_changes().await? else {
            return Ok(false);
        };
        let state = self.clone();
        tokio::spawn(async move {
            while let Some(change) = feed.recv().await {
                if let Err(e) = state.apply_change(change).await {
                    tracing::warn!(error = %e, ?change, "could not reload a cache after a change; the periodic refresh will");
                }
            }
        });
        Ok(true)
    }

    /// Drops or reloads the cache a change touched.
    pub async fn apply_change(&self, change: Change) -> Result<(), tally_store::StoreError> {
        match change {
            Change::Program => self.reload_program().await?,
            Change::FxRates => self.set_fx(self.store.fx_rates().await?),
            Change::Partners => self.reload_partners().await?,
            Change::Locations => self.drop_cached(false, true),
            Change::ApiKeys => self.drop_cached(true, false),
            Change::Rules => self.reload_rules().await?,
            Change::Resync => self.refresh().await?,
        }
        Ok(())
    }

    fn generation(&self) -> u64 {
        self.caches.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Raises the generation, before a cache drops or replaces what it holds.
    fn invalidate(&self) {
        self.caches.generation.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Drops cached keys (and, with `places`, locations): a revocation or a change
    /// elsewhere. Lookups in flight will not cache what they read before.
    fn drop_cached(&self, keys: bool, places: bool) {
        self.invalidate();
        if keys {
            self.caches.keys.write().expect("key cache").clear();
        }
        if places {
            self.caches.locations.write().expect("location cache").clear();
        }
    }

    async fn reload_partners(&self) -> Result<(), tally_store::StoreError> {
        self.invalidate();
        let partners = self
            .store
            .partners()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        *self.caches.partners.write().expect("partner cache") = partners;
        Ok(())
    }

    /// Forgets a key at once (it was revoked here).
    pub fn forget_key(&self, key_hash: &str) {
        self.invalidate();
        self.caches.keys.write().expect("key cache").remove(key_hash);
    }

    /// The active earning rules.
    pub fn rules(&self) -> Arc<RuleSet> {
        self.caches.rules.read().expect("rule cache").clone()
    }

    /// Re-reads and compiles the rules (after a save here, or periodically for rules
    /// saved through another server).
    pub async fn reload_rules(&self) -> Result<(), tally_store::StoreError> {
        let _one_at_a_time = self.caches.reloading.lock().await;
        let rules = compile_rules(self.store.rules().await?);
        *self.caches.rules.write().expect("rule cache") = Arc::new(rules);
        let challenges = compile_challenges(self.store.challenges().await?);
        *self.caches.challenges.write().expect("challenge cache") = Arc::new(challenges);
        Ok(())
    }

    /// Every challenge (the rules' reload reads them again too).
    pub fn challenges(&self) -> Arc<Vec<Challenge>> {
        self.caches.challenges.read().expect("challenge cache").clone()
    }

    /// A location of `partner_id` by id (cached), or none.
    pub async fn location(
        &self,
        partner_id: &PartnerId,
        id: &LocationId,
    ) -> Result<Option<LocationRow>, tally_store::StoreError> {
        if let Some(l) = self.caches.locations.read().expect("location cache").get(id) {
            return Ok((l.partner_id == *partner_id).then(|| l.clone()));
        }
        let seen = self.generation();
        let all = self.store.locations(partner_id).await?;
        let mut cache = self.caches.locations.write().expect("location cache");
        if self.generation() == seen {
            for l in &all {
                cache.insert(l.id.clone(), l.clone());
            }
        }
        Ok(all.into_iter().find(|l| l.id == *id))
    }

    pub async fn partner(&self, id: &PartnerId) -> Result<PartnerRow, ApiError> {
        if let Some(p) = self.caches.partners.read().expect("partner cache").get(id) {
            return Ok(p.clone());
        }
        if PartnerId::parse(id.as_str()).is_none() {
            return Err(ApiError::not_found("partner"));
        }
        let seen = self.generation();
        let p = self
            .store
            .partner(id)
            .await?
            .ok_or_else(|| ApiError::not_found("partner"))?;
        if self.generation() == seen {
            self.remember_partner(p.clone());
        }
        Ok(p)
    }

    pub fn remember_partner(&self, p: PartnerRow) {
        self.caches
            .partners
            .write()
            .expect("partner cache")
            .insert(p.id.clone(), p);
    }

    /// Finds who owns a bearer key.
    pub async fn authenticate(&self, key: &str) -> Result<Principal, ApiError> {
        if key.is_empty() || key.len() > 200 {
            return Err(ApiError::unauthorized());
        }
        let hash = tally_store::keys::hash_key(key);
        if let Some(p) = self.caches.keys.read().expect("key cache").get(&hash) {
            return Ok(p.clone());
        }
        let now = Timestamp::now();
        if self
            .caches
            .unknown_keys
            .read()
            .expect("unknown key cache")
            .get(&hash)
            .is_some_and(|until| *until > now)
        {
            return Err(ApiError::unauthorized());
        }
        let seen = self.generation();
        let principal = if constant_time_eq(hash.as_bytes(), self.caches.admin_key_hash.as_bytes()) {
            Principal::Operator
        } else {
            self.metrics.key_looked_up();
            match self.store.api_key_partner(&hash).await? {
                Some(partner_id) => Principal::Partner(partner_id),
                None => {
                    let mut unknown = self.caches.unknown_keys.write().expect("unknown key cache");
                    if unknown.len() >= UNKNOWN_KEYS_KEPT {
                        unknown.retain(|_, until| *until > now);
                        if unknown.len() >= UNKNOWN_KEYS_KEPT {
                            unknown.clear();
                        }
                    }
                    unknown.insert(hash, now + UNKNOWN_KEY_TTL);
                    return Err(ApiError::unauthorized());
                }
            }
        };
        let mut keys = self.caches.keys.write().expect("key cache");
        // Checked under the cache's lock, which every drop takes after raising the
        // generation: a key revoked since the read above is not cached.
        if self.generation() == seen {
            keys.insert(hash, principal.clone());
        }
        Ok(principal)
    }
}

/// How long an unknown key is answered `401` from memory, and how many are kept.
const UNKNOWN_KEY_TTL: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);
const UNKNOWN_KEYS_KEPT: usize = 100_000;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
