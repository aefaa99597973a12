//! sealcast v1 integrity layer (SPEC §4–§6): keys, trust, the line chain, checkpoints.
//!
//! Pure computation: no files, no clocks. The writer side is [`Sealer`] (chain every line,
//! sign checkpoint notes); the reader side is [`ChainVerifier`], the only producer of
//! [`Verified`] checkpoints.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod chain;
mod checkpoint;
mod error;
mod keys;
pub mod pattern;
pub mod sshsig;
mod trust;

pub use chain::{genesis, new_session_id, verify_note, Chain, ChainVerifier, Sealer, Verified};
pub use checkpoint::{Checkpoint, CHECKPOINT_DOMAIN};
pub use error::{CheckpointError, KeyError, TrustError};
pub use keys::{KeyId, PublicKey, SigningKey};
pub use trust::{TrustStore, TrustedKey, RECORDING_NAMESPACE};
