//! The tonic implementation of `uchat.message.v1.Message`: decode, authorise, call the writer
//! or the store, map the error, fan out.

use std::sync::Arc;

use proto::message::message_server::Message;
use proto::message::*;
use protocol::e2e::EnvelopeShape;
use sea_orm::DatabaseConnection;
use service_kit::membership::{conversation_members, user_conversations};
use service_kit::{db_id, wire_id};
use tokio::sync::{mpsc, oneshot};
use tonic::{Request, Response, Status};

use crate::Config;
use crate::acks::{Ack, AckQueue};
use crate::attachments;
use crate::error::Error;
use crate::logic;
use crate::store;
use crate::writer::{Job, Outcome};

/// Length of a client message id.
pub const CLIENT_MSG_ID_LEN: usize = 16;

/// message-svc's state, passed explicitly.
#[derive(Debug, Clone)]
pub struct MessageRpc {
    db: DatabaseConnection,
    attachments: DatabaseConnection,
    jobs: mpsc::Sender<Job>,
    acks: AckQueue,
    config: Arc<Config>,
}

impl MessageRpc {
    /// Makes the service around a running writer's queue and acknowledgement task, with
    /// attachments stored in `attachments` (which may be `db`).
    pub fn new(
        db: DatabaseConnection,
        attachments: DatabaseConnection,
        jobs: mpsc::Sender<Job>,
        acks: AckQueue,
        config: Arc<Config>,
    ) -> Self {
        Self {
            db,
            attachments,
            jobs,
            acks,
            config,
        }
    }

    /// Checks that `user` may read and write `conversation`; returns its members.
    async fn authorise(&self, user: i64, conversation: i64) -> Result<Vec<i64>, Error> {
        let (kind, members) = conversation_members(&self.db, conversation)
            .await?
            .ok_or(Error::ConversationNotFound)?;
        logic::may_write(kind, &members, user)?;
        Ok(members)
    }
}

fn id(value: u64, what: &'static str) -> Result<i64, Error> {
    db_id(value).filter(|v| *v > 0).ok_or(Error::Invalid(what))
}

#[tonic::async_trait]
impl Message for MessageRpc {
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        let pending = self.submit(request.into_inner()).await?;
        Ok(Response::new(self.settle(pending).await?))
    }

    async fn send_batch(
        &self,
        request: Request<SendBatchRequest>,
    ) -> Result<Response<SendBatchResponse>, Status> {
        let sends = request.into_inner().sends;
        if sends.len() > self.config.send_batch_max {
            return Err(Error::TooLarge {
                what: "the batch",
                size: sends.len(),
                limit: self.config.send_batch_max,
            }
            .into());
        }
        // Everything is queued before anything is awaited, so the batch lands in as few
        // commits as the writer allows.
        let mut pending = Vec::with_capacity(sends.len());
        for send in sends {
            pending.push(self.submit(send).await);
        }
        let mut outcomes = Vec::with_capacity(pending.len());
        for submitted in pending {
            let settled = match submitted {
                Ok(pending) => self.settle(pending).await,
                Err(err) => Err(err),
            };
            outcomes.push(match settled {
                Ok(stored) => SendOutcome {
                    stored: Some(stored),
                    ..Default::default()
                },
                Err(err) => SendOutcome {
                    stored: None,
                    error: err.code().into(),
                    message: err.public_message(),
                },
            });
        }
        Ok(Response::new(SendBatchResponse { outcomes }))
    }

    async fn sync(&self, request: Request<SyncRequest>) -> Result<Response<SyncResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let mut budget = logic::PageBudget::new(
            logic::page_rows(request.limit, self.config.sync_page_max),
            self.config.page_max_bytes,
        );
        let conversations = user_conversations(&self.db, user)
            .await
            .map_err(Error::from)?;
        let cursors = conversations.iter().map(|&conversation| {
            let cursor = request
                .cursors
                .iter()
                .find(|c| c.conversation_id == wire_id(conversation))
                .and_then(|c| db_id(c.seq))
                .unwrap_or(0);
            (conversation, cursor)
        });
        let (rows, more) = store::sync_page(&self.db, user, cursors.collect(), &mut budget)
            .await
            .map_err(Error::from)?;
        let messages = rows.into_iter().map(to_wire).collect();
        Ok(Response::new(SyncResponse { messages, more }))
    }

    async fn ack_delivered(
        &self,
        request: Request<AckRequest>,
    ) -> Result<Response<AckResponse>, Status> {
        self.ack(request.into_inner(), false).await
    }

    async fn ack_read(
        &self,
        request: Request<AckRequest>,
    ) -> Result<Response<AckResponse>, Status> {
        self.ack(request.into_inner(), true).await
    }

    async fn history(
        &self,
        request: Request<HistoryRequest>,
    ) -> Result<Response<HistoryResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let conversation = id(request.conversation_id, "conversation id")?;
        self.authorise(user, conversation).await?;
        let before = db_id(request.before).ok_or(Error::Invalid("seq"))?;
        let mut budget = logic::PageBudget::new(
            logic::page_rows(request.limit, self.config.history_page_max),
            self.config.page_max_bytes,
        );
        let (rows, more) = store::page_before(&self.db, user, conversation, before, &mut budget)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(HistoryResponse {
            messages: rows.into_iter().map(to_wire).collect(),
            more,
        }))
    }

    async fn conversation_states(
        &self,
        request: Request<ConversationStatesRequest>,
    ) -> Result<Response<ConversationStatesResponse>, Status> {
        let user = id(request.into_inner().user_id, "user id")?;
        let conversations = user_conversations(&self.db, user)
            .await
            .map_err(Error::from)?;
        let rows = store::states(&self.db, user, conversations)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(ConversationStatesResponse {
            states: rows.iter().map(state_to_wire).collect(),
        }))
    }

    async fn upload_start(
        &self,
        request: Request<UploadStartRequest>,
    ) -> Result<Response<UploadStartResponse>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let limits = attachments::Limits {
            max_bytes: self.config.max_attachment_bytes,
            max_open: self.config.max_open_uploads,
        };
        let attachment = attachments::start(
            &self.attachments,
            user,
            request.size,
            &request.sha256,
            limits,
        )
        .await?;
        Ok(Response::new(UploadStartResponse {
            attachment_id: wire_id(attachment),
            chunk_size: attachments::CHUNK_LEN as u32,
        }))
    }

    async fn upload_chunk(
        &self,
        request: Request<UploadChunkRequest>,
    ) -> Result<Response<UploadProgress>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let attachment = id(request.attachment_id, "attachment id")?;
        let progress = attachments::chunk(
            &self.attachments,
            user,
            attachment,
            request.offset,
            &request.data,
        )
        .await?;
        Ok(Response::new(progress_to_wire(progress)))
    }

    async fn upload_status(
        &self,
        request: Request<UploadStatusRequest>,
    ) -> Result<Response<UploadProgress>, Status> {
        let request = request.into_inner();
        let user = id(request.user_id, "user id")?;
        let attachment = id(request.attachment_id, "attachment id")?;
        let progress = attachments::status(&self.attachments, user, attachment).await?;
        Ok(Response::new(progress_to_wire(progress)))
    }

    async fn download(
        &self,
        request: Request<DownloadRequest>,
    ) -> Result<Response<DownloadResponse>, Status> {
        let request = request.into_inner();
        id(request.user_id, "user id")?;
        let attachment = id(request.attachment_id, "attachment id")?;
        let max_len = usize::try_from(request.max_len).unwrap_or(usize::MAX);
        let (data, total) =
            attachments::download(&self.attachments, attachment, request.offset, max_len).await?;
        Ok(Response::new(DownloadResponse {
            attachment_id: request.attachment_id,
            offset: request.offset,
            total,
            data,
        }))
    }
}

/// Converts a stored row to the wire.
fn to_wire(row: entity::chat_history::Model) -> StoredMessage {
    StoredMessage {
        conversation_id: wire_id(row.conversation_id),
        seq: wire_id(row.seq),
        sender_id: wire_id(row.sender_id),
        client_msg_id: row.client_msg_id,
        sent_at: wire_id(row.sent_at),
        envelope: row.envelope,
    }
}

fn state_to_wire(row: &store::StateRow) -> ConversationState {
    ConversationState {
        conversation_id: wire_id(row.conversation),
        max_seq: wire_id(row.max_seq),
        delivered_seq: wire_id(row.delivered_seq),
        read_seq: wire_id(row.read_seq),
        last_message_at: wire_id(row.last_message_at),
    }
}

fn progress_to_wire(progress: attachments::Progress) -> UploadProgress {
    UploadProgress {
        attachment_id: wire_id(progress.id),
        received: progress.received,
        complete: progress.complete,
    }
}

/// A send handed to the writer, waiting for its commit.
struct Pending {
    outcome: oneshot::Receiver<Result<Outcome, Error>>,
}

impl MessageRpc {
    /// Checks a send and queues it for the writer.
    async fn submit(&self, request: SendRequest) -> Result<Pending, Error> {
        let sender = id(request.sender_id, "sender id")?;
        let conversation = id(request.conversation_id, "conversation id")?;
        if request.client_msg_id.len() != CLIENT_MSG_ID_LEN {
            return Err(Error::Invalid("a client message id is 16 bytes"));
        }
        if request.envelope.is_empty() {
            return Err(Error::Invalid("the message is empty"));
        }
        if request.envelope.len() > self.config.max_envelope_bytes {
            return Err(Error::TooLarge {
                what: "the message",
                size: request.envelope.len(),
                limit: self.config.max_envelope_bytes,
            });
        }
        // The writer authorises the send in the transaction that stores it, and checks the
        // envelope's recipients against the members it reads there.
        let shape = EnvelopeShape::of(&request.envelope)?;
        let (reply, outcome) = oneshot::channel();
        // Moved, not copied: the writer stores the envelope and hands it to the fan-out.
        let job = Job {
            sender,
            conversation,
            shape,
            client_msg_id: request.client_msg_id,
            envelope: request.envelope,
            reply,
        };
        self.jobs.send(job).await.map_err(|_| Error::ShuttingDown)?;
        Ok(Pending { outcome })
    }

    /// Waits for a queued send's commit (the writer has handed a fresh message to the
    /// fan-out by then, in the order it stored them).
    async fn settle(&self, pending: Pending) -> Result<SendResponse, Error> {
        let Outcome { stored, .. } = pending.outcome.await.map_err(|_| Error::ShuttingDown)??;
        Ok(SendResponse {
            seq: wire_id(stored.seq),
            sent_at: wire_id(stored.sent_at),
        })
    }

    async fn ack(&self, request: AckRequest, read: bool) -> Result<Response<AckResponse>, Status> {
        let ack = Ack {
            user: id(request.user_id, "user id")?,
            conversation: id(request.conversation_id, "conversation id")?,
            seq: db_id(request.seq).ok_or(Error::Invalid("seq"))?,
            read,
        };
        self.acks.ack(ack).await?;
        Ok(Response::new(AckResponse {}))
    }
}
