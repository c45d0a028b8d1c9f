//! `uchat-bench suite`: every figure of `docs/BENCHMARKS.md` in one command. It measures this
//! machine's ceilings (`limits`), then starts `uchat-server` itself on a fresh data folder
//! and a free loopback port, with the flags each scenario needs, and runs every scenario
//! `--runs` times; the table gives each figure's median, min and max and, where there is a
//! ceiling, the median's ratio to it.
//!
//! Two servers, one after the other: logins are measured on a server at its default password
//! cost (that is the figure users get); everything else on one whose password cost is
//! cheapened and whose per-address and per-session limits are raised (every client of the
//! load connects from loopback, and registering thousands of users at the default cost would
//! take the run's time).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::{chat, fanout, file, handshake, idle, limits, login};

/// Flags for the messaging server: limits raised for load from one address, passwords
/// stretched cheaply (the scenarios measure messaging; `login` measures logins).
pub const MESSAGING_FLAGS: &[&str] = &[
    "--messages-per-minute",
    "100000000",
    "--auth-per-minute",
    "1000000",
    "--max-connections-per-ip",
    "5000",
    "--max-connections",
    "20000",
    "--max-unauthenticated",
    "5000",
    "--client-kdf-memory-kib",
    "8",
    "--client-kdf-iterations",
    "1",
    "--argon2-memory-kib",
    "1024",
    "--argon2-iterations",
    "1",
];

/// Flags for the login server: default password cost, no per-address login limit.
pub const LOGIN_FLAGS: &[&str] = &["--auth-per-minute", "1000000"];

/// Longest a started server may take to accept connections.
const SERVER_START_MAX: Duration = Duration::from_secs(30);

/// The suite's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// The `uchat-server` binary (default: the one beside this binary).
    #[arg(long)]
    pub server_bin: Option<PathBuf>,
    /// Runs of every scenario (the table shows median, min and max).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Idle sessions to hold (the gateway's process may hold 20,000 files).
    #[arg(long, default_value_t = 19_000)]
    pub idle_clients: usize,
    /// Clients of the flat-out chat run.
    #[arg(long, default_value_t = 1000)]
    pub chat_clients: usize,
    /// Seconds of each timed phase.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
}

/// One figure over the runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    /// What it is.
    pub name: String,
    /// Its unit.
    pub unit: String,
    /// Median of the runs.
    pub median: f64,
    /// Lowest.
    pub min: f64,
    /// Highest.
    pub max: f64,
    /// The median as a fraction of this machine's ceiling for it, where there is one.
    pub of_ceiling: Option<f64>,
    /// Every run's value, in the order run: later runs meet a server that earlier ones left
    /// a larger database.
    pub runs: Vec<f64>,
}

/// The suite's result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Runs of each scenario.
    pub runs: usize,
    /// The ceilings.
    pub limits: limits::Report,
    /// Every figure.
    pub figures: Vec<Figure>,
    /// Messages lost, duplicated or out of order, and failed sends, over every run (must be 0).
    pub delivery_errors: u64,
}

/// A running `uchat-server`, stopped when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    _data: tempfile::TempDir,
}

impl Server {
    async fn start(binary: &Path, flags: &[&str]) -> anyhow::Result<Self> {
        let data = tempfile::tempdir().context("a data folder for the server")?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(data.path())
            .args(["--listen", &addr.to_string()])
            .args(flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", binary.display()))?;
        let began = Instant::now();
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if began.elapsed() > SERVER_START_MAX {
                bail!("{} did not start listening on {addr}", binary.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            child,
            addr,
            _data: data,
        })
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Collects each named figure's values over the runs.
#[derive(Default)]
struct Figures {
    values: Vec<(String, String, Option<f64>, Vec<f64>)>,
}

impl Figures {
    fn add(&mut self, name: &str, unit: &str, ceiling: Option<f64>, value: f64) {
        match self.values.iter_mut().find(|(n, ..)| n == name) {
            Some((.., values)) => values.push(value),
            None => self
                .values
                .push((name.into(), unit.into(), ceiling, vec![value])),
        }
    }

    fn finish(self) -> Vec<Figure> {
        self.values
            .into_iter()
            .map(|(name, unit, ceiling, runs)| {
                let mut values = runs.clone();
                values.sort_by(f64::total_cmp);
                let median = values.get(values.len() / 2).copied().unwrap_or(0.0);
                Figure {
                    name,
                    unit,
                    median,
                    min: values.first().copied().unwrap_or(0.0),
                    max: values.last().copied().unwrap_or(0.0),
                    of_ceiling: ceiling.map(|c| median / c),
                    runs,
                }
            })
            .collect()
    }
}

/// Runs everything.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let binary = match &options.server_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .with_file_name("uchat-server")
            .canonicalize()
            .context("no uchat-server beside uchat-bench: build it, or give --server-bin")?,
    };
    let runs = options.runs.max(1);
    let duration = options.duration.max(1);
    eprintln!("ceilings…");
    let ceilings = limits::run(&limits::Options {
        duration: 3,
        batch: 256,
    })
    .await?;
    let mut figures = Figures::default();
    let mut errors = 0;
    let cores = ceilings.cores as f64;

    eprintln!("logins (the server's default password cost)…");
    let server = Server::start(&binary, LOGIN_FLAGS).await?;
    for _ in 0..runs {
        let report = login::run(
            server.addr,
            &login::Options {
                clients: 16,
                duration,
            },
        )
        .await?;
        figures.add("logins", "/s", None, report.logins_per_sec);
    }
    server.stop().await;

    let server = Server::start(&binary, MESSAGING_FLAGS).await?;
    let addr = server.addr;
    for run in 1..=runs {
        eprintln!("run {run} of {runs}…");
        let report = handshake::run(
            addr,
            &handshake::Options {
                clients: 64,
                duration,
            },
        )
        .await?;
        figures.add(
            "handshakes",
            "/s",
            Some(ceilings.handshakes_per_sec_both_ends),
            report.handshakes_per_sec,
        );
        errors += report.failed;

        let paced = |clients, rate| chat::Options {
            clients,
            rate,
            window: 1,
            duration,
            timeline: false,
        };
        let low = chat::run(addr, &paced(40, 20.0), true).await?;
        figures.add("chat 20/s offered, p50", "ms", None, low.latency.p50_ms);
        figures.add("chat 20/s offered, p99", "ms", None, low.latency.p99_ms);
        let high = chat::run(addr, &paced(options.chat_clients, 5000.0), true).await?;
        figures.add("chat 5,000/s offered, p99", "ms", None, high.latency.p99_ms);
        let flat = chat::Options {
            clients: options.chat_clients,
            rate: 0.0,
            window: 4,
            duration,
            timeline: false,
        };
        let flat = chat::run(addr, &flat, true).await?;
        figures.add(
            "chat flat out, delivered",
            "/s",
            Some(ceilings.sqlite_rows_per_sec),
            flat.delivered_per_sec,
        );
        figures.add("chat flat out, p99", "ms", None, flat.latency.p99_ms);
        for report in [&low, &high, &flat] {
            errors += report.checks.total();
        }

        let group = fanout::Options {
            members: 100,
            rate: 0.0,
            window: 8,
            duration,
        };
        let group = fanout::run(addr, &group, true).await?;
        // Every copy is sealed once by the gateway and opened once by its client.
        let frames = ceilings.frame_seal_open_per_sec_per_core * cores;
        figures.add(
            "group of 100, copies told",
            "/s",
            Some(frames),
            group.deliveries_per_sec,
        );
        errors += group.checks.total();

        let transfer = file::Options {
            size_mb: 100,
            clients: 40,
            rate: 20.0,
            duration: duration.max(20),
        };
        let transfer = file::run(addr, &transfer, true).await?;
        figures.add("100 MB file, up", "MB/s", None, transfer.upload_mb_per_sec);
        figures.add(
            "100 MB file, down",
            "MB/s",
            None,
            transfer.download_mb_per_sec,
        );
        figures.add(
            "chat p99 during transfers / alone",
            "x",
            None,
            transfer.chat_p99_ms_during / transfer.chat_p99_ms_alone.max(f64::MIN_POSITIVE),
        );
        errors += transfer.chat_errors;
    }
    server.stop().await;

    // Idle sessions last, each run on a fresh server, so that what earlier runs left behind
    // does not count as theirs.
    for _ in 0..runs {
        let server = Server::start(&binary, MESSAGING_FLAGS).await?;
        let report = idle::run(
            server.addr,
            &idle::Options {
                clients: options.idle_clients,
                per_process: 5000,
                duration: 30,
                server_pid: server.child.id(),
            },
        )
        .await?;
        figures.add(
            "idle session, server memory",
            "KiB",
            None,
            report.kib_per_session,
        );
        figures.add(
            "idle sessions, server CPU",
            "% core",
            None,
            report.idle_cpu_percent,
        );
        errors += report.failed as u64;
        server.stop().await;
    }
    Ok(Report {
        runs,
        limits: ceilings,
        figures: figures.finish(),
        delivery_errors: errors,
    })
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.limits)?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<36} {:>10} {:>10} {:>10} {:>8} {:>9}  runs, in order",
            "figure", "median", "min", "max", "unit", "ceiling"
        )?;
        for figure in &self.figures {
            let ratio = figure
                .of_ceiling
                .map_or_else(String::new, |r| format!("{r:.3}"));
            let runs: Vec<String> = figure.runs.iter().map(|v| format!("{v:.2}")).collect();
            writeln!(
                f,
                "{:<36} {:>10.2} {:>10.2} {:>10.2} {:>8} {:>9}  {}",
                figure.name,
                figure.median,
                figure.min,
                figure.max,
                figure.unit,
                ratio,
                runs.join(" / ")
            )?;
        }
        writeln!(
            f,
            "{} runs each; lost, duplicated, out of order, failed: {}",
            self.runs, self.delivery_errors
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_keeps_its_runs_in_order_and_takes_the_median_of_them_sorted() {
        let mut figures = Figures::default();
        for value in [3.0, 1.0, 2.0] {
            figures.add("chat", "ms", Some(4.0), value);
        }
        figures.add("files", "MB/s", None, 50.0);
        let [chat, files] = figures.finish().try_into().unwrap();
        assert_eq!(chat.runs, [3.0, 1.0, 2.0]);
        assert_eq!((chat.median, chat.min, chat.max), (2.0, 1.0, 3.0));
        assert_eq!(chat.of_ceiling, Some(0.5));
        assert_eq!(files.runs, [50.0]);
        assert_eq!(files.of_ceiling, None);
    }
}
