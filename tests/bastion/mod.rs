//! The bastion test harness (a real sshd with sealcast-shell as ForceCommand) and helpers to
//! read what it recorded. Included by `tests/bastion_*.rs` with `mod bastion;`.
#![allow(dead_code)]

pub mod harness;
pub mod recording;
