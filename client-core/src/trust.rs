//! Trust on first use: the fingerprint of each server's key, remembered in a known-servers
//! file (`host:port fingerprint`, one per line). A server that later presents another key is
//! refused with an error that says what to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use protocol::Fingerprint;

use crate::error::ClientError;

/// The known-servers file.
#[derive(Debug, Clone)]
pub struct KnownServers {
    path: PathBuf,
}

impl KnownServers {
    /// The file at `path` (created when the first server is pinned).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<BTreeMap<String, Fingerprint>, ClientError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(ClientError::File {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut known = BTreeMap::new();
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((server, fingerprint)) = line.split_once(' ') else {
                continue;
            };
            if let Ok(fingerprint) = fingerprint.parse() {
                known.insert(server.to_owned(), fingerprint);
            }
        }
        Ok(known)
    }

    /// The fingerprint pinned for `server`, if any.
    pub fn get(&self, server: &str) -> Result<Option<Fingerprint>, ClientError> {
        Ok(self.read()?.get(server).copied())
    }

    /// Pins `fingerprint` for `server`.
    pub fn pin(&self, server: &str, fingerprint: Fingerprint) -> Result<(), ClientError> {
        let mut known = self.read()?;
        known.insert(server.to_owned(), fingerprint);
        let mut text = String::from("# Uchat known servers: address, then the key's fingerprint\n");
        for (server, fingerprint) in known {
            text.push_str(&format!("{server} {}\n", hex::encode(fingerprint.0)));
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ClientError::File {
                path: dir.to_owned(),
                source,
            })?;
        }
        std::fs::write(&self.path, text).map_err(|source| ClientError::File {
            path: self.path.clone(),
            source,
        })
    }
}
