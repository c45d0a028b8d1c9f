//! The gateway's push server: services reach the sessions held here.

use proto::gateway::notification::Event as Pushed;
use proto::gateway::push_server::Push;
use proto::gateway::{DeliverRequest, KickRequest, NotifyRequest, PushResponse, Target};
use protocol::message::{Event, ServerMessage};
use protocol::{RoomId, UserId};
use tonic::{Request, Response, Status};

use crate::convert;
use crate::hub::{Hub, SessionHandle};

/// `uchat.gateway.v1.Push` over this gateway's [`Hub`].
#[derive(Debug, Clone)]
pub struct PushService {
    hub: Hub,
}

impl PushService {
    /// The push server for `hub`'s sessions.
    pub fn new(hub: Hub) -> Self {
        Self { hub }
    }

    fn session(&self, target: Option<&Target>) -> Option<SessionHandle> {
        target.and_then(|t| self.hub.get(t.user_id, t.epoch))
    }
}

fn accepted(count: usize) -> Response<PushResponse> {
    Response::new(PushResponse {
        accepted: u32::try_from(count).unwrap_or(u32::MAX),
    })
}

#[tonic::async_trait]
impl Push for PushService {
    async fn deliver(
        &self,
        request: Request<DeliverRequest>,
    ) -> Result<Response<PushResponse>, Status> {
        let mut count = 0;
        for delivery in request.into_inner().deliveries {
            let Some(session) = self.session(delivery.target.as_ref()) else {
                continue;
            };
            let Some(message) = delivery.message.and_then(convert::message) else {
                continue;
            };
            if session
                .outbound
                .push(ServerMessage::Event(Event::Message(message)))
            {
                count += 1;
            }
        }
        Ok(accepted(count))
    }

    async fn kick(&self, request: Request<KickRequest>) -> Result<Response<PushResponse>, Status> {
        let request = request.into_inner();
        let Some(session) = self.session(request.target.as_ref()) else {
            return Ok(accepted(0));
        };
        tracing::info!(
            user = request.target.map(|t| t.user_id),
            "session replaced by a login elsewhere"
        );
        session.outbound.kick(&request.reason);
        Ok(accepted(1))
    }

    async fn notify(
        &self,
        request: Request<NotifyRequest>,
    ) -> Result<Response<PushResponse>, Status> {
        let mut count = 0;
        for notification in request.into_inner().notifications {
            let Some(session) = self.session(notification.target.as_ref()) else {
                continue;
            };
            let event = match notification.event {
                Some(Pushed::Presence(p)) => Event::Presence {
                    user: UserId(p.user_id),
                    presence: convert::presence(p.presence.as_ref()),
                },
                Some(Pushed::FriendRequest(user)) => Event::FriendRequest(convert::user(&user)),
                Some(Pushed::FriendAdded(friend)) => Event::FriendAdded(convert::friend(&friend)),
                Some(Pushed::FriendRemoved(user)) => Event::FriendRemoved { user: UserId(user) },
                Some(Pushed::RoomMemberJoined(joined)) => Event::RoomMemberJoined {
                    room: RoomId(joined.room_id),
                    member: joined
                        .member
                        .as_ref()
                        .map(convert::user)
                        .unwrap_or_else(|| convert::user(&Default::default())),
                },
                None => continue,
            };
            if session.outbound.push(ServerMessage::Event(event)) {
                count += 1;
            }
        }
        Ok(accepted(count))
    }
}
