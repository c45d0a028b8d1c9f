//! `uchat-bench`: Uchat's load generator and benchmark driver. It talks to a running server
//! over loopback, as clients on other machines would, and reads the server's memory from
//! `/proc` when the server runs here.
//!
//! ```text
//! uchat-bench suite                     every figure of docs/BENCHMARKS.md, 3 runs each
//! uchat-bench limits                    this machine's ceilings, for the ratios
//! uchat-bench chat --rate 20            latency and delivery of paced chat
//! uchat-bench fanout --members 100      one sender into a group
//! uchat-bench file --size-mb 100        a file up and down, and chat meanwhile
//! uchat-bench idle --clients 19000      memory and CPU of idle sessions
//! uchat-bench handshake                 handshakes per second through the gateway
//! uchat-bench login                     logins per second (the server's argon2id)
//! uchat-bench hold                      memory an attacker can make the server hold
//! ```

mod chat;
mod disk;
mod fanout;
mod file;
mod handshake;
mod hold;
mod idle;
mod limits;
mod login;
mod offer;
mod pace;
mod raw;
mod repeat;
mod rss;
mod suite;
mod tally;
mod users;

use std::io::Write;
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
    /// load through (`suite` does): `uchat-server --messages-per-minute 100000000
    /// --auth-per-minute 1000000 --max-connections-per-ip 5000 --max-connections 20000
    /// --max-unauthenticated 5000 --client-kdf-memory-kib 8 --client-kdf-iterations 1
    /// --argon2-memory-kib 1024 --argon2-iterations 1` (every client connects from
    /// 127.0.0.1; password stretching is cheapened because this scenario measures messaging,
    /// and `login` measures logins).
    Chat(chat::Options),
    /// One sender into a group of --members members on the real client path: stored
    /// messages and copies told per second, latency to each copy, lost, duplicated and
    /// out-of-order copies. Start the server as for `chat`.
    Fanout(fanout::Options),
    /// A --size-mb file sent and downloaded through client-core, over and over while other
    /// pairs chat at --rate: MB/s up and down, and the chat's p99 during the transfers
    /// against its p99 without them. Start the server as for `chat`.
    File(file::Options),
    /// Handshakes per second through the gateway: workers connecting (each from its own
    /// loopback address), handshaking and closing, over and over. No login.
    Handshake(handshake::Options),
    /// Logins per second through the gateway, the server's argon2id hash of each included
    /// (run the server at its default password cost for the figure users get, with
    /// `--auth-per-minute 1000000` so the per-address limit lets the run through). Workers
    /// have accounts of their own and log in over and over, each on a new connection.
    Login(login::Options),
    /// This machine's ceilings, measured in the same run so every other figure can be given
    /// as a ratio: SQLite batched inserts of 200-byte rows, frame seal + open per core, one
    /// Diffie-Hellman agreement, a handshake's CPU on both ends. Needs no server.
    Limits(limits::Options),
    /// Logged-in sessions held open and idle (pinging as clients do): the server's resident
    /// memory per session and the CPU they cost. Sessions are spread over worker processes
    /// (one process may hold 20,000 files). The server must run on this machine; start it
    /// as for `chat`, with `--max-connections` above --clients.
    Idle(idle::Options),
    /// Every figure of docs/BENCHMARKS.md: the ceilings, then each scenario --runs times
    /// against a `uchat-server` it starts itself (twice: at the default password cost for
    /// logins, with limits raised and passwords cheap for the rest), as a table of medians,
    /// min, max and ratios to the ceilings. About 25 minutes with the defaults.
    Suite(suite::Options),
    /// One worker process of `idle` (started by it).
    #[command(hide = true)]
    IdleWorker(idle::WorkerOptions),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !cli.server.ip().is_loopback() {
        anyhow::bail!("uchat-bench only talks to loopback addresses (127.0.0.0/8, ::1)");
    }
    let (server, json) = (cli.server, cli.json);
    match &cli.scenario {
        Scenario::Hold(options) => emit(&hold::run(server, options).await?, json),
        Scenario::Chat(options) => emit(&chat::run(server, options, json).await?, json),
        Scenario::Fanout(options) => emit(&fanout::run(server, options, json).await?, json),
        Scenario::File(options) => emit(&file::run(server, options, json).await?, json),
        Scenario::Handshake(options) => emit(&handshake::run(server, options).await?, json),
        Scenario::Login(options) => emit(&login::run(server, options).await?, json),
        Scenario::Idle(options) => emit(&idle::run(server, options).await?, json),
        Scenario::IdleWorker(options) => idle::worker(server, options).await,
        Scenario::Suite(options) => emit(&suite::run(options).await?, json),
        Scenario::Limits(options) => emit(&limits::run(options).await?, json),
    }
}

/// Prints `report`: one JSON object on a line of its own, or its table.
/// Prints `report`; a reader that went away early (`| head -1`) ends the run quietly.
fn emit(report: &(impl serde::Serialize + std::fmt::Display), json: bool) -> anyhow::Result<()> {
    let text = if json {
        format!("{}\n", serde_json::to_string(report)?)
    } else {
        report.to_string()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_flag_is_well_formed_and_unique() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn the_help_names_the_server_flags_the_suite_uses() {
        let mut command = super::Cli::command();
        let help = command
            .find_subcommand_mut("chat")
            .unwrap()
            .render_long_help()
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for pair in super::suite::MESSAGING_FLAGS.chunks(2) {
            let flag = pair.join(" ");
            assert!(help.contains(&flag), "`uchat-bench help chat` lacks {flag}");
        }
    }
}
