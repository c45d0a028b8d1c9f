//! The cryptographic building blocks: Diffie-Hellman, AES-256-CBC, HMAC-MD5 and HKDF-SHA256.
//!
//! Each is a thin, named wrapper over a RustCrypto or num-bigint primitive so that the rest of
//! the crate reads as protocol, not as crate plumbing. Nothing here does I/O.

pub mod cipher;
pub mod dh;
pub mod kdf;
pub mod mac;
pub mod monty;
