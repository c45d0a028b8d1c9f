//! Long-term keys: the server's identity, its certificate and fingerprint, and private key files.
//!
//! The server makes its key pair on first start and keeps the private exponent in a file of
//! mode 0600 in its data directory. Its certificate is its public key, name and creation time;
//! clients pin the SHA-256 fingerprint of the public key on first use.
//!
//! ```text
//! certificate = | version u8 = 1 | created_at u64 BE (Unix seconds) | public_key [256] |
//!               | name_len u8 (1..=255) | name [name_len] (UTF-8) |
//! ```

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::crypto::dh::{ELEMENT_LEN, EXPONENT_LEN, KeyPair, PublicKey};
use crate::error::{HandshakeError, KeyFileError};

/// Version byte of the certificate layout.
pub const CERTIFICATE_VERSION: u8 = 1;

/// Longest server name, in bytes of UTF-8.
pub const MAX_SERVER_NAME_LEN: usize = 255;

/// Length of an encoded certificate before the name.
const CERTIFICATE_FIXED_LEN: usize = 1 + 8 + ELEMENT_LEN + 1;

/// Longest encoded certificate.
pub const MAX_CERTIFICATE_LEN: usize = CERTIFICATE_FIXED_LEN + MAX_SERVER_NAME_LEN;

/// The SHA-256 of a long-term public key, which clients pin and people compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Computes the fingerprint of a public key.
    pub fn of(key: &PublicKey) -> Self {
        Self(Sha256::digest(key.as_bytes()).into())
    }
}

impl fmt::Display for Fingerprint {
    /// Writes 16 groups of four lowercase hex digits separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.chunks(2).enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(&hex::encode(pair))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// A fingerprint that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 64 hex digits (spaces and colons allowed)")]
pub struct ParseFingerprintError;

impl FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        let bytes = hex::decode(digits).map_err(|_| ParseFingerprintError)?;
        Ok(Self(bytes.try_into().map_err(|_| ParseFingerprintError)?))
    }
}

/// What the server presents in the handshake: its public key, name and creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertificate {
    /// The server's name, as the operator set it.
    pub name: String,
    /// The long-term public value `S`.
    pub public_key: PublicKey,
    /// When the key was made, in Unix seconds.
    pub created_at: u64,
}

impl ServerCertificate {
    /// Returns the fingerprint of the certificate's public key.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key)
    }

    /// Encodes the certificate in its canonical layout (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let name = truncate_name(&self.name);
        let mut out = Vec::with_capacity(CERTIFICATE_FIXED_LEN + name.len());
        out.push(CERTIFICATE_VERSION);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(self.public_key.as_bytes());
        // truncate_name guarantees the length fits in a byte.
        out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(name.as_bytes());
        out
    }

    /// Decodes a certificate, validating its layout and public key.
    pub fn decode(bytes: &[u8]) -> Result<Self, HandshakeError> {
        let malformed = HandshakeError::Malformed;
        let (&version, rest) = bytes.split_first().ok_or(malformed("empty certificate"))?;
        if version != CERTIFICATE_VERSION {
            return Err(malformed("unknown certificate version"));
        }
        let (created_at, rest) = rest
            .split_first_chunk::<8>()
            .ok_or(malformed("certificate too short"))?;
        let (key, rest) = rest
            .split_at_checked(ELEMENT_LEN)
            .ok_or(malformed("certificate too short"))?;
        let (&name_len, name) = rest
            .split_first()
            .ok_or(malformed("certificate too short"))?;
        if name_len == 0 || name.len() != usize::from(name_len) {
            return Err(malformed("certificate name length"));
        }
        let name =
            std::str::from_utf8(name).map_err(|_| malformed("certificate name not UTF-8"))?;
        Ok(Self {
            name: name.to_owned(),
            public_key: PublicKey::from_bytes(key)?,
            created_at: u64::from_be_bytes(*created_at),
        })
    }
}

/// Cuts a name to at most [`MAX_SERVER_NAME_LEN`] bytes on a character boundary; an empty
/// name becomes `uchat`.
fn truncate_name(name: &str) -> &str {
    if name.is_empty() {
        return "uchat";
    }
    let mut end = name.len().min(MAX_SERVER_NAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.get(..end).unwrap_or("uchat")
}

/// The server's long-term identity: its key pair and the certificate that presents it.
pub struct ServerIdentity {
    key: KeyPair,
    certificate: ServerCertificate,
    encoded_certificate: Vec<u8>,
}

impl ServerIdentity {
    /// Builds an identity from a key pair, a name and a creation time (Unix seconds).
    pub fn new(key: KeyPair, name: &str, created_at: u64) -> Self {
        let certificate = ServerCertificate {
            name: truncate_name(name).to_owned(),
            public_key: key.public().clone(),
            created_at,
        };
        let encoded_certificate = certificate.encode();
        Self {
            key,
            certificate,
            encoded_certificate,
        }
    }

    /// Makes a fresh identity named `name`, created now.
    pub fn generate(name: &str) -> Result<Self, KeyFileError> {
        Ok(Self::new(KeyPair::generate()?, name, unix_now()))
    }

    /// Loads the identity at `path`, or makes one and saves it there (mode 0600) when the file
    /// does not exist yet. Returns the identity and whether it was made now.
    pub fn load_or_generate(path: &Path, name: &str) -> Result<(Self, bool), KeyFileError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok((Self::parse_key_file(path, &text)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let identity = Self::generate(name)?;
                identity.save(path)?;
                Ok((identity, true))
            }
            Err(source) => Err(KeyFileError::Io {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Writes the identity to `path` with mode 0600, replacing the file atomically.
    pub fn save(&self, path: &Path) -> Result<(), KeyFileError> {
        let secret = Zeroizing::new(hex::encode(self.key.secret_bytes()));
        let text = Zeroizing::new(format!(
            "{SERVER_KEY_HEADER}\nname {}\ncreated {}\nsecret {}\n",
            self.certificate.name,
            self.certificate.created_at,
            secret.as_str()
        ));
        write_private_file(path, text.as_bytes())
    }

    fn parse_key_file(path: &Path, text: &str) -> Result<Self, KeyFileError> {
        let invalid = |reason| KeyFileError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let mut lines = text.lines();
        if lines.next() != Some(SERVER_KEY_HEADER) {
            return Err(invalid("missing header"));
        }
        let (mut name, mut created, mut secret) = (None, None, None);
        for line in lines {
            match line.split_once(' ') {
                Some(("name", value)) => name = Some(value),
                Some(("created", value)) => created = value.parse::<u64>().ok(),
                Some(("secret", value)) => secret = Some(Zeroizing::new(value.to_owned())),
                _ => {}
            }
        }
        let name = name.ok_or(invalid("missing name"))?;
        let created = created.ok_or(invalid("missing or bad creation time"))?;
        let secret = secret.ok_or(invalid("missing secret"))?;
        let mut bytes = Zeroizing::new([0u8; EXPONENT_LEN]);
        hex::decode_to_slice(secret.as_str(), bytes.as_mut_slice())
            .map_err(|_| invalid("secret is not 64 hex digits"))?;
        let key = KeyPair::from_secret(&bytes)?;
        Ok(Self::new(key, name, created))
    }

    /// Returns the certificate.
    pub fn certificate(&self) -> &ServerCertificate {
        &self.certificate
    }

    /// Returns the certificate in its canonical encoding.
    pub fn encoded_certificate(&self) -> &[u8] {
        &self.encoded_certificate
    }

    /// Returns the fingerprint clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.certificate.fingerprint()
    }

    /// Returns the long-term key pair.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("name", &self.certificate.name)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// First line of a server key file.
const SERVER_KEY_HEADER: &str = "uchat-server-key v1";

/// Writes `contents` to `path` readable by the owner only (mode 0600 on Unix): first to a
/// temporary file beside it, created with that mode, then renamed over `path`.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), KeyFileError> {
    let io_err = |path: &Path| {
        let path: PathBuf = path.to_owned();
        move |source| KeyFileError::Io { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(contents).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Returns the current time in Unix seconds (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_round_trips() {
        let identity = ServerIdentity::generate("测试服务器").unwrap();
        let encoded = identity.encoded_certificate();
        let decoded = ServerCertificate::decode(encoded).unwrap();
        assert_eq!(&decoded, identity.certificate());
        assert_eq!(decoded.fingerprint(), identity.fingerprint());
    }

    #[test]
    fn certificate_rejects_truncation_and_extension() {
        let identity = ServerIdentity::generate("s").unwrap();
        let encoded = identity.encoded_certificate();
        for len in 0..encoded.len() {
            assert!(ServerCertificate::decode(&encoded[..len]).is_err(), "{len}");
        }
        let mut longer = encoded.to_vec();
        longer.push(b'x');
        assert!(ServerCertificate::decode(&longer).is_err());
    }

    #[test]
    fn long_names_are_cut_on_a_character_boundary() {
        let name = "群".repeat(200);
        let identity = ServerIdentity::generate(&name).unwrap();
        let cut = &identity.certificate().name;
        assert!(cut.len() <= MAX_SERVER_NAME_LEN);
        assert!(name.starts_with(cut.as_str()));
        ServerCertificate::decode(identity.encoded_certificate()).unwrap();
    }

    #[test]
    fn key_file_is_private_and_reloads_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data/server.key");
        let (made, fresh) = ServerIdentity::load_or_generate(&path, "uchat").unwrap();
        assert!(fresh);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (loaded, fresh) = ServerIdentity::load_or_generate(&path, "other").unwrap();
        assert!(!fresh);
        assert_eq!(loaded.certificate(), made.certificate());
    }

    #[test]
    fn corrupt_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        std::fs::write(&path, "uchat-server-key v1\nname x\ncreated 1\nsecret zz\n").unwrap();
        assert!(matches!(
            ServerIdentity::load_or_generate(&path, "x"),
            Err(KeyFileError::Invalid { .. })
        ));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("secret zz")
        );
    }

    #[test]
    fn fingerprint_parses_what_it_prints() {
        let fp = Fingerprint([0xab; 32]);
        assert_eq!(fp.to_string().parse::<Fingerprint>().unwrap(), fp);
        assert!("abcd".parse::<Fingerprint>().is_err());
    }
}
