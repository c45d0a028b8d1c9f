//! Calls that survive a message-svc replica dying: a call whose failure says the replica is
//! gone or did not answer in time is made again, up to [`ATTEMPTS`] times after a growing
//! wait, and the balanced channel sends it to a replica that answers. Only calls that are
//! safe to repeat come here: reads (`Sync`, `History`, `Download`, `UploadStatus`) and
//! `SendBatch`, whose repeats message-svc recognises by client message id. A refusal of the
//! request itself (not found, invalid, too large) is answered at once.

use std::future::Future;
use std::time::Duration;

use protocol::message::Error;

use crate::convert::{status_to_error, unavailable};

/// Calls made before the request is answered `Unavailable`.
pub const ATTEMPTS: u32 = 4;

/// The wait before the second call, doubled before each further one (100, 200, 400 ms): time
/// for the balancer to see a dead replica's connection fail, or for the next resolution to
/// drop its address, so the next call goes to one that answers.
pub const BACKOFF: Duration = Duration::from_millis(100);

/// Makes `call` (named `what` in the logs and metrics), each attempt bounded by `timeout`,
/// again while it fails as a dead or slow replica does.
pub async fn repeatable<T, Fut>(
    what: &'static str,
    timeout: Duration,
    mut call: impl FnMut() -> Fut,
) -> Result<T, Error>
where
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut last = unavailable();
    for attempt in 1..=ATTEMPTS {
        if attempt > 1 {
            metrics::counter!(crate::telemetry::RETRIES, "call" => what).increment(1);
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 2)).await;
        }
        match tokio::time::timeout(timeout, call()).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) if replica_failed(status.code()) => {
                tracing::warn!(attempt, what, %status, "a call failed; trying another replica");
                // Said to the client as what it is, a service to try again later: a replica
                // that died mid-call shows as `Unknown`, which would read as a server bug.
                last = unavailable();
            }
            Ok(Err(status)) => return Err(status_to_error(&status)),
            Err(_) => {
                tracing::warn!(attempt, what, "a call timed out; trying another replica");
                last = unavailable();
            }
        }
    }
    Err(last)
}

/// Whether a failed call's code means the replica died or dropped the call, rather than a
/// refusal of the request.
fn replica_failed(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use protocol::message::ErrorCode;
    use tonic::{Code, Status};

    use super::*;

    /// Runs `repeatable` over calls that answer `answers` in turn; returns its result and how
    /// many calls it made.
    async fn run(answers: &[Code]) -> (Result<(), Error>, u32) {
        let calls = AtomicU32::new(0);
        let result = repeatable("test", Duration::from_secs(1), || {
            let n = calls.fetch_add(1, Ordering::Relaxed) as usize;
            let code = answers.get(n).copied().unwrap_or(Code::Ok);
            async move {
                match code {
                    Code::Ok => Ok(tonic::Response::new(())),
                    code => Err(Status::new(code, "said by the replica")),
                }
            }
        })
        .await;
        (result, calls.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_replica_is_called_again_until_one_answers() {
        let (result, calls) = run(&[Code::Unknown, Code::Unavailable]).await;
        assert!(result.is_ok());
        assert_eq!(calls, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_answered_at_once() {
        let (result, calls) = run(&[Code::InvalidArgument]).await;
        assert_eq!(result.unwrap_err().code, ErrorCode::Internal);
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn replicas_dead_on_every_attempt_read_as_unavailable() {
        let (result, calls) = run(&[Code::Unknown; ATTEMPTS as usize]).await;
        assert_eq!(result.unwrap_err().code, ErrorCode::Unavailable);
        assert_eq!(calls, ATTEMPTS);
    }
}
