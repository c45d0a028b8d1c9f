//! Messages: send (queued in the order read), sync, history and the two acknowledgements.

use proto::message::{AckRequest, HistoryRequest, SendRequest, SyncRequest};
use protocol::message::{Cursor, Error, Response, SendMessage, StoredMessage};
use protocol::{ConversationId, Seq, Timestamp};

use super::{Answer, Ctx, call, rate_limited, ready};
use crate::convert;
use crate::retry::repeatable;

/// Room left in a frame for everything of a message page but the envelopes.
const PAGE_OVERHEAD: usize = 64 * 1024;

/// Bytes of per-message framing counted against a page besides its envelope.
const MESSAGE_OVERHEAD: usize = 64;

/// Queues the message in its conversation's send lane (see `sends.rs`) now, so messages are
/// stored in the order they were read; the answer waits for the commit.
pub async fn send(cx: Ctx, send: SendMessage) -> Answer {
    let shared = &cx.conn.shared;
    if !shared.limits.messages.allow(&cx.user_id()) {
        return ready(Err(rate_limited("messages", "messages")));
    }
    let conversation = send.conversation;
    let request = SendRequest {
        sender_id: cx.user_id(),
        conversation_id: conversation.0,
        client_msg_id: send.client_msg_id.0.to_vec(),
        envelope: send.envelope.into_vec(),
    };
    let queued = match shared.sends.queue(request).await {
        Ok(queued) => queued,
        Err(err) => return ready(Err(err)),
    };
    Box::pin(async move {
        let stored = queued.stored().await?;
        Ok(Response::MessageAccepted {
            conversation,
            seq: Seq(stored.seq),
            sent_at: Timestamp(stored.sent_at),
        })
    })
}

pub async fn sync(cx: Ctx, cursors: Vec<Cursor>, limit: u32) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = SyncRequest {
        user_id: cx.user_id(),
        cursors: cursors
            .iter()
            .map(|c| proto::message::Cursor {
                conversation_id: c.conversation.0,
                seq: c.seq.0,
            })
            .collect(),
        limit,
    };
    let synced = repeatable("Sync", shared.request_timeout(), || {
        let mut message = shared.services.message.clone();
        let request = request.clone();
        async move { message.sync(request).await }
    })
    .await?;
    Ok(page(&cx, synced.messages, synced.more))
}

pub async fn history(
    cx: Ctx,
    conversation: ConversationId,
    before: Seq,
    limit: u32,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = HistoryRequest {
        user_id: cx.user_id(),
        conversation_id: conversation.0,
        before: before.0,
        limit,
    };
    let history = repeatable("History", shared.request_timeout(), || {
        let mut message = shared.services.message.clone();
        async move { message.history(request).await }
    })
    .await?;
    Ok(page(&cx, history.messages, history.more))
}

pub async fn ack_delivered(
    cx: Ctx,
    conversation: ConversationId,
    seq: Seq,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let mut message = shared.services.message.clone();
    let request = ack(&cx, conversation, seq);
    call(shared.request_timeout(), message.ack_delivered(request)).await?;
    Ok(Response::Done)
}

pub async fn ack_read(cx: Ctx, conversation: ConversationId, seq: Seq) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let mut message = shared.services.message.clone();
    let request = ack(&cx, conversation, seq);
    call(shared.request_timeout(), message.ack_read(request)).await?;
    Ok(Response::Done)
}

fn ack(cx: &Ctx, conversation: ConversationId, seq: Seq) -> AckRequest {
    AckRequest {
        user_id: cx.user_id(),
        conversation_id: conversation.0,
        seq: seq.0,
    }
}

/// A page of messages that fits in one frame.
fn page(cx: &Ctx, messages: Vec<proto::message::StoredMessage>, more: bool) -> Response {
    let mut messages: Vec<StoredMessage> =
        messages.into_iter().filter_map(convert::message).collect();
    let cut = fit_page(&mut messages, cx.conn.shared.config.max_frame_len);
    Response::Messages {
        messages,
        more: more || cut,
    }
}

/// Keeps the first messages whose envelopes fit in one frame; says whether any were cut.
fn fit_page(messages: &mut Vec<StoredMessage>, max_frame_len: usize) -> bool {
    let budget = max_frame_len.saturating_sub(PAGE_OVERHEAD);
    let mut used = 0;
    let keep = messages
        .iter()
        .take_while(|m| {
            used += m.envelope.len() + MESSAGE_OVERHEAD;
            used <= budget
        })
        .count()
        .max(1);
    let cut = keep < messages.len();
    messages.truncate(keep);
    cut
}
