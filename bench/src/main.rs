//! `uchat-bench`: Uchat's load generator and benchmark driver. It talks to a running server
//! over loopback, as clients on other machines would, and reads the server's memory from
//! `/proc` when the server runs here.
//!
//! ```text
//! uchat-bench hold --server 127.0.0.1:7878      memory an attacker can make the server hold
//! uchat-bench chat --rate 20                     latency and delivery of paced chat
//! uchat-bench handshake                          handshakes per second through the gateway
//! ```

mod chat;
mod handshake;
mod hold;
mod raw;
mod rss;

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// Measures a running Uchat server from outside. Every run is bounded in time and count and
/// talks to loopback addresses only.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
    /// The server's client address.
    #[arg(long, global = true, default_value = "127.0.0.1:7878")]
    server: SocketAddr,
    /// Print one JSON object on the last line instead of a table.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Scenario {
    /// How much memory attackers can make the server hold (silent connections that never
    /// log in; logged-in readers who request large pages and never read), and whether the
    /// server returns it once they are gone. Reads the server's memory from /proc, so the
    /// server must run on this machine.
    Hold(hold::Options),
    /// Clients in pairs chatting through the server on the real client path (end-to-end
    /// sealed; the clients keep their history in memory): delivered messages per second,
    /// send-to-receipt latency, and lost, duplicated and out-of-order counts, which must be
    /// zero. Paced at --rate (open loop, latency from each send's scheduled time) or flat out
    /// with --window sends in flight per sender. Start the server with limits that let the
    /// load through: `uchat-server --messages-per-minute 100000000 --auth-per-minute 1000000
    /// --max-connections-per-ip 5000 --client-kdf-memory-kib 8 --client-kdf-iterations 1
    /// --argon2-memory-kib 1024 --argon2-iterations 1` (every client connects from
    /// 127.0.0.1; password stretching is cheapened because this scenario measures messaging,
    /// and account-svc's login benchmark measures logins).
    Chat(chat::Options),
    /// Handshakes per second through the gateway: workers connecting (each from its own
    /// loopback address), handshaking and closing, over and over. No login.
    Handshake(handshake::Options),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.server.ip().is_loopback() {
        anyhow::bail!("uchat-bench only talks to loopback addresses (127.0.0.0/8, ::1)");
    }
    match &cli.scenario {
        Scenario::Handshake(options) => {
            let report = handshake::run(cli.server, options).await?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "{} workers: {} handshakes = {:.0}/s, {} failed; latency ms p50 {:.2} p99 {:.2} max {:.2}",
                    report.clients,
                    report.handshakes,
                    report.handshakes_per_sec,
                    report.failed,
                    report.p50_ms,
                    report.p99_ms,
                    report.max_ms
                );
            }
        }
        Scenario::Chat(options) => {
            let report = chat::run(cli.server, options, cli.json).await?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_chat(&report);
            }
        }
        Scenario::Hold(options) => {
            let report = hold::run(cli.server, options).await?;
            if cli.json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_hold(&report);
            }
        }
    }
    Ok(())
}

fn print_chat(report: &chat::Report) {
    let offered = if report.offered_per_sec > 0.0 {
        format!("{:.0}/s offered", report.offered_per_sec)
    } else {
        "flat out".to_owned()
    };
    println!("{} clients, {offered}", report.clients);
    println!(
        "sent {}, delivered {} = {:.0} delivered/s",
        report.sent, report.delivered, report.delivered_per_sec
    );
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        report.p50_ms, report.p90_ms, report.p99_ms, report.max_ms
    );
    println!(
        "lost {}  duplicated {}  out of order {}  failed sends {}",
        report.lost, report.duplicated, report.out_of_order, report.failed
    );
}

fn print_hold(report: &hold::Report) {
    println!("{:<36} {:>10} {:>10}", "after", "RSS MiB", "vs start");
    for sample in &report.samples {
        println!(
            "{:<36} {:>10.1} {:>+10.1}",
            sample.phase, sample.rss_mib, sample.delta_mib
        );
    }
    println!(
        "peak RSS since the server started: {:.1} MiB",
        report.peak_mib
    );
    println!(
        "silent connections held: {}; readers closed by the server: {}",
        report.silent_held, report.readers_closed
    );
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_well_formed_and_unique() {
        super::Cli::command().debug_assert();
    }
}
