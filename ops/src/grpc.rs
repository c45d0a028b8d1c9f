//! How every process accepts gRPC connections on a listener it bound itself.
//!
//! Every internal server (the services, the gateway's push server) is given a listener its
//! process bound, so that tests and operators can pass port 0 and learn the port. tonic's
//! `Server::tcp_nodelay` does not apply to connections from such a listener, only to the ones
//! it binds itself, so it is set here: without `TCP_NODELAY` a call whose request or answer
//! spans several segments (a `Deliver` of many messages, a file chunk) waits for the peer's
//! delayed acknowledgement, about 40 ms on Linux, on every such call.

use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

/// The connections `listener` accepts, each with `TCP_NODELAY` set.
pub fn incoming(listener: TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_to_coalesce_writes() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = super::incoming(listener);
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(accepted.nodelay().unwrap());
    }
}
