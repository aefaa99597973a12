//! `sealcast play`, `cat`, `export`, `info`.

use anyhow::Result;

use crate::{ExportArgs, FileArg, InfoArgs, PlayArgs};

pub fn play(_a: PlayArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
pub fn cat(_a: FileArg) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
pub fn export(_a: ExportArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
pub fn info(_a: InfoArgs) -> Result<u8> {
    anyhow::bail!("not yet implemented")
}
