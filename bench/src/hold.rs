//! `hold`: how much memory an attacker can make the server hold, and whether the server gives
//! it back once the attackers are gone.
//!
//! Two attacks, one after the other, each followed by a quiet time in which the server's
//! resident memory is sampled:
//!
//! - **silent**: connections that finish the handshake (no account needed), send the header of
//!   a frame declaring 16,000 bytes, and then nothing.
//! - **readers**: logged-in users who ask for many pages of large messages (`History`, about
//!   1 MiB each) and never read the answers: the server makes answers only as their byte
//!   budget allows, so they stall (and are closed when their writes time out).
//!
//! Connections come from many loopback source addresses (127.0.0.2 and up), as an attack
//! from many machines would, so the per-address limits do not stop them early.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use protocol::message::{ClientMessage, FriendDecision, Request, Response, SendMessage};
use protocol::{ClientMsgId, ConversationId, Seq};
use serde_bytes::ByteBuf;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::raw::{self, Conn};
use crate::rss::{self, Resident};

/// The declared length of a silent connection's frame: under the server's limit before
/// login, so only the bytes that arrive could be held.
const SILENT_FRAME_LEN: u32 = 16_000;

/// Size of each stored message the readers ask for.
const MESSAGE_BYTES: usize = 200 * 1024;

/// Messages stored in each reader's conversation: several pages' worth.
const MESSAGES_PER_READER: u64 = 10;

/// History requests each reader sends without reading.
const PAGES_PER_READER: u64 = 200;

/// Handshakes run at once while connecting (the rest wait).
const CONNECT_CONCURRENCY: usize = 32;

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Silent connections (handshake, a frame header, then nothing).
    #[arg(long, default_value_t = 2000)]
    pub silent: usize,
    /// Logged-in readers who request large pages and never read.
    #[arg(long, default_value_t = 40)]
    pub readers: usize,
    /// Seconds to watch the server's memory after each attack ends.
    #[arg(long, default_value_t = 15)]
    pub settle_secs: u64,
    /// The server's process id (found from the listening port when not given).
    #[arg(long)]
    pub server_pid: Option<u32>,
}

/// One reading of the server's memory.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    /// What had just happened.
    pub phase: String,
    /// Resident memory, MiB.
    pub rss_mib: f64,
    /// Change since the start, MiB.
    pub delta_mib: f64,
}

/// The result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Readings in order.
    pub samples: Vec<Sample>,
    /// Peak resident memory during the run, MiB (`VmHWM`; from the server's start).
    pub peak_mib: f64,
    /// Silent connections that were held open at the silent reading.
    pub silent_held: usize,
    /// Readers the server closed within the settle time (stalled readers are closed only when
    /// their writes time out, the server's idle time).
    pub readers_closed: usize,
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

struct Watch {
    pid: u32,
    baseline: u64,
    samples: Vec<Sample>,
}

impl Watch {
    fn sample(&mut self, phase: &str) -> anyhow::Result<Resident> {
        let now = rss::resident(self.pid)?;
        self.samples.push(Sample {
            phase: phase.into(),
            rss_mib: mib(now.now),
            delta_mib: mib(now.now) - mib(self.baseline),
        });
        Ok(now)
    }

    /// Leaves the server alone for `secs`, then records a reading under `phase`.
    async fn settle(&mut self, phase: &str, secs: u64) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_secs(secs)).await;
        self.sample(phase)?;
        Ok(())
    }
}

/// Runs both attacks against `server`.
pub async fn run(server: SocketAddr, options: &Options) -> anyhow::Result<Report> {
    let pid = match options.server_pid {
        Some(pid) => pid,
        None => rss::listener_pid(server)?,
    };
    let start = rss::resident(pid)?;
    let mut watch = Watch {
        pid,
        baseline: start.now,
        samples: Vec::new(),
    };
    watch.sample("start")?;

    // Readers' conversations are filled first, so the silent attack is measured alone.
    let pairs = prepare_readers(server, options.readers).await?;
    watch.settle("readers' messages stored", 2).await?;

    let silent = open_silent(server, options.silent).await?;
    let silent_held = silent.len();
    watch.sample(&format!("{silent_held} silent connections open"))?;
    drop(silent);
    watch
        .settle("silent connections closed", options.settle_secs)
        .await?;

    let mut readers = JoinSet::new();
    for (reader, conversation) in pairs {
        readers.spawn(flood(reader, conversation));
    }
    let mut readers_closed = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(options.settle_secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            done = readers.join_next() => match done {
                Some(Ok(true)) => readers_closed += 1,
                Some(_) => {}
                None => break,
            },
        }
    }
    let during = watch.sample(&format!("{} readers flooding", options.readers))?;
    readers.abort_all();
    while readers.join_next().await.is_some() {}
    watch
        .settle("readers gone", options.settle_secs)
        .await
        .context("watch after the readers")?;
    Ok(Report {
        samples: watch.samples,
        peak_mib: mib(during.peak),
        silent_held,
        readers_closed,
    })
}

async fn open_silent(server: SocketAddr, count: usize) -> anyhow::Result<Vec<TcpStream>> {
    let mut open = Vec::with_capacity(count);
    let mut pending = JoinSet::new();
    let mut next = 0;
    while open.len() + pending.len() < count || !pending.is_empty() {
        while pending.len() < CONNECT_CONCURRENCY && next < count {
            let n = next;
            next += 1;
            pending.spawn(async move {
                let conn = raw::connect(server, raw::source(n)).await?;
                let mut stream = raw::into_stream(conn).context("take the stream")?;
                let mut header = Vec::with_capacity(protocol::frame::HEADER_LEN);
                header.extend_from_slice(&SILENT_FRAME_LEN.to_be_bytes());
                header.resize(protocol::frame::HEADER_LEN, b'0');
                stream.write_all(&header).await?;
                anyhow::Ok(stream)
            });
        }
        match pending.join_next().await {
            Some(Ok(Ok(stream))) => open.push(stream),
            Some(Ok(Err(err))) => eprintln!("a silent connection failed: {err:#}"),
            Some(Err(err)) => eprintln!("a silent connection failed: {err}"),
            None => break,
        }
    }
    Ok(open)
}

/// Makes `count` pairs of users, friends with each other, each pair's conversation holding
/// [`MESSAGES_PER_READER`] large messages; returns each reader's connection and conversation.
async fn prepare_readers(
    server: SocketAddr,
    count: usize,
) -> anyhow::Result<Vec<(Conn, ConversationId)>> {
    let run = std::process::id() % 10_000;
    let mut pairs = Vec::with_capacity(count);
    for n in 0..count {
        let (mut sender, sender_id) =
            raw::user(server, raw::source(2 * n), &format!("s{run}x{n}")).await?;
        let (mut reader, reader_id) =
            raw::user(server, raw::source(2 * n + 1), &format!("r{run}x{n}")).await?;
        raw::ask(&mut sender, 5, Request::AddFriend { user: reader_id }).await?;
        let accepted = raw::ask(
            &mut reader,
            5,
            Request::ResolveFriendRequest {
                from: sender_id,
                decision: FriendDecision::Accept,
            },
        )
        .await?;
        let Response::Friend(friend) = accepted else {
            anyhow::bail!("unexpected answer to the friend request: {accepted:?}");
        };
        let envelope = raw::opaque_envelope(7, MESSAGE_BYTES / 16);
        for m in 0..MESSAGES_PER_READER {
            let send = Request::SendMessage(SendMessage {
                conversation: friend.conversation,
                client_msg_id: ClientMsgId::random(),
                envelope: ByteBuf::from(envelope.clone()),
            });
            raw::ask(&mut sender, 10 + m, send).await?;
        }
        pairs.push((reader, friend.conversation));
    }
    Ok(pairs)
}

/// Sends [`PAGES_PER_READER`] `History` requests and never reads; returns whether the server
/// closed the connection (a write failed) before the task was stopped.
async fn flood(mut reader: Conn, conversation: ConversationId) -> bool {
    for id in 0..PAGES_PER_READER {
        let page = Request::History {
            conversation,
            before: Seq(0),
            limit: 50,
        };
        if reader
            .queue(&ClientMessage::Request {
                id: 100 + id,
                body: page,
            })
            .is_err()
        {
            return false;
        }
    }
    if reader.flush().await.is_err() {
        return true;
    }
    // Hold the connection without reading until the server closes it: a write of a ping
    // fails once it has.
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let ping = ClientMessage::Request {
            id: 1,
            body: Request::Ping { nonce: 0 },
        };
        if reader.write_message(&ping).await.is_err() {
            return true;
        }
    }
}
impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<36} {:>10} {:>10}", "after", "RSS MiB", "vs start")?;
        for sample in &self.samples {
            writeln!(
                f,
                "{:<36} {:>10.1} {:>+10.1}",
                sample.phase, sample.rss_mib, sample.delta_mib
            )?;
        }
        writeln!(
            f,
            "peak RSS since the server started: {:.1} MiB",
            self.peak_mib
        )?;
        writeln!(
            f,
            "silent connections held: {}; readers closed by the server: {}",
            self.silent_held, self.readers_closed
        )
    }
}
