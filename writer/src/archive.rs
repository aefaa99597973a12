//! Files on disk: creating a recording exclusively, and storing its seal receipt atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sealcast_format::names;

/// Create `path` for a new recording: exclusive (never overwrites), mode 0640, and holding
/// an exclusive `flock(2)` for as long as the returned file (or a duplicate of it) is open.
///
/// The lock is how the uploader tells a live recording from one whose recorder died
/// (SPEC §5.1): it is released by the kernel when the process exits, however it exits. A
/// filesystem without `flock` support leaves the file unlocked (the uploader then cannot tell
/// and waits for the seal receipt).
///
/// # Errors
/// `AlreadyExists` if the path exists; other I/O errors as returned by `open(2)`.
pub fn create_recording(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)?;
    match f.try_lock() {
        Ok(()) | Err(fs::TryLockError::WouldBlock) => {}
        Err(fs::TryLockError::Error(e)) if e.kind() == io::ErrorKind::Unsupported => {}
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    Ok(f)
}

/// Store the final checkpoint note as the recording's seal receipt
/// ([`names::receipt_path`]: `<recording>.seal`, SPEC §5): written to a temporary
/// name in the same directory, fsynced, renamed, and the directory fsynced, so the receipt is
/// either absent or complete.
///
/// # Errors
/// I/O errors from any step; a failed write leaves no receipt.
pub fn write_receipt(recording: &Path, note: &[u8]) -> io::Result<PathBuf> {
    let dest = names::receipt_path(recording);
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
