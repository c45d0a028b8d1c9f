//! Prometheus metrics. Every server process records its series through the `metrics` crate's
//! macros wherever the thing measured happens; they cost one atomic load while no exporter is
//! installed, so a process started without `--metrics-listen` (the default) pays nothing. With
//! it, [`serve`] answers `GET /metrics` in Prometheus's text format on that address.
//!
//! The endpoint has no authentication: bind it to an address only the monitoring network
//! reaches (docs/SECURITY.md). Series names start with `uchat_`; docs/ARCHITECTURE.md lists
//! them and what to watch.
//!
//! [`RpcMetricsLayer`] measures every gRPC call a server answers, by method and status.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

/// gRPC calls answered, by `method` (its path) and `code` (the gRPC status, `0` for OK).
pub const RPC_REQUESTS: &str = "uchat_rpc_requests_total";
/// How long gRPC calls took to answer, by `method`.
pub const RPC_SECONDS: &str = "uchat_rpc_seconds";

/// Histogram buckets, in seconds, of every `*_seconds` series: from half a millisecond (a
/// cached answer on loopback) to ten seconds (past every request timeout).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Histogram buckets of every `*_size` series (batch sizes, in items).
pub const SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Why the metrics endpoint could not start.
#[derive(Debug)]
pub struct MetricsError(String);

impl std::fmt::Display for MetricsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MetricsError {}

/// Installs the process's recorder and serves `GET /metrics` on `listen` (must be called
/// within a tokio runtime, once per process).
pub fn serve(listen: SocketAddr) -> Result<(), MetricsError> {
    let failed = |err: &dyn std::fmt::Display| {
        MetricsError(format!("cannot serve metrics on {listen}: {err}"))
    };
    // Bound first, so a taken address is an error that names it rather than a log line later.
    std::net::TcpListener::bind(listen).map_err(|e| failed(&e))?;
    PrometheusBuilder::new()
        .with_http_listener(listen)
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_size".into()), SIZE_BUCKETS))
        .map_err(|e| failed(&e))?
        .install()
        .map_err(|e| failed(&e))?;
    tracing::info!(%listen, "serving metrics");
    Ok(())
}

/// Every server binary's metrics flag.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Args {
    /// Serve Prometheus metrics at http://ADDR/metrics (off by default). The endpoint has
    /// no authentication: use an address only monitoring reaches, e.g. `127.0.0.1:9100`.
    #[arg(
        long = "metrics-listen",
        env = "UCHAT_METRICS_LISTEN",
        value_name = "ADDR"
    )]
    pub metrics_listen: Option<SocketAddr>,
}

impl Args {
    /// Serves metrics if the flag was given (within a tokio runtime).
    pub fn serve(&self) -> Result<(), MetricsError> {
        self.metrics_listen.map_or(Ok(()), serve)
    }
}

/// A tower layer for tonic servers: counts every call by method and status and records its
/// latency ([`RPC_REQUESTS`], [`RPC_SECONDS`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

/// The service [`RpcMetricsLayer`] wraps around a server's routes.
#[derive(Debug, Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            // An error answered at once travels in the headers; an OK one in the trailers.
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Err(_) => "transport".to_owned(),
            };
            metrics::histogram!(RPC_SECONDS, "method" => method.clone())
                .record(started.elapsed().as_secs_f64());
            metrics::counter!(RPC_REQUESTS, "method" => method, "code" => code).increment(1);
            result
        })
    }
}
