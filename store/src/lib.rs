//! sealcast object-store shipping (issue 4): the S3 client, the spool uploader, the object
//! layout and the inspection of spool recordings.
//!
//! The recorder never talks to the network: it writes `<session>.cast.zst` and, when the
//! session closes, `<session>.cast.zst.seal` into a spool directory. [`upload::run`] ships
//! finished recordings (the ones with a seal receipt) to
//! `recordings/<host>/<YYYY>/<MM>/<DD>/<session>.cast.zst` in a bucket, each PUT carrying our
//! own SHA-256 (`x-amz-checksum-sha256`), `If-None-Match: *`, and Object Lock retention when
//! the bucket has Object Lock.

pub mod clock;
pub mod doctor;
pub mod error;
pub mod layout;
pub mod manifest;
pub mod multipart;
pub mod object;
pub mod object_store;
pub mod rebuild;
pub mod recording;
pub mod s3;
pub mod spool_state;
pub mod upload;
pub mod verify;

pub use error::{Error, Result};

/// The AWS SDK this crate is built on, for callers (tests, tools) that need the raw client.
pub use aws_sdk_s3;
