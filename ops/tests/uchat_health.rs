//! `uchat-health`, the probe container health checks run: its exit code says serving (0),
//! not serving (1) or no answer (2).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use tonic_health::ServingStatus;

fn probe(addr: &str) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_uchat-health"))
        .args([addr, "--timeout-ms", "3000"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap(), text)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_exit_code_follows_the_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (reporter, service) = tonic_health::server::health_reporter();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let addr_ = addr.clone();
    let (code, text) = tokio::task::spawn_blocking(move || probe(&addr_))
        .await
        .unwrap();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("serving"), "{text}");

    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let addr_ = addr.clone();
    let (code, text) = tokio::task::spawn_blocking(move || probe(&addr_))
        .await
        .unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("not_serving"), "{text}");

    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = nobody.local_addr().unwrap().to_string();
    drop(nobody);
    let (code, text) = tokio::task::spawn_blocking(move || probe(&closed))
        .await
        .unwrap();
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no answer"), "{text}");
}
