//! Files and images: content sealed chunk by chunk and uploaded (resumed after a lost
//! connection), downloads checked against the sender's SHA-256, progress reported, and the
//! image cache folder (F10).

use std::path::PathBuf;
use std::time::Duration;

use protocol::e2e::{
    self, ATTACHMENT_CHUNK_PLAINTEXT, AttachmentRef, Body, CONTENT_KEY_LEN, Content, ContentKey,
    ImageFormat,
};
use protocol::message::{Request, Response};
use protocol::{ClientMsgId, ConversationId, Seq};
use serde_bytes::ByteBuf;

use crate::client::{Client, io, unexpected};
use crate::error::ClientError;

/// Content up to this size travels inside the message; larger content is an attachment.
pub const INLINE_MAX: usize = 32 * 1024;

/// Longest an interrupted upload waits for the connection to come back.
pub const UPLOAD_RESUME_WAIT: Duration = Duration::from_secs(60);

/// Size of one sealed attachment chunk (what the server stores per chunk).
pub const SEALED_CHUNK_LEN: usize = ATTACHMENT_CHUNK_PLAINTEXT + e2e::CHUNK_OVERHEAD;

impl Client {
    /// Sends a file: an image (recognised by its bytes, shown inline) or any other file. Large
    /// content is uploaded as an encrypted attachment first; `progress` gets (sent, total).
    pub async fn send_file(
        &self,
        conversation: ConversationId,
        name: &str,
        bytes: &[u8],
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Seq, ClientError> {
        let id = ClientMsgId::random();
        let (seq, _) = self
            .send_file_with_id(conversation, id, name, bytes, progress)
            .await?;
        Ok(seq)
    }

    /// Like [`Client::send_file`] under the caller's id for the message; returns the body
    /// sent, for the sender's own history view.
    pub async fn send_file_with_id(
        &self,
        conversation: ConversationId,
        client_msg_id: ClientMsgId,
        name: &str,
        bytes: &[u8],
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<(Seq, Body), ClientError> {
        let content = if bytes.len() <= INLINE_MAX {
            progress(bytes.len() as u64, bytes.len() as u64);
            Content::Inline(ByteBuf::from(bytes.to_vec()))
        } else {
            Content::Attachment(self.upload(bytes, &progress).await?)
        };
        let body = match ImageFormat::sniff(bytes) {
            Some(format) => Body::Image {
                name: name.to_owned(),
                format,
                content,
            },
            None => Body::File {
                name: name.to_owned(),
                size: bytes.len() as u64,
                content,
            },
        };
        let seq = self
            .send_with_id(conversation, client_msg_id, body.clone())
            .await?;
        Ok((seq, body))
    }

    /// Encrypts and uploads `bytes` as an attachment, resuming after a lost connection.
    async fn upload(
        &self,
        bytes: &[u8],
        progress: &(impl Fn(u64, u64) + Send + Sync),
    ) -> Result<AttachmentRef, ClientError> {
        let key = ContentKey::generate()?;
        // Sealed and hashed a chunk at a time, yielding between chunks: a whole file's work in
        // one step (or a copy of it for another thread) would hold this task's thread, and
        // every task sharing it, for tens of milliseconds.
        let mut chunks = Vec::with_capacity(bytes.len().div_ceil(ATTACHMENT_CHUNK_PLAINTEXT));
        let (mut cipher_sha, mut plain_sha) = (e2e::Checksum::default(), e2e::Checksum::default());
        for (index, plain) in (0u64..).zip(bytes.chunks(ATTACHMENT_CHUNK_PLAINTEXT)) {
            let sealed = key.seal_chunk(index, plain);
            plain_sha.update(plain);
            cipher_sha.update(&sealed);
            chunks.push(sealed);
            tokio::task::yield_now().await;
        }
        let (cipher_sha, plain_sha) = (cipher_sha.finish(), plain_sha.finish());
        let total: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        let (attachment, chunk_size) = match self
            .request(Request::UploadStart {
                size: total,
                sha256: cipher_sha,
            })
            .await?
        {
            Response::UploadStarted {
                attachment,
                chunk_size,
            } => (attachment, chunk_size),
            other => return Err(unexpected(other)),
        };
        if chunk_size as usize != SEALED_CHUNK_LEN {
            return Err(ClientError::Invalid(format!(
                "the server stores chunks of {chunk_size} bytes; this client seals {SEALED_CHUNK_LEN}"
            )));
        }
        let mut received = 0u64;
        progress(0, total);
        while received < total {
            let index = usize::try_from(received / chunk_size as u64).unwrap_or(usize::MAX);
            let Some(chunk) = chunks.get(index) else {
                return Err(ClientError::Invalid(
                    "the server reports a bad offset".into(),
                ));
            };
            let request = Request::UploadChunk {
                attachment,
                offset: received,
                data: ByteBuf::from(chunk.clone()),
            };
            match self.request(request).await {
                Ok(Response::UploadProgress { received: now, .. }) => received = now,
                Ok(other) => return Err(unexpected(other)),
                Err(err) if err.is_transient() => {
                    // Wait for the reconnect, then ask where the upload stands.
                    self.wait_connected(UPLOAD_RESUME_WAIT).await?;
                    match self.request(Request::UploadStatus { attachment }).await? {
                        Response::UploadProgress { received: now, .. } => received = now,
                        other => return Err(unexpected(other)),
                    }
                }
                Err(err) => return Err(err),
            }
            progress(received, total);
        }
        Ok(AttachmentRef {
            id: attachment,
            size: bytes.len() as u64,
            key: ByteBuf::from(key.to_bytes().to_vec()),
            sha256: plain_sha,
        })
    }

    /// Downloads and decrypts an attachment; `progress` gets (received, total).
    pub async fn download(
        &self,
        attachment: &AttachmentRef,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<Vec<u8>, ClientError> {
        let key_bytes: &[u8; CONTENT_KEY_LEN] = attachment
            .key
            .as_slice()
            .try_into()
            .map_err(|_| ClientError::Invalid("the attachment's key is malformed".into()))?;
        let key = ContentKey::from_bytes(key_bytes);
        // The size comes from another user's message: allocate by what arrives, never by it.
        let mut plain = Vec::with_capacity(SEALED_CHUNK_LEN);
        // Hashed chunk by chunk: hashing the whole file at the end would hold this task's
        // thread, and every task sharing it, for tens of milliseconds.
        let mut checksum = e2e::Checksum::default();
        let mut offset = 0u64;
        let mut index = 0u64;
        loop {
            let request = Request::Download {
                attachment: attachment.id,
                offset,
                max_len: SEALED_CHUNK_LEN as u32,
            };
            let (total, data) = match self.request(request).await? {
                Response::Chunk { total, data, .. } => (total, data),
                other => return Err(unexpected(other)),
            };
            if data.is_empty() {
                break;
            }
            let opened = key.open_chunk(index, &data)?;
            checksum.update(&opened);
            plain.extend_from_slice(&opened);
            if plain.len() as u64 > attachment.size {
                return Err(ClientError::Invalid(
                    "the server sent more than the file's size".into(),
                ));
            }
            offset += data.len() as u64;
            index += 1;
            progress(offset, total);
            if offset >= total {
                break;
            }
        }
        if checksum.finish() != attachment.sha256 {
            return Err(ClientError::Invalid(
                "the downloaded file does not match its checksum".into(),
            ));
        }
        Ok(plain)
    }

    /// The bytes of a message's content: inline, or downloaded.
    pub async fn content(&self, content: &Content) -> Result<Vec<u8>, ClientError> {
        match content {
            Content::Inline(bytes) => Ok(bytes.to_vec()),
            Content::Attachment(attachment) => self.download(attachment, |_, _| {}).await,
        }
    }

    /// The path of an image in the image cache folder, fetching it the first time (F10).
    pub async fn cached_image(
        &self,
        format: ImageFormat,
        content: &Content,
    ) -> Result<PathBuf, ClientError> {
        let id = match content {
            Content::Inline(bytes) => e2e::sha256(bytes),
            Content::Attachment(attachment) => attachment.sha256,
        };
        let extension = match format {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Gif => "gif",
            ImageFormat::Bmp => "bmp",
            ImageFormat::WebP => "webp",
        };
        let dir = self.inner.config.data_dir.join("images");
        let path = dir.join(format!("{}.{extension}", hex::encode(id)));
        if path.exists() {
            return Ok(path);
        }
        let bytes = self.content(content).await?;
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        std::fs::write(&path, bytes).map_err(io(&path))?;
        Ok(path)
    }
}
