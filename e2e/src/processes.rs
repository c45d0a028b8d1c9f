//! The real server binaries as separate processes, for tests of the split stack: finding
//! and starting them with their output in a log file, killing them as SIGKILL does, asking
//! their health and reading their metrics, and a TCP proxy that can make a database
//! unreachable and bring it back.
//!
//! The binaries are the ones `cargo test` builds beside the test (`target/debug`); every
//! package with a binary has an integration test, which makes cargo build it first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The path of the workspace binary `name`, built beside this test.
///
/// # Panics
/// When it has not been built.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/this-test → target/debug/name
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace`, or `cargo build --bins` first",
        path.display()
    );
    path
}

/// A free TCP port on `ip` (bound and released; good enough on loopback).
///
/// # Panics
/// When nothing can be bound on `ip`.
pub fn free_port(ip: [u8; 4]) -> u16 {
    std::net::TcpListener::bind(SocketAddr::from((ip, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {ip:?}: {e}"))
}

/// A running server binary. Killed (SIGKILL) when dropped; if the test is failing then, the
/// end of its log is printed.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Proc {
    /// Starts the workspace binary `binary_name` as `name`, with `args`, its output into
    /// `<log_dir>/<name>.log`.
    ///
    /// # Panics
    /// When it cannot be started.
    pub fn start(name: &str, binary_name: &str, args: &[String], log_dir: &Path) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
        let err = file
            .try_clone()
            .unwrap_or_else(|e| panic!("log file {}: {e}", log.display()));
        let child = Command::new(binary(binary_name))
            .args(args)
            .env("RUST_LOG", "info")
            // An error that stops a start is one line, not buried under its backtrace at
            // the end of the log (panics still print theirs, as `RUST_BACKTRACE` says).
            .env("RUST_LIB_BACKTRACE", "0")
            .env_remove("UCHAT_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// Kills it at once (SIGKILL: no draining, no goodbye) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits up to `within` until its health at `addr` says it is serving.
    ///
    /// # Errors
    /// When it exits first: why, from the end of its log.
    ///
    /// # Panics
    /// When it is still running but not serving by then.
    pub async fn wait_serving(&mut self, addr: &str, within: Duration) -> Result<(), Exited> {
        let serving = ServingStatus::Serving;
        match poll_health(addr, serving, within, || !self.running()).await {
            Waited::Reached => Ok(()),
            Waited::Gone => Err(Exited {
                log: self.log_tail(),
            }),
            Waited::TimedOut(last) => panic!(
                "{} at {addr} is {last:?}, not serving, after {within:?}",
                self.name
            ),
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines
            .get(lines.len().saturating_sub(30)..)
            .unwrap_or_default();
        tail.join("\n")
    }
}

/// A process that exited before it served, with the end of its log.
#[derive(Debug)]
pub struct Exited {
    /// The last lines it wrote.
    pub log: String,
}

impl Exited {
    /// Whether it stopped because an address it was to listen on was taken: a port that
    /// [`free_port`] released was bound again before the process bound it.
    pub fn address_taken(&self) -> bool {
        self.log.contains("Address already in use")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- last lines of {} ---\n{}", self.name, self.log_tail());
        }
    }
}

/// What the gRPC health service at `addr` answers, `None` when it does not answer.
pub async fn health(addr: &str) -> Option<ServingStatus> {
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let answer = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            .ok()?;
        ServingStatus::try_from(answer.into_inner().status).ok()
    };
    tokio::time::timeout(Duration::from_secs(3), ask)
        .await
        .ok()
        .flatten()
}

/// Waits up to `within` for `addr`'s health to be `want`.
///
/// # Panics
/// When it is not by then.
pub async fn wait_for_health(addr: &str, want: ServingStatus, within: Duration) {
    // Nothing is watched for exiting, so it is reached or late.
    if let Waited::TimedOut(last) = poll_health(addr, want, within, || false).await {
        panic!("{addr} is {last:?}, not {want:?}, after {within:?}");
    }
}

/// What [`poll_health`] came to.
enum Waited {
    /// The health said what was wanted.
    Reached,
    /// The process behind the address exited first.
    Gone,
    /// Time ran out; the last answer (`None`: no answer).
    TimedOut(Option<ServingStatus>),
}

/// Asks `addr`'s health every 50 ms until it says `want`, `gone()` says the process behind it
/// exited, or `within` passes.
async fn poll_health(
    addr: &str,
    want: ServingStatus,
    within: Duration,
    mut gone: impl FnMut() -> bool,
) -> Waited {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        last = health(addr).await;
        if last == Some(want) {
            return Waited::Reached;
        }
        if gone() {
            return Waited::Gone;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Waited::TimedOut(last)
}

/// The text a metrics endpoint serves at `/metrics`.
///
/// # Panics
/// When it does not answer 200.
pub async fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("metrics at {addr}: {e}"));
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let read = async {
        stream.write_all(request.as_bytes()).await?;
        stream.read_to_string(&mut answer).await
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or_else(|_| panic!("metrics at {addr}: no answer"))
        .unwrap_or_else(|e| panic!("metrics at {addr}: {e}"));
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "metrics at {addr}: {answer}"
    );
    answer
}

/// The sum of a metric's samples whose line contains every one of `labels`.
pub fn sample_sum(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter(|l| labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A TCP proxy on loopback to `target` that can cut every connection and refuse new ones
/// (the database is unreachable) and come back on the same port.
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    /// A proxy to `target`, up.
    ///
    /// # Panics
    /// When it cannot listen.
    pub async fn start(target: SocketAddr) -> Self {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port([127, 0, 0, 1])));
        let proxy = Self {
            addr,
            target,
            tasks: Arc::default(),
        };
        proxy.up().await;
        proxy
    }

    /// Accepts and forwards connections again.
    ///
    /// # Panics
    /// When its port has been taken meanwhile.
    pub async fn up(&self) {
        // The listener of the last `down` closes as its task ends, moments later.
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) if tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("proxy on {}: {e}", self.addr),
            }
        };
        let (target, tasks) = (self.target, self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let forward = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                lock(&tasks).push(forward.abort_handle());
            }
        });
        lock(&self.tasks).push(accepting.abort_handle());
    }

    /// Closes every connection and the listener: connecting is refused until [`Proxy::up`].
    pub fn down(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
