//! The gateway's lease with account-svc, and what it tells about the gateway's health.
//!
//! A gateway registers its push address with account-svc and renews the lease at a third of
//! its length; sessions on a gateway whose lease expires count as offline (account-svc sweeps
//! them), so a gateway that dies leaves nobody online for longer than a lease. The gateway's
//! gRPC health (served on its push address) follows the lease: `SERVING` while registered,
//! `NOT_SERVING` while renewals fail (no login can succeed then) and while it drains.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use proto::account::{RegisterGatewayRequest, RenewLeaseRequest};
use proto::common::ErrorCode as ServiceCode;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::Shared;

/// Tries at registering with account-svc at start-up, with growing pauses between them.
pub const REGISTER_ATTEMPTS: u32 = 50;

/// The first pause between registration tries; it doubles up to [`REGISTER_BACKOFF_MAX`].
pub const REGISTER_BACKOFF: Duration = Duration::from_millis(100);

/// The longest pause between registration tries.
pub const REGISTER_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// The shortest lease the gateway accepts (renewed at a third of it).
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// Registers this gateway with account-svc, retrying while account-svc is starting.
pub async fn register(shared: &Shared, push_addr: &str) -> anyhow::Result<Duration> {
    let mut delay = REGISTER_BACKOFF;
    let mut attempts = 0;
    loop {
        let mut account = shared.services.account.clone();
        let request = RegisterGatewayRequest {
            gateway_id: shared.gateway_id.clone(),
            push_addr: push_addr.to_owned(),
        };
        match account.register_gateway(request).await {
            Ok(response) => {
                let lease = Duration::from_millis(response.into_inner().lease_ms).max(MIN_LEASE);
                tracing::info!(gateway_id = %shared.gateway_id, push_addr, ?lease, "gateway registered");
                return Ok(lease);
            }
            Err(status) if attempts < REGISTER_ATTEMPTS => {
                tracing::warn!(code = ?status.code(), "account-svc not ready; retrying");
                attempts += 1;
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(REGISTER_BACKOFF_MAX);
            }
            Err(status) => {
                anyhow::bail!("cannot register the gateway with account-svc: {status}")
            }
        }
    }
}

/// Renews the lease at a third of its length. If account-svc forgot this gateway (its lease
/// expired and its sessions were taken offline), it registers again and closes its sessions,
/// whose clients reconnect and log in again.
pub async fn renew(
    shared: Arc<Shared>,
    push_addr: String,
    mut lease: Duration,
    health: HealthReporter,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        let mut account = shared.services.account.clone();
        let renewed = account
            .renew_lease(RenewLeaseRequest {
                gateway_id: shared.gateway_id.clone(),
            })
            .await;
        match renewed {
            Ok(response) => {
                lease = Duration::from_millis(response.into_inner().lease_ms).max(MIN_LEASE);
                health.set_service_status("", ServingStatus::Serving).await;
            }
            Err(status) if proto::error_code(&status) == ServiceCode::UnknownGateway => {
                tracing::warn!("lease expired; registering again and closing sessions");
                for session in shared.hub.all() {
                    session
                        .outbound
                        .end("the server lost track of this session");
                }
                if let Ok(renewed) = register(&shared, &push_addr).await {
                    lease = renewed;
                }
            }
            Err(status) => {
                tracing::warn!(code = ?status.code(), "lease renewal failed");
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            }
        }
    }
}

/// The push address to register: `advertise` when given; the listening address when it is a
/// specific one; when listening on every interface (`0.0.0.0`, as in a container), the
/// address of this host that `account_url`'s host is reached from, which the services can
/// reach back. So every replica of a scaled gateway advertises its own address with no
/// per-replica setting.
pub async fn push_address(
    listening: SocketAddr,
    advertise: Option<String>,
    account_url: &str,
) -> anyhow::Result<String> {
    if let Some(addr) = advertise {
        return Ok(addr);
    }
    if !listening.ip().is_unspecified() {
        return Ok(listening.to_string());
    }
    let crate::discovery::ServiceAddr { host, port, .. } =
        crate::discovery::ServiceAddr::parse(account_url)?;
    // Connecting a UDP socket sends nothing: it only asks the kernel for the route.
    let mut last = None;
    for local in ["0.0.0.0:0", "[::]:0"] {
        let found = async {
            let socket = tokio::net::UdpSocket::bind(local).await?;
            socket.connect((host.as_str(), port)).await?;
            socket.local_addr()
        };
        match found.await {
            Ok(local) => return Ok(SocketAddr::new(local.ip(), listening.port()).to_string()),
            Err(err) => last = Some(err),
        }
    }
    Err(anyhow::anyhow!(
        "cannot tell which address of this host reaches {account_url} ({}); set --push-advertise",
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_gateway_on_every_interface_advertises_the_address_the_services_reach() {
        let any = SocketAddr::from(([0, 0, 0, 0], 7010));
        let found = push_address(any, None, "http://127.0.0.1:7001")
            .await
            .unwrap();
        assert_eq!(found, "127.0.0.1:7010");
        let found = push_address(any, Some("gw-3:7010".into()), "http://127.0.0.1:7001")
            .await
            .unwrap();
        assert_eq!(found, "gw-3:7010");
        let specific = SocketAddr::from(([127, 0, 0, 5], 7010));
        let found = push_address(specific, None, "http://127.0.0.1:7001")
            .await
            .unwrap();
        assert_eq!(found, "127.0.0.5:7010");
    }
}
