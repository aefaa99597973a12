//! `sealcast keygen`.

use anyhow::Result;

pub fn run(_args: crate::KeygenArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
