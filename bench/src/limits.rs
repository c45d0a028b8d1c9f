//! `uchat-bench limits`: what this machine allows, measured in the same run as the other
//! figures so that each can be shown as a ratio to its ceiling.
//!
//! - **SQLite batched inserts**: rows of 200 bytes inserted in batches, one transaction and
//!   one statement per batch, into a file opened exactly as the server opens its own (WAL,
//!   `synchronous=FULL`, one connection): the most messages per second the embedded database
//!   could store, with no indexes, checks or fan-out.
//! - **One commit**: a transaction of one such row, the time a lone message's write takes at
//!   the least (`synchronous=FULL`: the commit waits for the disk), the floor under the
//!   latency of a message sent when nothing else is.
//! - **Frame seal + open** of a 200-byte message on one core (AES-256-CBC and HMAC-MD5 both
//!   ways): what every message costs the gateway per hop on the client link.
//! - **DH agreement**: one modular exponentiation of the 2048-bit group, on the arithmetic the
//!   protocol crate picked for this processor (named in the report).
//! - **Handshake, both ends**: a whole handshake's CPU, client and server sides together, on
//!   one core. When the load tool runs on the server's machine every handshake pays both, so
//!   cores divided by this is the ceiling of `handshake`.

use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::BytesMut;
use protocol::KeyPair;
use protocol::frame::{DEFAULT_MAX_FRAME_LEN, FrameOpener, FrameSealer};
use protocol::handshake::{ClientHandshake, DirectionKeys, NONCE_LEN, server_respond};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait, Value};

/// Size of a stored message in the SQLite ceiling: a short chat message once sealed.
pub const ROW_BYTES: usize = 200;

/// Size of the message sealed and opened in the frame ceiling.
pub const FRAME_BYTES: usize = 200;

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Seconds spent on each measurement.
    #[arg(long, default_value_t = 3)]
    pub duration: u64,
    /// Rows per transaction in the SQLite ceiling (message-svc's writer takes up to 2,048).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// CPU cores this process may use.
    pub cores: usize,
    /// SQLite rows of [`ROW_BYTES`] inserted per second, batched.
    pub sqlite_rows_per_sec: f64,
    /// Rows per batch in that figure.
    pub sqlite_batch: usize,
    /// One transaction of one row, milliseconds (mean over the measuring time).
    pub sqlite_commit_ms: f64,
    /// Frames of [`FRAME_BYTES`] sealed and opened per second on one core.
    pub frame_seal_open_per_sec_per_core: f64,
    /// One Diffie-Hellman agreement, milliseconds.
    pub dh_agree_ms: f64,
    /// The arithmetic it ran on: `avx512-ifma` or `portable`.
    pub dh_arithmetic: &'static str,
    /// One handshake's CPU on both ends, milliseconds.
    pub handshake_both_ends_ms: f64,
    /// Handshakes per second this machine's cores allow when they run both ends.
    pub handshakes_per_sec_both_ends: f64,
}

/// Measures every ceiling, one after the other.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let time = Duration::from_secs(options.duration.max(1));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sqlite_rows_per_sec = sqlite_inserts(time, options.batch.max(1)).await?;
    let sqlite_commit_ms = sqlite_inserts(time, 1)
        .await
        .map(|per_sec| 1000.0 / per_sec)?;
    let (frames, dh, handshake) = tokio::task::spawn_blocking(move || {
        anyhow::Ok((
            per_second(time, seal_open()?)?,
            per_second(time, agree()?)?,
            per_second(time, handshake()?)?,
        ))
    })
    .await
    .context("the CPU measurements stopped")??;
    Ok(Report {
        cores,
        sqlite_rows_per_sec,
        sqlite_batch: options.batch.max(1),
        sqlite_commit_ms,
        frame_seal_open_per_sec_per_core: frames,
        dh_agree_ms: 1000.0 / dh,
        dh_arithmetic: protocol::crypto::dh::arithmetic(),
        handshake_both_ends_ms: 1000.0 / handshake,
        handshakes_per_sec_both_ends: handshake * cores as f64,
    })
}

/// Runs `step` over and over for `time` on this thread; returns how many per second.
fn per_second(time: Duration, mut step: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < time {
        step()?;
        count += 1;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn seal_open() -> anyhow::Result<impl FnMut() -> anyhow::Result<()>> {
    let keys = DirectionKeys {
        enc: [1; 32],
        mac: [2; 32],
    };
    let mut sealer = FrameSealer::new(&keys, DEFAULT_MAX_FRAME_LEN);
    let mut opener = FrameOpener::new(&keys, DEFAULT_MAX_FRAME_LEN);
    let plain = vec![0x5a; FRAME_BYTES];
    let mut wire = Vec::new();
    let mut buf = BytesMut::new();
    Ok(move || {
        wire.clear();
        sealer.seal_into(std::hint::black_box(&plain), &mut wire)?;
        buf.extend_from_slice(&wire);
        opener
            .open(&mut buf)?
            .context("a whole frame did not open")?;
        Ok(())
    })
}

fn agree() -> anyhow::Result<impl FnMut() -> anyhow::Result<()>> {
    let (mine, peer) = (KeyPair::generate()?, KeyPair::generate()?);
    Ok(move || {
        std::hint::black_box(mine.agree(peer.public()));
        Ok(())
    })
}

fn handshake() -> anyhow::Result<impl FnMut() -> anyhow::Result<()>> {
    let identity = protocol::ServerIdentity::generate("limits")?;
    Ok(move || {
        // The server takes its ephemeral key from a pool refilled off the request path, but
        // on the same cores, so its generation counts.
        let ephemeral = KeyPair::generate()?;
        let client = ClientHandshake::new(None)?;
        let (flight, _) = server_respond(&identity, &ephemeral, [1; NONCE_LEN], client.hello())?;
        client.finish(&flight)?;
        Ok(())
    })
}

/// Rows per second inserted into a fresh SQLite file opened as the server opens its own.
async fn sqlite_inserts(time: Duration, batch: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir().context("a temporary folder for the database")?;
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("limits.db").display()
    );
    let db = service_kit::db::connect(&url).await?;
    db.execute_unprepared(
        "CREATE TABLE rows (id INTEGER PRIMARY KEY, conversation INTEGER NOT NULL, \
         seq INTEGER NOT NULL, body BLOB NOT NULL)",
    )
    .await?;
    let sql = format!(
        "INSERT INTO rows (conversation, seq, body) VALUES {}",
        vec!["(?, ?, ?)"; batch].join(", ")
    );
    let body = vec![0x5a_u8; ROW_BYTES];
    let started = Instant::now();
    let mut rows = 0i64;
    while started.elapsed() < time {
        let mut values = Vec::with_capacity(batch * 3);
        for n in rows..rows + batch as i64 {
            values.extend([
                Value::from(n % 1000),
                Value::from(n),
                Value::from(body.clone()),
            ]);
        }
        let txn = db.begin().await?;
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            &sql,
            values,
        ))
        .await?;
        txn.commit().await?;
        rows += batch as i64;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} cores", self.cores)?;
        writeln!(
            f,
            "SQLite inserts, {} rows of {ROW_BYTES} B per transaction: {:.0} rows/s",
            self.sqlite_batch, self.sqlite_rows_per_sec
        )?;
        writeln!(
            f,
            "SQLite commit of one row: {:.3} ms",
            self.sqlite_commit_ms
        )?;
        writeln!(
            f,
            "frame seal+open, {FRAME_BYTES} B: {:.0}/s per core",
            self.frame_seal_open_per_sec_per_core
        )?;
        writeln!(
            f,
            "DH agreement: {:.3} ms ({})",
            self.dh_agree_ms, self.dh_arithmetic
        )?;
        writeln!(
            f,
            "handshake, both ends: {:.3} ms of CPU = {:.0}/s on {} cores",
            self.handshake_both_ends_ms, self.handshakes_per_sec_both_ends, self.cores
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_ceiling_is_measured() {
        let report = run(&Options {
            duration: 1,
            batch: 16,
        })
        .await
        .unwrap();
        assert!(report.sqlite_rows_per_sec > 0.0, "{report:?}");
        assert!(report.sqlite_commit_ms > 0.0, "{report:?}");
        assert!(report.frame_seal_open_per_sec_per_core > 0.0, "{report:?}");
        assert!(report.dh_agree_ms > 0.0, "{report:?}");
        assert!(
            report.handshake_both_ends_ms > report.dh_agree_ms,
            "a handshake is several agreements: {report:?}"
        );
    }
}
