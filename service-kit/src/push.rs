//! Pushing events to the gateways that hold users' sessions.
//!
//! Pushes are best effort by design: a message is already stored and a friend list is already
//! changed when they are pushed, so a gateway that does not answer costs only liveness (the
//! client syncs at its next connect). Each push has a timeout; failures are logged, not
//! returned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use entity::{friend, gateway, session};
use proto::common::{Presence, UserSummary};
use proto::gateway::notification::Event;
use proto::gateway::push_client::PushClient;
use proto::gateway::{
    DeliverRequest, Delivery, KickRequest, Notification, NotifyRequest, PresenceChanged, Target,
};
use proto::internal::{Authenticated, InternalKey};
use proto::message::StoredMessage;
use proto::transport::Transport;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, JoinType, QueryFilter, QuerySelect,
};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::Endpoint;

use crate::now_ms;

/// How long one push call may take before it is abandoned.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// A gateway's channel unused for this long is dropped (and made again if it is needed), so
/// the channels of gateways that went away do not stay for the life of the process.
pub const CHANNEL_IDLE: Duration = Duration::from_secs(10 * 60);

/// A live session: where the user is connected, and with which epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    /// The user.
    pub user_id: i64,
    /// The session's epoch.
    pub epoch: i64,
    /// The gateway holding it.
    pub gateway_id: String,
    /// That gateway's push address.
    pub push_addr: String,
    /// The client's IP address, as the gateway sees it.
    pub peer_ip: String,
    /// The client's port.
    pub peer_port: i32,
}

/// The ids of a user's friends (accepted friendships in social-svc's `friends`): whom to
/// tell when the user's presence changes.
pub async fn friend_ids(db: &impl ConnectionTrait, user_id: i64) -> Result<Vec<i64>, DbErr> {
    Ok(friend::Entity::find()
        .filter(friend::Column::FromUserId.eq(user_id))
        .filter(friend::Column::Accepted.eq(true))
        .all(db)
        .await?
        .into_iter()
        .map(|f| f.to_user_id)
        .collect())
}

/// Finds the live sessions of `users`: online, on a gateway whose lease has not expired. One
/// query (sessions joined to their gateways): it runs on every fan-out round.
pub async fn live_sessions(
    db: &impl ConnectionTrait,
    users: &[i64],
) -> Result<Vec<LiveSession>, DbErr> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let on_gateway = session::Entity::belongs_to(gateway::Entity)
        .from(session::Column::GatewayId)
        .to(gateway::Column::Id)
        .into();
    let rows = session::Entity::find()
        .join(JoinType::InnerJoin, on_gateway)
        .select_also(gateway::Entity)
        .filter(session::Column::UserId.is_in(users.iter().copied()))
        .filter(session::Column::Online.eq(true))
        .filter(gateway::Column::LeaseExpiresAt.gt(now_ms()))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(s, gateway)| {
            Some(LiveSession {
                user_id: s.user_id,
                epoch: s.epoch,
                gateway_id: s.gateway_id,
                push_addr: gateway?.push_addr,
                peer_ip: s.peer_ip,
                peer_port: s.peer_port,
            })
        })
        .collect())
}

/// Clients for gateways' Push services, one channel per address, made on first use; their
/// calls carry the internal key.
#[derive(Clone)]
pub struct Pusher {
    key: InternalKey,
    /// Each gateway's channel, with when it was last asked for.
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// A gateway in this process, by its push address: called directly, never dropped.
    local: Option<(String, PushClient<Authenticated>)>,
}

/// A gateway's channel and when it was last asked for.
type Channel = (PushClient<Authenticated>, Instant);

impl std::fmt::Debug for Pusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pusher").finish_non_exhaustive()
    }
}

impl Pusher {
    /// Makes a pusher with no channels yet.
    pub fn new(key: InternalKey) -> Self {
        Self {
            key,
            channels: Arc::default(),
            local: None,
        }
    }

    /// Pushes to the gateway advertising `push_addr` by calling `gateway` (its Push service in
    /// this process, [`crate::in_process`]) rather than over the network.
    pub fn with_local(mut self, push_addr: String, gateway: Transport) -> Self {
        self.local = Some((push_addr, self.push_client(gateway)));
        self
    }

    /// A Push client over `transport`: carrying the key, messages bounded on both ends.
    fn push_client(&self, transport: impl Into<Transport>) -> PushClient<Authenticated> {
        PushClient::new(self.key.authenticate(transport))
            .max_encoding_message_size(proto::PUSH_MESSAGE_MAX_BYTES)
            .max_decoding_message_size(proto::PUSH_MESSAGE_MAX_BYTES)
    }

    async fn client(&self, push_addr: &str) -> Option<PushClient<Authenticated>> {
        if let Some((_, client)) = self.local.as_ref().filter(|(addr, _)| addr == push_addr) {
            return Some(client.clone());
        }
        let now = Instant::now();
        let mut channels = self.channels.lock().await;
        channels.retain(|_, (_, used)| now.duration_since(*used) < CHANNEL_IDLE);
        if let Some((client, used)) = channels.get_mut(push_addr) {
            *used = now;
            return Some(client.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{push_addr}"))
            .map_err(|err| tracing::warn!(%err, push_addr, "bad gateway push address"))
            .ok()?
            .timeout(PUSH_TIMEOUT)
            .connect_timeout(PUSH_TIMEOUT)
            .tcp_nodelay(true);
        // Lazy: the first call connects, so an unreachable gateway costs that call only.
        let client = self.push_client(endpoint.connect_lazy());
        channels.insert(push_addr.to_owned(), (client.clone(), now));
        Some(client)
    }

    /// Tells a gateway to end `session` (its user at its epoch), saying `reason`.
    pub async fn kick(&self, session: &LiveSession, reason: &str) {
        let Some(mut client) = self.client(&session.push_addr).await else {
            return;
        };
        let request = KickRequest {
            target: Some(target(session)),
            reason: reason.to_owned(),
        };
        if let Err(status) = client.kick(request).await {
            tracing::warn!(gateway = %session.gateway_id, code = ?status.code(), "kick push failed");
        }
    }

    /// Sends each session its event, one call per gateway.
    pub async fn notify(&self, events: Vec<(LiveSession, Event)>) {
        let mut by_gateway: HashMap<String, Vec<Notification>> = HashMap::new();
        for (session, event) in events {
            by_gateway
                .entry(session.push_addr.clone())
                .or_default()
                .push(Notification {
                    target: Some(target(&session)),
                    event: Some(event),
                });
        }
        for (push_addr, notifications) in by_gateway {
            let Some(mut client) = self.client(&push_addr).await else {
                continue;
            };
            if let Err(status) = client.notify(NotifyRequest { notifications }).await {
                tracing::warn!(push_addr, code = ?status.code(), "notify push failed");
            }
        }
    }

    /// Delivers each message to its session: per gateway, calls of at most
    /// [`proto::DELIVER_BATCH_MAX_BYTES`] of envelopes (at least one message each), in order.
    pub async fn deliver(&self, deliveries: Vec<(LiveSession, StoredMessage)>) {
        let mut by_gateway: HashMap<String, Vec<Delivery>> = HashMap::new();
        for (session, message) in deliveries {
            by_gateway
                .entry(session.push_addr.clone())
                .or_default()
                .push(Delivery {
                    target: Some(target(&session)),
                    message: Some(message),
                });
        }
        for (push_addr, deliveries) in by_gateway {
            let Some(mut client) = self.client(&push_addr).await else {
                continue;
            };
            for deliveries in split_by_bytes(deliveries, proto::DELIVER_BATCH_MAX_BYTES) {
                if let Err(status) = client.deliver(DeliverRequest { deliveries }).await {
                    tracing::warn!(push_addr, code = ?status.code(), "deliver push failed");
                }
            }
        }
    }

    /// Tells every live session of `watchers` that `user_id`'s presence changed.
    pub async fn presence(
        &self,
        db: &impl ConnectionTrait,
        watchers: &[i64],
        user_id: i64,
        presence: Presence,
    ) {
        let sessions = match live_sessions(db, watchers).await {
            Ok(sessions) => sessions,
            Err(err) => {
                tracing::warn!(%err, "cannot find sessions for a presence push");
                return;
            }
        };
        let event = Event::Presence(PresenceChanged {
            user_id: crate::wire_id(user_id),
            presence: Some(presence),
        });
        self.notify(sessions.into_iter().map(|s| (s, event.clone())).collect())
            .await;
    }

    /// Sends `event` to every live session of `users`.
    pub async fn notify_users(&self, db: &impl ConnectionTrait, users: &[i64], event: Event) {
        match live_sessions(db, users).await {
            Ok(sessions) => {
                self.notify(sessions.into_iter().map(|s| (s, event.clone())).collect())
                    .await
            }
            Err(err) => tracing::warn!(%err, "cannot find sessions for a push"),
        }
    }
}

/// Splits `deliveries`, in order, into runs whose envelopes total at most `max_bytes`; a run
/// holds at least one delivery, however large.
fn split_by_bytes(deliveries: Vec<Delivery>, max_bytes: usize) -> Vec<Vec<Delivery>> {
    let size = |d: &Delivery| d.message.as_ref().map_or(0, |m| m.envelope.len());
    let mut runs: Vec<Vec<Delivery>> = Vec::new();
    let mut run_bytes = 0;
    for delivery in deliveries {
        let bytes = size(&delivery);
        match runs.last_mut() {
            Some(run) if run_bytes + bytes <= max_bytes => {
                run_bytes += bytes;
                run.push(delivery);
            }
            _ => {
                run_bytes = bytes;
                runs.push(vec![delivery]);
            }
        }
    }
    runs
}

fn target(session: &LiveSession) -> Target {
    Target {
        user_id: crate::wire_id(session.user_id),
        epoch: crate::wire_id(session.epoch),
    }
}

/// Builds a summary from a user row.
pub fn summary(user: &entity::user::Model) -> UserSummary {
    UserSummary {
        id: crate::wire_id(user.id),
        username: user.username.clone(),
        sex: i32::from(user.sex),
        age: u32::try_from(user.age).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_gateways_channel_unused_for_long_is_dropped() {
        let pusher = Pusher::new(InternalKey::from_bytes([7; proto::internal::KEY_LEN]));
        let held = || async {
            pusher
                .channels
                .lock()
                .await
                .keys()
                .cloned()
                .collect::<Vec<_>>()
        };
        pusher.client("127.0.0.1:1").await.unwrap();
        tokio::time::sleep(CHANNEL_IDLE / 2).await;
        pusher.client("127.0.0.1:2").await.unwrap();
        assert_eq!(held().await.len(), 2, "both used lately");

        tokio::time::sleep(CHANNEL_IDLE / 2).await;
        pusher.client("127.0.0.1:2").await.unwrap();
        assert_eq!(
            held().await,
            ["127.0.0.1:2"],
            "the first, idle, was dropped"
        );
    }

    fn delivery(envelope_len: usize) -> Delivery {
        Delivery {
            target: None,
            message: Some(StoredMessage {
                envelope: vec![0; envelope_len],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn deliveries_are_split_in_order_to_fit_and_never_dropped() {
        let lens = [400, 400, 300, 900, 2000, 100];
        let runs = split_by_bytes(lens.iter().map(|&l| delivery(l)).collect(), 1000);
        let sizes: Vec<Vec<usize>> = runs
            .iter()
            .map(|run| {
                run.iter()
                    .map(|d| d.message.as_ref().map_or(0, |m| m.envelope.len()))
                    .collect()
            })
            .collect();
        assert_eq!(
            sizes,
            [vec![400, 400], vec![300], vec![900], vec![2000], vec![100]]
        );
    }
}
