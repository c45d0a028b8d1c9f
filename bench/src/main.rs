//! `uchat-bench`: Uchat's load generator and benchmark driver. It talks to a running server
//! over loopback, as clients on other machines would, and reads the server's memory from
//! `/proc` when the server runs here.
//!
//! ```text
//! uchat-bench hold --server 127.0.0.1:7878      memory an attacker can make the server hold
//! ```

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.server.ip().is_loopback() {
        anyhow::bail!("uchat-bench only talks to loopback addresses (127.0.0.0/8, ::1)");
    }
    match &cli.scenario {
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
