//! `sealcast record`.

use anyhow::Result;

pub fn run(_args: crate::RecordArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
