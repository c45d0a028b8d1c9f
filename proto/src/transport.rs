//! Where an internal client's calls go: over the network to another process (a tonic
//! [`Channel`]), or straight into a service built in the same process.
//!
//! `uchat-server` runs every part in one process. Over loopback, each internal call paid for
//! HTTP/2 framing, two sockets and a hand-off to the server's connection task; a message
//! crosses two such calls on its way (gateway to message-svc, message-svc to the gateway):
//! 0.48 ms of a lone message's 2.3, against 0.10 ms in process (docs/BENCHMARKS.md). In
//! process, the same call is the same call: encoded by `proto`'s generated client, decoded by
//! its generated server, checked for the internal key and counted by the layers its server
//! would put around it; only the bytes' trip through the kernel and the connection's tasks is
//! gone. The handler runs in the caller's task, and is dropped with it, as a server drops the
//! handler of a call its client reset.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::body::Body;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

/// Any error a transport reports.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A service of the same process, as its server would see the calls.
type Local = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, BoxError>;

/// Where a client's calls go. Cheap to clone.
#[derive(Clone)]
pub enum Transport {
    /// Over the network, to another process (or to this one's listener).
    Network(Channel),
    /// Into a service built in this process.
    InProcess(Local),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Network(channel) => f.debug_tuple("Network").field(channel).finish(),
            Self::InProcess(_) => f.write_str("InProcess"),
        }
    }
}

impl Transport {
    /// Calls into `service`, a generated server (with whatever layers its own server would put
    /// around it: the internal key's check, metrics).
    pub fn in_process<S, B>(service: S) -> Self
    where
        S: Service<http::Request<Body>, Response = http::Response<B>> + Clone + Send + Sync,
        S: 'static,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let service = service
            .map_response(|response| response.map(Body::new))
            .map_err(Into::into);
        Self::InProcess(BoxCloneSyncService::new(service))
    }
}

impl From<Channel> for Transport {
    fn from(channel: Channel) -> Self {
        Self::Network(channel)
    }
}

impl Service<http::Request<Body>> for Transport {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Self::Network(channel) => channel.poll_ready(cx).map_err(Into::into),
            Self::InProcess(service) => service.poll_ready(cx),
        }
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        match self {
            Self::Network(channel) => {
                let call = channel.call(request);
                // The channel's own error, boxed as it is: callers downcast it.
                Box::pin(async move { call.await.map_err(Into::into) })
            }
            Self::InProcess(service) => service.call(request),
        }
    }
}
