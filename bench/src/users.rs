//! The benchmark's users on the real client path: client-core clients, their history in
//! memory, registered and logged in by the run, under names that say which run made them.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use client_core::{
    Client, ClientConfig, ClientError, ClientEvent, LocalStore, RegisterForm, plain,
};
use protocol::message::{ErrorCode, Sex};
use protocol::{ConversationId, UserId};
use tokio::sync::mpsc::UnboundedReceiver;

/// The password every benchmark user gets.
const PASSWORD: &str = "benchmark password";

/// Registrations and logins made at once while setting up.
pub const SETUP_CONCURRENCY: usize = 16;

/// Times a refused registration or login is tried again when the server says to wait.
const SETUP_RETRIES: u32 = 100;

/// How long to wait before trying again.
const SETUP_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Users of one role one run can make (four digits in a username).
pub const MAX_PER_ROLE: usize = 10_000;

/// Letters a run's name is made of: none confusable with a digit or another letter.
const RUN_LETTERS: &str = "abcdefghjkpqsuvwxyz";

/// One user of the run.
pub struct User {
    /// The logged-in client.
    pub client: Client,
    /// What the server told it.
    pub events: UnboundedReceiver<ClientEvent>,
    /// Its account.
    pub id: UserId,
}

/// Three letters that name this run's users (usernames have at most 8 characters: these,
/// a letter for the role and 4 digits). Letters that look like digits or like other letters
/// (`o`, `l`, `rn` for `m`…) are left out: the server refuses a name confusable with one
/// taken.
pub fn run_name() -> String {
    (0..3)
        .map(|_| {
            let letters = RUN_LETTERS.as_bytes();
            let pick = rand_u32() as usize % letters.len();
            char::from(letters.get(pick).copied().unwrap_or(b'a'))
        })
        .collect()
}

/// The name of the `n`th user of `role` (one letter) in `run`.
pub fn name(run: &str, role: char, n: usize) -> String {
    format!("{run}{role}{n:04}")
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// Registers and logs in `name`, its history in memory.
pub async fn user(server: SocketAddr, dir: &Path, name: String) -> anyhow::Result<User> {
    let mut config = ClientConfig::new(server.to_string(), dir.join(&name));
    config.local_store = LocalStore::Memory;
    // The server tells new accounts how hard to stretch their passwords; the benchmark
    // measures messaging, so it accepts whatever the server was started with (see --help).
    config.min_kdf = protocol::password::KdfCost {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    let (client, events) = Client::connect(config)
        .await
        .with_context(|| format!("connect {name}"))?;
    patiently(|| {
        client.register(RegisterForm {
            username: name.clone(),
            password: PASSWORD.into(),
            email: format!("{name}@bench.invalid"),
            sex: Sex::Undisclosed,
            age: 30,
        })
    })
    .await
    .with_context(|| format!("register {name}"))?;
    let bundle = patiently(|| client.login(&name, PASSWORD))
        .await
        .with_context(|| format!("log in {name}"))?;
    Ok(User {
        client,
        events,
        id: bundle.me.id,
    })
}

/// Longest a greeting may take to be told (setup fails after it).
const GREETING_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// `from` says hello to `to` in `conversation`, and `to` waits until it is told. Friends who
/// chat have spoken before: their clients have fetched each other's public keys and agreed
/// their pairwise key (a Diffie-Hellman agreement, once per friend). A load whose first
/// messages are also every pair's first ever would time that one-off client work of all its
/// clients at once, on the server's own cores, as the server's latency. The hello is no
/// message of the load (its text has no due time) and is not counted.
pub async fn greet(from: &User, to: &mut User, conversation: ConversationId) -> anyhow::Result<()> {
    from.client
        .send_text(conversation, plain("hello"))
        .await
        .context("send a greeting")?;
    let told = async {
        while let Some(event) = to.events.recv().await {
            if let ClientEvent::Message(message) = event
                && message.sender == from.id
                && message.conversation == conversation
            {
                return Ok(());
            }
        }
        anyhow::bail!("the client stopped before the greeting was told")
    };
    tokio::time::timeout(GREETING_MAX, told)
        .await
        .context("the greeting was never told")?
}

/// Runs `attempt` again while the server answers that this address is over its limit (a
/// burst of setup can outrun even a raised limit), at most [`SETUP_RETRIES`] times.
async fn patiently<T, F>(mut attempt: impl FnMut() -> F) -> Result<T, ClientError>
where
    F: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut tries = 0;
    loop {
        match attempt().await {
            Err(err) if err.code() == Some(ErrorCode::RateLimited) && tries < SETUP_RETRIES => {
                tries += 1;
                tokio::time::sleep(SETUP_RETRY_WAIT).await;
            }
            result => return result,
        }
    }
}

/// A progress bar for `len` steps of `what`, hidden when `quiet`.
pub fn progress(len: usize, what: &str, quiet: bool) -> indicatif::ProgressBar {
    let len = u64::try_from(len).unwrap_or(u64::MAX);
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(len)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}
