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
                last = status_to_error(&status);
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
