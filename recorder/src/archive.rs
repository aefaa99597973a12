//! Files on disk: creating a recording exclusively, and storing its seal receipt atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Create `path` for a new recording: exclusive (never overwrites), mode 0640.
///
/// # Errors
/// `AlreadyExists` if the path exists; other I/O errors as returned by `open(2)`.
pub fn create_recording(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
}

/// Path of the seal receipt for a recording: `<recording>.seal` (SPEC §5).
pub fn receipt_path(recording: &Path) -> PathBuf {
    let mut s = recording.as_os_str().to_owned();
    s.push(".seal");
    PathBuf::from(s)
}

/// Store the final checkpoint note as the recording's seal receipt: written to a temporary
/// name in the same directory, fsynced, renamed, and the directory fsynced, so the receipt is
/// either absent or complete.
///
/// # Errors
/// I/O errors from any step; a failed write leaves no receipt.
pub fn write_receipt(recording: &Path, note: &[u8]) -> io::Result<PathBuf> {
    let dest = receipt_path(recording);
    let mut tmp = dest.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o640)
            .open(&tmp)?;
        f.write_all(note)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &dest)?;
    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(dest)
}
