//! Attachments in message-svc over real gRPC, against SQLite (memory and file) and
//! PostgreSQL: resumable, verified uploads and the refusals that leave nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use entity::{attachment, attachment_chunk};
use message_svc::attachments::CHUNK_LEN;
use proto::common::ErrorCode;
use proto::message::message_client::MessageClient;
use proto::message::*;
use sea_orm::{EntityTrait, PaginatorTrait};
use service_kit::status::error_code;
use service_kit::testing::{self, databases};
use sha2::{Digest, Sha256};

use common::*;

fn upload_chunk(user: u64, attachment: u64, offset: u64, data: &[u8]) -> UploadChunkRequest {
    UploadChunkRequest {
        user_id: user,
        attachment_id: attachment,
        offset,
        data: data.to_vec(),
    }
}

#[tokio::test]
async fn an_interrupted_upload_resumes_and_is_verified() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let (ivy, jo) = (
            stack.user("ivy", false).await,
            stack.user("jo", false).await,
        );
        let content: Vec<u8> = (0..2 * CHUNK_LEN + 1000).map(|i| (i % 251) as u8).collect();
        let started = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: ivy,
                size: content.len() as u64,
                sha256: Sha256::digest(&content).to_vec(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(started.chunk_size as usize, CHUNK_LEN, "{}", test.backend);
        let id = started.attachment_id;
        let chunks: Vec<&[u8]> = content.chunks(CHUNK_LEN).collect();
        let progress = stack
            .message
            .upload_chunk(upload_chunk(ivy, id, 0, chunks[0]))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (progress.received, progress.complete),
            (CHUNK_LEN as u64, false)
        );

        // The connection drops; a new one asks where the upload stands.
        let mut again = MessageClient::new(testing::channel(&stack.message_url).await);
        let status = again
            .upload_status(UploadStatusRequest {
                user_id: ivy,
                attachment_id: id,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(status.received, CHUNK_LEN as u64);
        // Someone else's upload does not exist for them; not yet complete, not downloadable.
        let status = again
            .upload_status(UploadStatusRequest {
                user_id: jo,
                attachment_id: id,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::AttachmentNotFound);
        let status = again
            .download(DownloadRequest {
                user_id: jo,
                attachment_id: id,
                offset: 0,
                max_len: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::AttachmentNotFound);
        // A repeated chunk, a chunk of the wrong length.
        let status = again
            .upload_chunk(upload_chunk(ivy, id, 0, chunks[0]))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::UploadOffsetMismatch);
        assert!(
            status.message().contains(&CHUNK_LEN.to_string()),
            "{}",
            status.message()
        );
        let status = again
            .upload_chunk(upload_chunk(ivy, id, CHUNK_LEN as u64, &chunks[1][..10]))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::InvalidRequest);

        for (index, chunk) in chunks.iter().enumerate().skip(1) {
            let progress = again
                .upload_chunk(upload_chunk(ivy, id, (index * CHUNK_LEN) as u64, chunk))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(progress.complete, index == chunks.len() - 1);
        }
        // Its answer lost, the last chunk is sent again: still complete, nothing doubled.
        let progress = again
            .upload_chunk(upload_chunk(ivy, id, (2 * CHUNK_LEN) as u64, chunks[2]))
            .await
            .unwrap()
            .into_inner();
        assert!(progress.complete);

        // Anyone holding the id downloads it (it is ciphertext; the key is in the message).
        let mut downloaded = Vec::new();
        loop {
            let piece = again
                .download(DownloadRequest {
                    user_id: jo,
                    attachment_id: id,
                    offset: downloaded.len() as u64,
                    max_len: 100_000,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(piece.total, content.len() as u64);
            if piece.data.is_empty() {
                break;
            }
            assert!(piece.data.len() <= 100_000);
            downloaded.extend(piece.data);
        }
        assert!(downloaded == content, "downloaded bytes differ");
        let past_end = again
            .download(DownloadRequest {
                user_id: jo,
                attachment_id: id,
                offset: content.len() as u64 + 1,
                max_len: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&past_end), ErrorCode::InvalidRequest);
        assert_eq!(
            past_end.message(),
            format!(
                "the file has {} bytes; ask for an offset up to that",
                content.len()
            )
        );
        assert_eq!(
            attachment_chunk::Entity::find()
                .count(&stack.db)
                .await
                .unwrap(),
            3
        );
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing() {
    for test in databases().await {
        let mut stack = start(test.db).await;
        let kai = stack.user("kai", false).await;
        let status = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: MAX_ATTACHMENT + 1,
                sha256: vec![0; 32],
            })
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::TooLarge, "{}", test.backend);
        assert!(
            status.message().contains(&MAX_ATTACHMENT.to_string()),
            "{}",
            status.message()
        );
        assert_eq!(
            attachment::Entity::find().count(&stack.db).await.unwrap(),
            0
        );

        // All bytes arrive but they are not the declared ones: refused and deleted.
        let content = vec![7u8; 1000];
        let id = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: 1000,
                sha256: Sha256::digest(b"something else").to_vec(),
            })
            .await
            .unwrap()
            .into_inner()
            .attachment_id;
        let status = stack
            .message
            .upload_chunk(upload_chunk(kai, id, 0, &content))
            .await
            .unwrap_err();
        assert_eq!(error_code(&status), ErrorCode::ChecksumMismatch);
        assert_eq!(
            attachment::Entity::find().count(&stack.db).await.unwrap(),
            0
        );
        assert_eq!(
            attachment_chunk::Entity::find()
                .count(&stack.db)
                .await
                .unwrap(),
            0
        );

        // Too many unfinished uploads.
        let limit = message_svc::Config::default().max_open_uploads;
        for _ in 0..limit {
            stack
                .message
                .upload_start(UploadStartRequest {
                    user_id: kai,
                    size: 10,
                    sha256: vec![0; 32],
                })
                .await
                .unwrap();
        }
        let status = stack
            .message
            .upload_start(UploadStartRequest {
                user_id: kai,
                size: 10,
                sha256: vec![0; 32],
            })
            .await
            .unwrap_err();
        assert!(
            status.message().contains("unfinished"),
            "{}",
            status.message()
        );
    }
}
