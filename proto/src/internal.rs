//! Internal calls authenticate: every gRPC call between Uchat's own processes (gateway to
//! services, services to the gateways' Push servers, `uchat-server online`) carries the
//! deployment's internal key, and every internal server refuses a call without it before
//! the call reaches a handler.
//!
//! Why a shared key and not TLS: the services already trust one another completely (they
//! share a database), so what must be kept out is any *other* process that can reach a port:
//! another user on the machine, another container on the network. A 256-bit key that only
//! Uchat's processes can read does that with one file and no certificate authority. It travels
//! in the clear, so the network between the processes must not be one an attacker can read
//! (loopback; a private compose network); where it is, run the internal links over TLS or a
//! VPN (docs/SECURITY.md).
//!
//! The key is compared in constant time; it is never logged (its `Debug` is redacted).

use std::path::Path;
use std::sync::Arc;

use subtle::ConstantTimeEq;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::transport::Transport;

/// The key's length in bytes.
pub const KEY_LEN: usize = 32;

/// The metadata key the internal key travels in.
pub const HEADER: &str = "x-uchat-internal-key";

/// A transport whose calls carry the internal key: what every internal client wraps.
pub type Authenticated = InterceptedService<Transport, Present>;

/// The deployment's internal key.
#[derive(Clone, PartialEq, Eq)]
pub struct InternalKey([u8; KEY_LEN]);

impl std::fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalKey(..)")
    }
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the file failed.
    #[error("internal key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
    /// The file does not hold 64 hexadecimal digits.
    #[error(
        "internal key file {0}: expected {hex} hexadecimal digits (make one with `openssl rand -hex 32`)",
        hex = KEY_LEN * 2
    )]
    Malformed(String),
    /// The system's random source failed.
    #[error("cannot make an internal key: the system's random source failed")]
    Random,
}

impl InternalKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|_| KeyError::Random)?;
        Ok(Self(key))
    }

    /// Reads a key written as 64 hexadecimal digits (surrounding whitespace ignored).
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(text.trim()).ok_or_else(|| KeyError::Malformed(path.display().to_string()))
    }

    /// Reads the key at `path`, or makes one and writes it there readable by its owner only.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let key = Self::generate()?;
        write_private(path, &key.hex()).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(key)
    }

    /// The key made of these bytes (for tests, and keys kept elsewhere).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    fn parse(hex_digits: &str) -> Option<Self> {
        let mut key = [0u8; KEY_LEN];
        hex::decode_to_slice(hex_digits, &mut key).ok()?;
        Some(Self(key))
    }

    fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The interceptor that adds this key to outgoing calls.
    pub fn present(&self) -> Present {
        // Made once: hex digits are always valid metadata, so `None` cannot happen.
        Present(AsciiMetadataValue::try_from(self.hex()).ok())
    }

    /// The interceptor that refuses incoming calls without this key.
    pub fn require(&self) -> Require {
        Require(Arc::new(self.clone()))
    }

    /// Wraps `transport` (a [`tonic::transport::Channel`], or a service of this process) so
    /// that its calls carry this key.
    pub fn authenticate(&self, transport: impl Into<Transport>) -> Authenticated {
        InterceptedService::new(transport.into(), self.present())
    }
}

/// Adds the internal key to each outgoing call.
#[derive(Clone)]
pub struct Present(Option<AsciiMetadataValue>);

impl std::fmt::Debug for Present {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Present(..)")
    }
}

impl Interceptor for Present {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let value = self
            .0
            .clone()
            .ok_or_else(|| Status::internal("the internal key is not valid metadata"))?;
        request.metadata_mut().insert(HEADER, value);
        Ok(request)
    }
}

/// Refuses each incoming call that does not carry the internal key, with `Unauthenticated`.
#[derive(Clone)]
pub struct Require(Arc<InternalKey>);

impl std::fmt::Debug for Require {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Require(..)")
    }
}

impl Interceptor for Require {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let presented = request
            .metadata()
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(InternalKey::parse);
        match presented {
            Some(key) if bool::from(key.0.ct_eq(&self.0.0)) => Ok(request),
            _ => Err(Status::unauthenticated(
                "this is an internal Uchat service: calls need the deployment's internal key",
            )),
        }
    }
}

/// Writes `contents` to a new file readable and writable by its owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(interceptor: &mut impl Interceptor, request: Request<()>) -> Result<(), Status> {
        interceptor.call(request).map(|_| ())
    }

    #[test]
    fn a_call_passes_only_with_the_same_key() {
        let key = InternalKey::generate().unwrap();
        let mut require = key.require();
        let presented = key.present().call(Request::new(())).unwrap();
        assert!(call(&mut require, presented).is_ok());

        let other = InternalKey::generate()
            .unwrap()
            .present()
            .call(Request::new(()))
            .unwrap();
        let refused = call(&mut require, other).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        let bare = call(&mut require, Request::new(())).unwrap_err();
        assert_eq!(bare.code(), tonic::Code::Unauthenticated);

        let mut garbled = Request::new(());
        garbled
            .metadata_mut()
            .insert(HEADER, AsciiMetadataValue::from_static("zz"));
        assert!(call(&mut require, garbled).is_err());
    }

    #[test]
    fn a_created_key_is_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("internal.key");
        let created = InternalKey::load_or_create(&path).unwrap();
        assert_eq!(InternalKey::load_or_create(&path).unwrap(), created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(format!("{created:?}"), "InternalKey(..)");
    }

    #[test]
    fn a_malformed_file_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("internal.key");
        std::fs::write(&path, "not hex").unwrap();
        let err = InternalKey::load(&path).unwrap_err().to_string();
        assert!(err.contains("openssl rand -hex 32"), "{err}");
    }
}
