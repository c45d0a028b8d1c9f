//! `uchat-bench idle`: authenticated sessions held open and idle, and what they cost the
//! server: resident memory per session (from `/proc`, so the server must run here) and CPU
//! (their heartbeats).
//!
//! One process may hold at most 20,000 open files here, so the sessions are spread over
//! worker processes (this binary again, `uchat-bench idle-worker`, at most
//! `--per-process` sessions each). Each worker registers and logs in its users on the wire
//! protocol (see `raw`), says on its standard output how many are up, then pings each
//! session as client-core does until its standard input closes or its deadline passes. The
//! parent reads the server's memory before the sessions exist and once they are all up and
//! quiet, and its CPU time over `--duration` seconds of idling.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use protocol::message::Request;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{raw, rss, users};

/// How often each session pings: client-core's interval.
const PING_EVERY: Duration = Duration::from_secs(20);

/// Logins a worker runs at once while setting up.
const LOGIN_CONCURRENCY: usize = 32;

/// Roles (the letter after the run's name) idle users take, 10,000 users each.
const ROLES: [char; 5] = ['h', 'j', 'p', 'q', 'u'];

/// Most sessions one run can hold (every role's users).
pub const MAX_SESSIONS: usize = ROLES.len() * users::MAX_PER_ROLE;

/// Time the server is left alone between the last login and the memory reading.
const SETTLE: Duration = Duration::from_secs(3);

/// A worker that has not said how many sessions are up after this long has failed.
const WORKER_SETUP_MAX: Duration = Duration::from_secs(600);

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Sessions to hold. More than 10,000 needs `uchat-server --max-connections` raised.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Most sessions one worker process holds (each is one open file).
    #[arg(long, default_value_t = 5000)]
    pub per_process: usize,
    /// Seconds of idling over which the server's CPU is measured.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// The server's process id (found from the listening port when not given).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// A worker's part (the hidden `idle-worker` command).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerOptions {
    /// The run's name (users' names start with it).
    #[arg(long)]
    pub run: String,
    /// Number of this worker's first user within the run.
    #[arg(long)]
    pub first: usize,
    /// Users this worker holds.
    #[arg(long)]
    pub count: usize,
    /// Stop by itself after this many seconds even if the parent has not said so.
    #[arg(long)]
    pub deadline_secs: u64,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Sessions logged in and held.
    pub sessions: usize,
    /// Sessions that could not be set up.
    pub failed: usize,
    /// Worker processes.
    pub workers: usize,
    /// The server's resident memory before, MiB.
    pub rss_before_mib: f64,
    /// Its resident memory with every session up and quiet, MiB.
    pub rss_held_mib: f64,
    /// The difference per session, KiB.
    pub kib_per_session: f64,
    /// The server's CPU while the sessions idled, percent of one core.
    pub idle_cpu_percent: f64,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options) -> anyhow::Result<Report> {
    anyhow::ensure!(
        (1..=MAX_SESSIONS).contains(&options.clients),
        "--clients must be from 1 to {MAX_SESSIONS}"
    );
    let pid = match options.server_pid {
        Some(pid) => pid,
        None => rss::listener_pid(server)?,
    };
    let before = rss::resident(pid)?.now;
    let run = users::run_name();
    let per_process = options.per_process.max(1);
    let deadline = WORKER_SETUP_MAX.as_secs() + options.duration + 60;
    let mut workers = Vec::new();
    let mut first = 0;
    while first < options.clients {
        let count = per_process.min(options.clients - first);
        workers.push(spawn_worker(server, &run, first, count, deadline)?);
        first += count;
    }
    let (mut sessions, mut failed) = (0, 0);
    for worker in &mut workers {
        let (up, down) = ready(worker).await?;
        sessions += up;
        failed += down;
    }
    tokio::time::sleep(SETTLE).await;
    let held = rss::resident(pid)?.now;
    let cpu_before = rss::cpu_seconds(pid)?;
    tokio::time::sleep(Duration::from_secs(options.duration)).await;
    let cpu = rss::cpu_seconds(pid)? - cpu_before;
    for mut worker in workers {
        // Closing its standard input tells the worker to end.
        drop(worker.stdin.take());
        let _ = worker.wait().await;
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Ok(Report {
        sessions,
        failed,
        workers: options.clients.div_ceil(per_process),
        rss_before_mib: mib(before),
        rss_held_mib: mib(held),
        kib_per_session: held.saturating_sub(before) as f64 / 1024.0 / sessions.max(1) as f64,
        idle_cpu_percent: 100.0 * cpu / options.duration.max(1) as f64,
    })
}

fn spawn_worker(
    server: SocketAddr,
    run: &str,
    first: usize,
    count: usize,
    deadline_secs: u64,
) -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("find uchat-bench itself")?;
    Command::new(exe)
        .args(["idle-worker", "--server", &server.to_string(), "--run", run])
        .args(["--first", &first.to_string(), "--count", &count.to_string()])
        .args(["--deadline-secs", &deadline_secs.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start a worker process")
}

/// Waits for a worker's `ready UP FAILED` line.
async fn ready(worker: &mut Child) -> anyhow::Result<(usize, usize)> {
    let stdout = worker.stdout.take().context("a worker's output")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(WORKER_SETUP_MAX, lines.next_line())
        .await
        .context("a worker took too long to log in its users")??
        .context("a worker ended before its users were up")?;
    let mut words = line.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("ready"), Some(up), Some(failed)) => Ok((up.parse()?, failed.parse()?)),
        _ => bail!("a worker said {line:?}"),
    }
}

/// A worker: logs in its users, says so, pings until told to stop.
pub async fn worker(server: SocketAddr, options: &WorkerOptions) -> anyhow::Result<()> {
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(LOGIN_CONCURRENCY));
    let mut logins = tokio::task::JoinSet::new();
    for n in options.first..options.first + options.count {
        let role = ROLES
            .get(n / users::MAX_PER_ROLE)
            .context("more users than the roles allow")?;
        let name = users::name(&options.run, *role, n % users::MAX_PER_ROLE);
        let semaphore = semaphore.clone();
        logins.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            raw::user(server, raw::source(n), &name).await
        });
    }
    let mut conns = Vec::with_capacity(options.count);
    let mut failed = 0;
    while let Some(done) = logins.join_next().await {
        match done {
            Ok(Ok((conn, _))) => conns.push(conn),
            Ok(Err(err)) => {
                failed += 1;
                eprintln!("a session could not be set up: {err:#}");
            }
            Err(_) => failed += 1,
        }
    }
    println!("ready {} {failed}", conns.len());
    let mut holding = tokio::task::JoinSet::new();
    for (n, conn) in conns.into_iter().enumerate() {
        // Spread the pings over the interval, as independent clients would be.
        let offset = PING_EVERY.mul_f64(n as f64 / options.count.max(1) as f64);
        holding.spawn(hold(conn, offset));
    }
    let mut stdin = tokio::io::stdin();
    let mut sink = [0u8; 64];
    let stop = tokio::time::sleep(Duration::from_secs(options.deadline_secs));
    tokio::select! {
        _ = async { while stdin.read(&mut sink).await.is_ok_and(|n| n > 0) {} } => {}
        () = stop => {}
    }
    holding.abort_all();
    Ok(())
}

/// Keeps one session alive: a ping every [`PING_EVERY`], reading whatever comes meanwhile.
async fn hold(mut conn: raw::Conn, offset: Duration) {
    tokio::time::sleep(offset).await;
    for id in 10u64.. {
        if raw::ask(&mut conn, id, Request::Ping { nonce: id })
            .await
            .is_err()
        {
            return;
        }
        tokio::time::sleep(PING_EVERY).await;
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} sessions held by {} worker processes ({} failed)",
            self.sessions, self.workers, self.failed
        )?;
        writeln!(
            f,
            "server RSS {:.1} MiB -> {:.1} MiB = {:.1} KiB per session",
            self.rss_before_mib, self.rss_held_mib, self.kib_per_session
        )?;
        writeln!(
            f,
            "server CPU while idle: {:.2} % of a core",
            self.idle_cpu_percent
        )
    }
}
