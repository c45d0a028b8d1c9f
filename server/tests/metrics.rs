//! `uchat-server --metrics-listen` serves the same Prometheus series as the split stack's
//! processes, from its one process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};

#[cfg(unix)]
#[test]
fn the_metrics_endpoint_answers_with_every_part_s_series() {
    let dir = tempfile::tempdir().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = free.local_addr().unwrap();
    drop(free);
    let mut server = Command::new(env!("CARGO_BIN_EXE_uchat-server"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen", "127.0.0.1:0"])
        .args(["--metrics-listen", &metrics.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    ops::testing::wait_for_line(&mut server, "Uchat server listening");

    // The gateway registers with account-svc just after the server says it listens.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = scrape(metrics);
        if text.contains("uchat_rpc_requests_total") || std::time::Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = ops::testing::terminate(&mut server, std::time::Duration::from_secs(10));

    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for series in [
        // The gateway registering with account-svc is a gRPC call like any other.
        "uchat_rpc_requests_total",
        "uchat_gateway_connections",
        "uchat_gateway_sessions",
        "uchat_gateway_handshakes_total",
        "uchat_gateway_rate_limited_total",
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
}

fn scrape(addr: std::net::SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}
