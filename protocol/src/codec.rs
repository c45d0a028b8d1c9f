//! The bincode 2 configuration every message uses, and the two functions that apply it.
//!
//! ```text
//! little-endian, fixed-width integers (u32 = 4 bytes, u64 = 8 bytes; no varints)
//! enum      = variant index u32 LE, then the variant's fields in order
//! String    = length u64 LE, UTF-8 bytes          bytes (ByteBuf) = length u64 LE, bytes
//! Vec<T>    = length u64 LE, each T               [u8; N] = N bytes, no length
//! Option<T> = u8 0 (None) | u8 1, T               bool = u8 0 | 1
//! ```
//!
//! Decoding refuses trailing bytes and any length that claims more than [`DECODE_LIMIT`].

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CodecError;
use crate::frame::DEFAULT_MAX_FRAME_LEN;

/// The most bytes one decode may claim for its contents: a frame's largest plaintext.
pub const DECODE_LIMIT: usize = DEFAULT_MAX_FRAME_LEN;

type Config = Configuration<LittleEndian, Fixint, Limit<DECODE_LIMIT>>;

fn config() -> Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<DECODE_LIMIT>()
}

/// Encodes a message.
pub fn encode<M: Serialize>(message: &M) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serde::encode_to_vec(message, config())?)
}

/// Encodes a message, appending it to `out`.
pub fn encode_into<M: Serialize>(message: &M, out: &mut Vec<u8>) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(message, out, config())?;
    Ok(())
}

/// Decodes exactly one message from `bytes`.
pub fn decode<M: DeserializeOwned>(bytes: &[u8]) -> Result<M, CodecError> {
    let (message, read) = bincode::serde::decode_from_slice(bytes, config())?;
    match bytes.len() - read.min(bytes.len()) {
        0 => Ok(message),
        trailing => Err(CodecError::Trailing(trailing)),
    }
}
