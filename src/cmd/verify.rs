//! `sealcast verify`.

use anyhow::Result;

pub fn run(_args: crate::VerifyArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
