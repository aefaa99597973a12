use thiserror::Error;

/// Error from the container layer (SPEC §1). `offset` is the byte offset in the compressed
/// file where the offending frame starts.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// The input is empty.
    #[error("empty file")]
    Empty,
    /// Bytes at `offset` start neither a zstd frame nor a skippable frame.
    #[error("offset {offset}: not a zstd frame (magic {magic:#010x}){hint}")]
    BadMagic {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
        /// The 4 bytes found there, little-endian.
        magic: u32,
        /// Extra explanation, e.g. that the input looks like uncompressed asciicast.
        hint: &'static str,
    },
    /// A frame header or body ends before the file does (crash tail or cut file).
    #[error("offset {offset}: frame truncated ({available} bytes left)")]
    Truncated {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
        /// Bytes left in the file from `offset`.
        available: u64,
    },
    /// A skippable frame of a variant sealcast never writes.
    #[error("offset {offset}: unexpected skippable frame variant {variant}")]
    UnexpectedSkippable {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
        /// The skippable frame variant (low nibble of its magic number).
        variant: u8,
    },
    /// A checkpoint payload larger than [`crate::MAX_CHECKPOINT_PAYLOAD`].
    #[error("offset {offset}: checkpoint frame of {len} bytes exceeds the limit")]
    OversizedCheckpoint {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
        /// Its payload length, bytes.
        len: u64,
    },
    /// zstd rejected the frame (corrupt block, checksum mismatch).
    #[error("offset {offset}: zstd: {reason}")]
    Zstd {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
        /// zstd's error text.
        reason: String,
    },
    /// A data frame decompresses to more than [`crate::MAX_FRAME_CONTENT`] bytes.
    #[error("offset {offset}: data frame larger than the limit")]
    OversizedFrame {
        /// Byte offset of the frame in the compressed file.
        offset: u64,
    },
}

impl ContainerError {
    /// Byte offset in the compressed file, where one applies.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ContainerError::Empty => None,
            ContainerError::BadMagic { offset, .. }
            | ContainerError::Truncated { offset, .. }
            | ContainerError::UnexpectedSkippable { offset, .. }
            | ContainerError::OversizedCheckpoint { offset, .. }
            | ContainerError::Zstd { offset, .. }
            | ContainerError::OversizedFrame { offset } => Some(*offset),
        }
    }
}

/// Error parsing one line of the decompressed stream (SPEC §2).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The line is not valid JSON of the expected shape.
    #[error("{0}")]
    Json(String),
    /// Header `version` is not 3.
    #[error("asciicast version {0} is not supported (need 3)")]
    Version(i64),
    /// A field has an impossible value (negative interval, bad resize spec, bad base64).
    #[error("{0}")]
    Invalid(String),
}
