//! The gateway's series (served by `ops::metrics` when `--metrics-listen` is given), each
//! recorded where the thing happens. What to watch is in docs/ARCHITECTURE.md.

/// Client connections open (handshaking, logged in or not).
pub const CONNECTIONS: &str = "uchat_gateway_connections";
/// Logged-in sessions held by this gateway.
pub const SESSIONS: &str = "uchat_gateway_sessions";
/// Handshakes, by `result`: `ok`, `failed`, `timeout`.
pub const HANDSHAKES: &str = "uchat_gateway_handshakes_total";
/// Client requests answered, by `kind` (the request's name) and `result` (`ok`, `error`).
pub const REQUESTS: &str = "uchat_gateway_requests_total";
/// From reading a request to its answer being queued, by `kind`.
pub const REQUEST_SECONDS: &str = "uchat_gateway_request_seconds";
/// Requests refused by a rate limit, by `limit`.
pub const RATE_LIMITED: &str = "uchat_gateway_rate_limited_total";
/// Bytes queued to clients and not yet written, over every connection.
pub const OUTBOUND_BYTES: &str = "uchat_gateway_outbound_bytes";
/// Sends coalesced into one `SendBatch` call.
pub const SEND_BATCH_SIZE: &str = "uchat_gateway_send_batch_size";
/// message-svc calls made again after a replica failed, by `call` (see [`RETRIED_CALLS`]).
pub const RETRIES: &str = "uchat_gateway_retries_total";
/// The calls [`crate::retry`] makes again, as named in [`RETRIES`].
pub const RETRIED_CALLS: [&str; 5] = ["SendBatch", "Sync", "History", "Download", "UploadStatus"];
/// Addresses a service's name currently resolves to, by `service`.
pub const REPLICAS: &str = "uchat_gateway_replicas";

/// The rate limits' names in [`RATE_LIMITED`].
pub const LIMITS: [&str; 4] = ["auth", "friend_requests", "searches", "messages"];

/// Makes every series exist from the start (counters at zero), so a dashboard or an alert
/// sees a zero rather than nothing before the first event.
pub fn register() {
    for limit in LIMITS {
        metrics::counter!(RATE_LIMITED, "limit" => limit).absolute(0);
    }
    for result in ["ok", "failed", "timeout"] {
        metrics::counter!(HANDSHAKES, "result" => result).absolute(0);
    }
    for call in RETRIED_CALLS {
        metrics::counter!(RETRIES, "call" => call).absolute(0);
    }
    metrics::gauge!(CONNECTIONS).increment(0.0);
    metrics::gauge!(SESSIONS).increment(0.0);
    metrics::gauge!(OUTBOUND_BYTES).increment(0.0);
}

/// Counts one open connection while alive.
#[derive(Debug)]
pub struct ConnectionOpen(());

impl ConnectionOpen {
    /// A connection was accepted.
    pub fn accepted() -> Self {
        metrics::gauge!(CONNECTIONS).increment(1.0);
        Self(())
    }
}

impl Drop for ConnectionOpen {
    fn drop(&mut self) {
        metrics::gauge!(CONNECTIONS).decrement(1.0);
    }
}

/// Counts a handshake's outcome.
pub fn handshake(result: &'static str) {
    metrics::counter!(HANDSHAKES, "result" => result).increment(1);
}

/// Counts a refusal by the rate limit on `limit`.
pub fn rate_limited(limit: &'static str) {
    metrics::counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// Records an answered request.
pub fn request(kind: &'static str, ok: bool, took: std::time::Duration) {
    let result = if ok { "ok" } else { "error" };
    metrics::counter!(REQUESTS, "kind" => kind, "result" => result).increment(1);
    metrics::histogram!(REQUEST_SECONDS, "kind" => kind).record(took.as_secs_f64());
}

/// `bytes` more (or, negative, fewer) are queued to clients.
pub fn outbound(bytes: f64) {
    metrics::gauge!(OUTBOUND_BYTES).increment(bytes);
}
