//! Chinese glyphs. egui's bundled fonts have none, so an installed CJK font is loaded as the
//! lowest-priority fallback of every family. The file is read once at start-up, by path, so
//! neither the client nor its tests depend on fontconfig.

use std::path::{Path, PathBuf};

/// Where CJK fonts are commonly installed (Debian/Ubuntu, Fedora, Arch, macOS, Windows).
pub const CJK_FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\simsun.ttc",
];

/// The environment variable that names a font file to use instead.
pub const FONT_ENV: &str = "UCHAT_CJK_FONT";

/// A font file's bytes and where they came from.
#[derive(Clone)]
pub struct CjkFont {
    /// Where it was read.
    pub path: PathBuf,
    /// The file.
    pub bytes: Vec<u8>,
}

impl std::fmt::Debug for CjkFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CjkFont").field("path", &self.path).finish()
    }
}

/// Reads the first CJK font found ([`FONT_ENV`] first, then [`CJK_FONT_PATHS`]).
pub fn find() -> Option<CjkFont> {
    let chosen = std::env::var_os(FONT_ENV).map(PathBuf::from);
    chosen
        .into_iter()
        .chain(CJK_FONT_PATHS.iter().map(PathBuf::from))
        .find_map(|path| read(&path))
}

fn read(path: &Path) -> Option<CjkFont> {
    let bytes = std::fs::read(path).ok()?;
    Some(CjkFont {
        path: path.to_owned(),
        bytes,
    })
}

/// Adds `font` as the last fallback of the proportional and monospace families.
pub fn install(ctx: &egui::Context, font: &CjkFont) {
    use egui::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| InsertFontFamily {
            family,
            priority: FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(FontInsert {
        name: "cjk".into(),
        data: egui::FontData::from_owned(font.bytes.clone()),
        families,
    });
}
