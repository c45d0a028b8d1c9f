//! `uchat-health`: asks a Uchat server process whether it is serving (gRPC health,
//! `grpc.health.v1`), for container health checks and scripts.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Asks a Uchat service (account-svc, social-svc, message-svc: their gRPC address) or a
/// gateway (its push address) whether it is serving. Exits 0 when it is, 1 when it answers
/// that it is not (a service whose database does not answer, a gateway not registered), 2
/// when it does not answer at all.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The process's gRPC address, `host:port` or a URL, e.g. `127.0.0.1:7003`.
    addr: String,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 2_000)]
    timeout_ms: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let url = if cli.addr.contains("://") {
        cli.addr.clone()
    } else {
        format!("http://{}", cli.addr)
    };
    let timeout = Duration::from_millis(cli.timeout_ms);
    let asked = tokio::time::timeout(timeout, check(url)).await;
    match asked {
        Ok(Ok(ServingStatus::Serving)) => {
            println!("{}: serving", cli.addr);
            ExitCode::SUCCESS
        }
        Ok(Ok(status)) => {
            println!("{}: {}", cli.addr, status.as_str_name().to_lowercase());
            ExitCode::from(1)
        }
        Ok(Err(err)) => {
            eprintln!("{}: no answer: {err}", cli.addr);
            ExitCode::from(2)
        }
        Err(_) => {
            eprintln!("{}: no answer within {} ms", cli.addr, cli.timeout_ms);
            ExitCode::from(2)
        }
    }
}

async fn check(url: String) -> Result<ServingStatus, Box<dyn std::error::Error>> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    Ok(ServingStatus::try_from(answer.into_inner().status).unwrap_or(ServingStatus::Unknown))
}
