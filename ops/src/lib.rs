//! What every Uchat server process (`uchat-server`, the services, the gateway) does the same
//! way, so an operator learns it once: how it logs, what it measures ([`metrics`]), and how
//! it stops.
//!
//! It holds no rule of the product and reaches no database: the gateway depends on it too.

pub mod grpc;
pub mod metrics;
#[cfg(feature = "testing")]
pub mod testing;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The environment variable choosing the log format: `text` (the default) or `json` (one
/// object per line, for log collectors).
pub const LOG_FORMAT_ENV: &str = "UCHAT_LOG_FORMAT";

/// The level when `RUST_LOG` is not set.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The format [`LOG_FORMAT_ENV`] names; text when it is unset. An unknown value is an
    /// error that names the accepted ones.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var(LOG_FORMAT_ENV) {
            Err(_) => Ok(Self::Text),
            Ok(value) => match value.to_ascii_lowercase().as_str() {
                "" | "text" => Ok(Self::Text),
                "json" => Ok(Self::Json),
                _ => Err(format!(
                    "{LOG_FORMAT_ENV}={value}: expected `text` or `json`"
                )),
            },
        }
    }
}

/// Sets up logging for a server process: the level from `RUST_LOG` (default `info`), the
/// format from [`LOG_FORMAT_ENV`], colours only when standard output is a terminal.
pub fn init_logging() -> Result<(), String> {
    let format = LogFormat::from_env()?;
    let ansi = std::io::stdout().is_terminal();
    install(format, ansi, std::io::stdout);
    Ok(())
}

/// Installs the global subscriber (a second call changes nothing).
fn install<W>(format: LogFormat, ansi: bool, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_LEVEL));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// A future that resolves when the process is asked to stop: Ctrl-C (SIGINT) or SIGTERM,
/// which is what `docker stop` and service managers send. Callers then drain and exit.
///
/// The signals are caught from the moment this is called, not when the future is first
/// polled: call it first thing in `main`, so a SIGTERM during start-up stops the process
/// cleanly instead of killing it. Must be called within a tokio runtime.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(term) => {}
                () = wait(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_the_fields_and_no_colour() {
        let captured = Captured::default();
        let writer = captured.clone();
        install(LogFormat::Json, false, move || writer.clone());
        tracing::info!(user = 7, "logged in");
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().last().unwrap();
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(line.contains(r#""message":"logged in""#), "{line}");
        assert!(line.contains(r#""user":7"#), "{line}");
        assert!(!text.contains('\u{1b}'), "colour codes in {text:?}");
    }
}
