//! `tally serve`: the operator key, the scheduled expiry run, and graceful shutdown.

use crate::ServerArgs;
use anyhow::Context;
use std::time::Duration;
use tally_http::{AppState, Clock};
use tally_store::{Store, keys};

/// The operator key's hash: from `TALLY_ADMIN_KEY`, else the one chosen at first start,
/// else a new key, printed once and stored only as its hash.
async fn admin_key_hash(store: &Store) -> anyhow::Result<String> {
    if let Ok(key) = std::env::var("TALLY_ADMIN_KEY")
        && !key.trim().is_empty()
    {
        return Ok(keys::hash_key(key.trim()));
    }
    if let Some(hash) = store.admin_key_hash().await? {
        return Ok(hash);
    }
    let key = keys::generate_key();
    let hash = keys::hash_key(&key);
    store.set_admin_key_hash(&hash).await?;
    println!("Operator API key (shown once, keep it safe): {key}");
    Ok(hash)
}

pub async fn state(store: Store, clock: Clock) -> anyhow::Result<AppState> {
    let hash = admin_key_hash(&store).await?;
    Ok(AppState::new(store, clock, hash).await?)
}

/// A database URL without its password, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].find(':') {
            Some(colon) => format!("{}:***{}", &url[..s + 3 + colon], &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

pub async fn serve(args: ServerArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database_url)
        .await
        .with_context(|| format!("opening {}", redact(&args.database_url)))?;
    let mut state = state(store, tally_http::system_clock()).await?;
    state.limits = args.limits();
    if args.member_codes == crate::MemberCodes::Log {
        state.codes = std::sync::Arc::new(tally_http::web::codes::LogSender);
        tracing::warn!("members' sign-in codes are written to the log (--member-codes log): for development only");
    }
    if state.follow_changes().await? {
        tracing::info!("following changes made through other servers on this database");
    }
    let scheduler = state.clone();
    let every = Duration::from_secs(args.expiry_interval_secs.max(1));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match tally_http::routes::operations::settle_all(&scheduler).await {
                Ok(r) if r.members_settled > 0 => tracing::info!(?r, "expiry run"),
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "expiry run failed"),
            }
            if let Err(e) = scheduler.refresh().await {
                tracing::warn!(error = %e, "could not refresh programme and FX caches");
            }
        }
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "Tally listening on http://{addr} ({} at {})",
        state.store.backend(),
        redact(&args.database_url)
    );
    tally_http::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
