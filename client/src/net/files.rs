//! Files for the network side: sending a file from disk, images fetched and decoded for
//! display, received files saved (never overwriting, never outside the downloads folder),
//! and folders listed for the in-window chooser. All of it off the UI thread.

use std::path::{Path, PathBuf};

use client_core::Client;
use protocol::ClientMsgId;
use protocol::ConversationId;
use protocol::e2e::Content;

use super::{NetConfig, Notice, Out, Pixels, Update, sent};

/// Largest file the client reads to send (the server's own limit is checked again there).
pub const SEND_FILE_MAX: u64 = 100 * 1024 * 1024;

/// Largest image, in pixels on its longer side, decoded for display (bigger ones are scaled
/// down: a full-size view of a 100-megapixel image would hold hundreds of megabytes).
pub const IMAGE_MAX_SIDE: u32 = 4096;

fn progress(out: &Out, name: &str) -> impl Fn(u64, u64) + Send + Sync + use<> {
    let (out, name) = (out.clone(), name.to_owned());
    move |done, total| {
        out.send(Update::Progress {
            name: name.clone(),
            done,
            total,
            finished: false,
        })
    }
}

fn finished(out: &Out, name: &str) {
    out.send(Update::Progress {
        name: name.to_owned(),
        done: 0,
        total: 0,
        finished: true,
    });
}

pub(super) async fn send_file(
    client: &Client,
    out: &Out,
    conversation: ConversationId,
    path: &Path,
) {
    let name = path
        .file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    let bytes = match read_file(path).await {
        Ok(bytes) => bytes,
        Err(err) => return out.send(Update::Notice(Notice::Failed(err))),
    };
    let id = ClientMsgId::random();
    let result = client
        .send_file_with_id(conversation, id, &name, &bytes, progress(out, &name))
        .await;
    finished(out, &name);
    match result {
        Ok((seq, body)) => out.send(sent(conversation, id, body, client, Ok(seq))),
        Err(err) => out.failed(&err),
    }
}

/// Largest number of entries the file chooser lists from one folder.
pub const FOLDER_MAX_ENTRIES: usize = 2_000;

pub(super) async fn list_folder(folder: &Path) -> Vec<(PathBuf, bool)> {
    let mut entries: Vec<(bool, PathBuf)> = Vec::new();
    let Ok(mut dir) = tokio::fs::read_dir(folder).await else {
        return Vec::new();
    };
    while let Ok(Some(entry)) = dir.next_entry().await {
        if entries.len() >= FOLDER_MAX_ENTRIES {
            break;
        }
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let is_dir = entry.file_type().await.is_ok_and(|t| t.is_dir());
        entries.push((!is_dir, entry.path()));
    }
    entries.sort();
    entries
        .into_iter()
        .map(|(file, path)| (path, !file))
        .collect()
}

async fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display().to_string();
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| format!("{shown}: {e}"))?;
    if meta.len() > SEND_FILE_MAX {
        return Err(format!(
            "{shown}: larger than {} MB",
            SEND_FILE_MAX / 1024 / 1024
        ));
    }
    tokio::fs::read(path)
        .await
        .map_err(|e| format!("{shown}: {e}"))
}

pub(super) async fn load_image(client: &Client, content: &Content) -> Result<Pixels, String> {
    let bytes = client.content(content).await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || decode(&bytes))
        .await
        .map_err(|e| e.to_string())?
}

/// Decodes an image, scaled down to at most [`IMAGE_MAX_SIDE`] on its longer side.
pub fn decode(bytes: &[u8]) -> Result<Pixels, String> {
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(4 * IMAGE_MAX_SIDE);
    limits.max_image_height = Some(4 * IMAGE_MAX_SIDE);
    reader.limits(limits);
    let mut img = reader.decode().map_err(|e| e.to_string())?;
    if img.width().max(img.height()) > IMAGE_MAX_SIDE {
        img = img.resize(
            IMAGE_MAX_SIDE,
            IMAGE_MAX_SIDE,
            image::imageops::FilterType::Triangle,
        );
    }
    let rgba = img.to_rgba8();
    let size = [rgba.width() as usize, rgba.height() as usize];
    Ok(Pixels {
        size,
        rgba: rgba.into_raw(),
    })
}

pub(super) async fn save(
    client: &Client,
    config: &NetConfig,
    out: &Out,
    name: &str,
    content: &Content,
) {
    let bytes = match content {
        Content::Inline(bytes) => Ok(bytes.to_vec()),
        Content::Attachment(attachment) => {
            let result = client.download(attachment, progress(out, name)).await;
            finished(out, name);
            result
        }
    };
    let bytes = match bytes {
        Ok(bytes) => bytes,
        Err(err) => return out.failed(&err),
    };
    match write_unique(&config.downloads, name, &bytes).await {
        Ok(path) => out.send(Update::Notice(Notice::Saved(path))),
        Err(err) => out.send(Update::Notice(Notice::Failed(err))),
    }
}

/// Writes `bytes` as `dir/name`, or `dir/name (2)` and so on when that is taken. Only the
/// last component of `name` is used: a sender cannot steer the file elsewhere.
async fn write_unique(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, String> {
    let file_name = Path::new(name)
        .file_name()
        .map_or_else(|| "file".to_owned(), |n| n.to_string_lossy().into_owned());
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let (stem, ext) = match file_name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => (stem.to_owned(), format!(".{ext}")),
        _ => (file_name.clone(), String::new()),
    };
    for n in 1..1000 {
        let candidate = if n == 1 {
            dir.join(&file_name)
        } else {
            dir.join(format!("{stem} ({n}){ext}"))
        };
        let open = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&candidate)
            .await;
        match open {
            Ok(mut file) => {
                use tokio::io::AsyncWriteExt;
                // tokio's file hands writes to a blocking thread: flush before saying "saved".
                let written = async {
                    file.write_all(bytes).await?;
                    file.flush().await
                };
                written
                    .await
                    .map_err(|e| format!("{}: {e}", candidate.display()))?;
                return Ok(candidate);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(format!("{}: {err}", candidate.display())),
        }
    }
    Err(format!(
        "{}: too many files named {file_name}",
        dir.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn saving_never_overwrites_and_keeps_to_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_unique(dir.path(), "a.txt", b"1").await.unwrap();
        let second = write_unique(dir.path(), "a.txt", b"2").await.unwrap();
        let escaped = write_unique(dir.path(), "../../etc/x", b"3").await.unwrap();
        assert_eq!(first, dir.path().join("a.txt"));
        assert_eq!(second, dir.path().join("a (2).txt"));
        assert_eq!(escaped, dir.path().join("x"));
        assert_eq!(std::fs::read(first).unwrap(), b"1");
    }

    #[test]
    fn a_huge_image_is_scaled_down_and_garbage_is_an_error() {
        let img = image::RgbaImage::new(IMAGE_MAX_SIDE * 2, 10);
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let pixels = decode(&png).unwrap();
        assert_eq!(pixels.size[0], IMAGE_MAX_SIDE as usize);
        assert!(decode(b"not an image").is_err());
    }
}
