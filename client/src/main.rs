//! `uchat`: Uchat's egui desktop client.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use client::i18n::Lang;
use client::settings::{FILE, Settings};
use client::{App, Options};

/// Uchat, the secure messenger: log in, chat with friends and groups, send images and files.
#[derive(Debug, Parser)]
#[command(name = "uchat", version)]
struct Args {
    /// The server to connect to, `host:port` (default: the last one used, else 127.0.0.1:7878).
    #[arg(long, env = "UCHAT_SERVER")]
    server: Option<String>,
    /// Where the client keeps its keys, known servers, history and image cache (default: the
    /// platform's data folder, e.g. ~/.local/share/uchat).
    #[arg(long, env = "UCHAT_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The interface language, `en` or `zh` (default: the last one chosen, else the system's).
    #[arg(long, env = "UCHAT_LANG", value_parser = ["en", "zh"])]
    lang: Option<String>,
    /// Where received files are saved (default: Downloads/Uchat in your home folder).
    #[arg(long, env = "UCHAT_DOWNLOADS")]
    downloads: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => dirs::data_dir()
            .context("no data folder on this system: pass --data-dir")?
            .join("uchat"),
    };
    let settings = Settings::load(&data_dir.join(FILE));
    let lang = args
        .lang
        .as_deref()
        .and_then(Lang::from_code)
        .or(settings.lang)
        .unwrap_or_else(|| sys_locale::get_locale().map_or(Lang::En, |l| Lang::from_locale(&l)));
    let downloads = args.downloads.unwrap_or_else(|| {
        dirs::download_dir()
            .or_else(dirs::home_dir)
            .unwrap_or_else(|| PathBuf::from("."))
            .join("Uchat")
    });
    let cjk_font = client::fonts::find();
    if cjk_font.is_none() {
        tracing::warn!("no CJK font found: install fonts-wqy-microhei (or set UCHAT_CJK_FONT)");
    }
    let options = Options {
        server: args
            .server
            .or(settings.server)
            .unwrap_or_else(|| "127.0.0.1:7878".into()),
        data_dir,
        downloads,
        lang,
        username: settings.username.unwrap_or_default(),
        cjk_font,
        min_kdf: protocol::password::MIN_KDF,
    };
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Uchat")
            .with_inner_size([1000.0, 700.0])
            .with_min_inner_size([640.0, 480.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Uchat",
        native,
        Box::new(|_| Ok(Box::new(App::new(options)?))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not open: {e}"))
}
