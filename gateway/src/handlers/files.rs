//! Attachments: uploads in chunks (resumable through `UploadStatus`) and downloads, one chunk
//! per request.

use proto::message::{
    DownloadRequest, UploadChunkRequest, UploadProgress, UploadStartRequest, UploadStatusRequest,
};
use protocol::AttachmentId;
use protocol::message::{Error, Response};
use serde_bytes::ByteBuf;

use super::{Ctx, call};
use crate::retry::repeatable;

pub async fn upload_start(cx: Ctx, size: u64, sha256: [u8; 32]) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = UploadStartRequest {
        user_id: cx.user_id(),
        size,
        sha256: sha256.to_vec(),
    };
    let mut message = shared.services.message.clone();
    let started = call(shared.request_timeout(), message.upload_start(request)).await?;
    Ok(Response::UploadStarted {
        attachment: AttachmentId(started.attachment_id),
        chunk_size: started.chunk_size,
    })
}

pub async fn upload_chunk(
    cx: Ctx,
    attachment: AttachmentId,
    offset: u64,
    data: ByteBuf,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = UploadChunkRequest {
        user_id: cx.user_id(),
        attachment_id: attachment.0,
        offset,
        data: data.into_vec(),
    };
    let mut message = shared.services.message.clone();
    let progress = call(shared.request_timeout(), message.upload_chunk(request)).await?;
    Ok(upload_progress(progress))
}

pub async fn upload_status(cx: Ctx, attachment: AttachmentId) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = UploadStatusRequest {
        user_id: cx.user_id(),
        attachment_id: attachment.0,
    };
    let progress = repeatable("UploadStatus", shared.request_timeout(), || {
        let mut message = shared.services.message.clone();
        async move { message.upload_status(request).await }
    })
    .await?;
    Ok(upload_progress(progress))
}

pub async fn download(
    cx: Ctx,
    attachment: AttachmentId,
    offset: u64,
    max_len: u32,
) -> Result<Response, Error> {
    let shared = &cx.conn.shared;
    let request = DownloadRequest {
        user_id: cx.user_id(),
        attachment_id: attachment.0,
        offset,
        max_len,
    };
    let chunk = repeatable("Download", shared.request_timeout(), || {
        let mut message = shared.services.message.clone();
        async move { message.download(request).await }
    })
    .await?;
    Ok(Response::Chunk {
        attachment,
        offset: chunk.offset,
        total: chunk.total,
        data: ByteBuf::from(chunk.data),
    })
}

fn upload_progress(progress: UploadProgress) -> Response {
    Response::UploadProgress {
        attachment: AttachmentId(progress.attachment_id),
        received: progress.received,
        complete: progress.complete,
    }
}
