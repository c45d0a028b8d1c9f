//! gRPC health (`grpc.health.v1`) for the services: a service answers `SERVING` while its
//! database answers, `NOT_SERVING` while it does not, so an orchestrator stops routing to a
//! replica that cannot store anything and starts again when the database is back.
//!
//! The database is probed every [`PROBE_EVERY`]; a probe that takes longer than
//! [`PROBE_TIMEOUT`] counts as a failure (a database that hangs is as unusable as one that
//! refuses). The status is for the whole server (the empty service name), which is what
//! probes ask by default. Health needs no internal key: it tells nothing but the status.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::{HealthReporter, health_reporter};

/// How often a service asks its database whether it answers.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How long a probe may take before the database counts as unreachable.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The health service to add to a server, and the task that keeps its status in step with
/// `db` (abort it when the server stops).
pub fn database_health(db: DatabaseConnection) -> (HealthServer<impl Health>, JoinHandle<()>) {
    let (reporter, service) = health_reporter();
    (service, tokio::spawn(probe(db, reporter)))
}

async fn probe(db: DatabaseConnection, reporter: HealthReporter) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    loop {
        tick.tick().await;
        let answers = matches!(
            tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await,
            Ok(Ok(()))
        );
        let status = if answers {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        if last != Some(status) {
            if answers {
                tracing::info!("the database answers; serving");
            } else {
                tracing::warn!("the database does not answer; not serving");
            }
            reporter.set_service_status("", status).await;
            last = Some(status);
        }
    }
}
