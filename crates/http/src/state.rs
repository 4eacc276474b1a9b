//! Shared state of the server: the store, a clock, and the caches the POS path reads
//! instead of the database (programme, FX rates, partners, API keys).

use crate::error::ApiError;
use crate::metrics::Metrics;
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tally_domain::earning::FxRates;
use tally_store::{PartnerRow, ProgramRow, Store};

/// Where "now" comes from: the system clock in production, a test's own clock in tests.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Timestamp::now)
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Partner(String),
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
    caches: Arc<Caches>,
}

struct Caches {
    admin_key_hash: String,
    program: RwLock<ProgramRow>,
    fx: RwLock<FxRates>,
    partners: RwLock<HashMap<String, PartnerRow>>,
    /// SHA-256 of a key → whose it is. Misses fall back to the store (another server
    /// may have made the key).
    keys: RwLock<HashMap<String, Principal>>,
}

impl AppState {
    /// Loads the caches from the store. `admin_key_hash` is the hash of the operator key.
    pub async fn new(store: Store, clock: Clock, admin_key_hash: String) -> Result<AppState, tally_store::StoreError> {
        let program = store.program().await?;
        let fx = store.fx_rates().await?;
        let partners = store.partners().await?.into_iter().map(|p| (p.id.clone(), p)).collect();
        Ok(AppState {
            store,
            clock,
            metrics: Arc::new(Metrics::default()),
            caches: Arc::new(Caches {
                admin_key_hash,
                program: RwLock::new(program),
                fx: RwLock::new(fx),
                partners: RwLock::new(partners),
                keys: RwLock::new(HashMap::new()),
            }),
        })
    }

    pub fn now(&self) -> Timestamp {
        (self.clock)()
    }

    pub fn program(&self) -> ProgramRow {
        self.caches.program.read().expect("program cache").clone()
    }

    pub fn set_program(&self, program: ProgramRow) {
        *self.caches.program.write().expect("program cache") = program;
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

    /// Re-reads programme and FX rates, so several servers on one database converge.
    pub async fn refresh(&self) -> Result<(), tally_store::StoreError> {
        let program = self.store.program().await?;
        let fx = self.store.fx_rates().await?;
        self.set_program(program);
        self.set_fx(fx);
        Ok(())
    }

    pub async fn partner(&self, id: &str) -> Result<PartnerRow, ApiError> {
        if let Some(p) = self.caches.partners.read().expect("partner cache").get(id) {
            return Ok(p.clone());
        }
        crate::extract::path_id(id, "partner")?;
        let p = self
            .store
            .partner(id)
            .await?
            .ok_or_else(|| ApiError::not_found("partner"))?;
        self.remember_partner(p.clone());
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
        let principal = if constant_time_eq(hash.as_bytes(), self.caches.admin_key_hash.as_bytes()) {
            Principal::Operator
        } else {
            match self.store.api_key_partner(&hash).await? {
                Some(partner_id) => Principal::Partner(partner_id),
                None => return Err(ApiError::unauthorized()),
            }
        };
        self.caches
            .keys
            .write()
            .expect("key cache")
            .insert(hash, principal.clone());
        Ok(principal)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
