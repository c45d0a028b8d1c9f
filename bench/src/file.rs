//! `uchat-bench file`: a large file's speed up and down through client-core (sealed chunk by
//! chunk, uploaded, announced in a message, downloaded, opened and checked), and what the
//! transfer does to other users' chat.
//!
//! Two phases on the same chatting pairs, each `--duration` seconds at `--rate` messages per
//! second: first chat alone (the baseline), then chat while one user sends a `--size-mb` file
//! to another, who downloads it, over and over until the phase ends (the transfer under way
//! then is finished and counted). Upload speed counts from the first byte sealed to the
//! message sent; download speed from the first request to the checked plaintext.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use protocol::e2e::{Body, Content};

use crate::chat::{self, Pairs};
use crate::disk::Stalls;
use crate::users;

/// Bytes in a megabyte, as the figures count them.
const MB: f64 = 1_000_000.0;

/// The scenario's settings.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Size of the file in MB (10^6 bytes); at most the server's largest attachment.
    #[arg(long, default_value_t = 100)]
    pub size_mb: u64,
    /// Clients chatting in pairs meanwhile.
    #[arg(long, default_value_t = 40)]
    pub clients: usize,
    /// Their messages per second, all pairs together.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Seconds of each phase (chat alone, chat during transfers).
    #[arg(long, default_value_t = 20)]
    pub duration: u64,
}

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The file's size, MB.
    pub size_mb: f64,
    /// Transfers (upload and download) completed.
    pub transfers: usize,
    /// Upload speed, MB/s (median of the transfers).
    pub upload_mb_per_sec: f64,
    /// Download speed, MB/s (median of the transfers).
    pub download_mb_per_sec: f64,
    /// Chat p99 without a transfer, milliseconds.
    pub chat_p99_ms_alone: f64,
    /// Chat p99 during transfers, milliseconds.
    pub chat_p99_ms_during: f64,
    /// Chat messages lost, duplicated or out of order in either phase (must be 0).
    pub chat_errors: u64,
    /// What the disk did meanwhile, both phases together.
    #[serde(flatten)]
    pub disk: Stalls,
}

/// Runs the scenario against `server`.
pub async fn run(server: SocketAddr, options: &Options, quiet: bool) -> anyhow::Result<Report> {
    let size = usize::try_from(options.size_mb)?.saturating_mul(1_000_000);
    anyhow::ensure!(size > 0, "--size-mb must be at least 1");
    let dir = tempfile::tempdir().context("a temporary folder for the clients")?;
    let mut transfer = chat::make_pairs(server, dir.path(), 1, true).await?;
    let (sender, receiver, conversation) = transfer.pop().context("no transfer pair")?;
    let pairs = chat::make_pairs(server, dir.path(), (options.clients / 2).max(1), quiet).await?;
    let chat_options = chat::Options {
        clients: options.clients,
        rate: options.rate,
        window: 1,
        duration: options.duration,
        timeline: false,
    };
    let (alone, pairs) = chat::exchange(pairs, &chat_options, quiet).await?;

    // Incompressible, and different every run.
    let mut file = vec![0u8; size];
    getrandom::fill(&mut file).context("make the file")?;
    let stop = Instant::now() + Duration::from_secs(options.duration);
    let transfers = tokio::spawn(async move {
        let mut speeds = Vec::new();
        loop {
            speeds.push(transfer_once(&sender, &receiver, conversation, &file, quiet).await?);
            if Instant::now() >= stop {
                return anyhow::Ok(speeds);
            }
        }
    });
    let (during, _): (chat::Report, Pairs) = chat::exchange(pairs, &chat_options, true).await?;
    let mut speeds = transfers.await.context("the transfers stopped")??;
    let median = |speeds: &mut Vec<(f64, f64)>, pick: fn(&(f64, f64)) -> f64| {
        speeds.sort_by(|a, b| pick(a).total_cmp(&pick(b)));
        speeds.get(speeds.len() / 2).map_or(0.0, pick)
    };
    let errors = |r: &chat::Report| r.checks.total();
    Ok(Report {
        size_mb: size as f64 / MB,
        transfers: speeds.len(),
        upload_mb_per_sec: median(&mut speeds, |s| s.0),
        download_mb_per_sec: median(&mut speeds, |s| s.1),
        chat_p99_ms_alone: alone.latency.p99_ms,
        chat_p99_ms_during: during.latency.p99_ms,
        chat_errors: errors(&alone) + errors(&during),
        disk: alone.disk.and(during.disk),
    })
}

/// Sends `file` from `sender` to `receiver`, who downloads it; returns (up, down) in MB/s.
async fn transfer_once(
    sender: &users::User,
    receiver: &users::User,
    conversation: protocol::ConversationId,
    file: &[u8],
    quiet: bool,
) -> anyhow::Result<(f64, f64)> {
    let bar = users::progress(file.len(), "upload", quiet);
    let began = Instant::now();
    let (_, body) = sender
        .client
        .send_file_with_id(
            conversation,
            protocol::ClientMsgId::random(),
            "bench.bin",
            file,
            |sent, _| bar.set_position(sent),
        )
        .await
        .context("upload")?;
    let up = file.len() as f64 / MB / began.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let Body::File {
        content: Content::Attachment(attachment),
        ..
    } = body
    else {
        anyhow::bail!("the file was not sent as an attachment");
    };
    let bar = users::progress(file.len(), "download", quiet);
    let began = Instant::now();
    let got = receiver
        .client
        .download(&attachment, |received, _| bar.set_position(received))
        .await
        .context("download")?;
    let down = file.len() as f64 / MB / began.elapsed().as_secs_f64();
    bar.finish_and_clear();
    anyhow::ensure!(got == file, "the downloaded file differs from the one sent");
    Ok((up, down))
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:.0} MB file, {} transfers: up {:.1} MB/s, down {:.1} MB/s (medians)",
            self.size_mb, self.transfers, self.upload_mb_per_sec, self.download_mb_per_sec
        )?;
        writeln!(
            f,
            "other users' chat p99: {:.2} ms alone, {:.2} ms during transfers ({:.2}x)",
            self.chat_p99_ms_alone,
            self.chat_p99_ms_during,
            self.chat_p99_ms_during / self.chat_p99_ms_alone.max(f64::MIN_POSITIVE)
        )?;
        writeln!(
            f,
            "chat messages lost, duplicated, out of order or failed: {}",
            self.chat_errors
        )?;
        writeln!(f, "{}", self.disk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_file_goes_up_and_down_while_chat_goes_on() {
        let cluster =
            e2e::TestCluster::start_with(|o| o.gateway.messages_per_minute = u32::MAX).await;
        let server: SocketAddr = cluster.addr().parse().unwrap();
        let options = Options {
            size_mb: 1,
            clients: 4,
            rate: 40.0,
            duration: 1,
        };
        let report = run(server, &options, true).await.unwrap();
        assert!(report.transfers >= 1, "{report:?}");
        assert!(report.upload_mb_per_sec > 0.0 && report.download_mb_per_sec > 0.0);
        assert!(report.chat_p99_ms_alone > 0.0 && report.chat_p99_ms_during > 0.0);
        assert_eq!(report.chat_errors, 0, "{report:?}");
    }
}
