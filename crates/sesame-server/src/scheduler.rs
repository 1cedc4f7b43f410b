//! Runs due work on an interval until shutdown: keys at the end of their deletion window,
//! keys due for automatic rotation, secret rotations due or to resume, secrets whose recovery
//! window ended, expired nonces and cache entries.

use crate::gateway::AppState;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub async fn run(app: Arc<AppState>, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => run_once(&app).await,
        }
    }
}

pub async fn run_once(app: &AppState) {
    let now = app.services.deps.clock.now();
    app.nonces.purge(now.0);
    app.services.deps.caches.purge_expired();
    match app.services.keys.run_due().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "scheduled key work done"),
        Err(sesame_api::Error::Internal(e)) => tracing::error!(cause = e.cause(), "scheduled key work failed"),
        Err(e) => tracing::warn!(error = %e, "scheduled key work failed"),
    }
    match app.services.secrets.run_due_rotations().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(secrets = n, "scheduled rotations done"),
        Err(sesame_api::Error::Internal(e)) => tracing::error!(cause = e.cause(), "scheduled rotations failed"),
        Err(e) => tracing::warn!(error = %e, "scheduled rotations failed"),
    }
    match app.services.secrets.run_due().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(secrets = n, "purged secrets whose recovery window ended"),
        Err(sesame_api::Error::Internal(e)) => tracing::error!(cause = e.cause(), "purging secrets failed"),
        Err(e) => tracing::warn!(error = %e, "purging secrets failed"),
    }
}
