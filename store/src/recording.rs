//! What the uploader needs to know about a spool recording, read in bounded memory: the
//! header (session, host, user, start), SHA-256 and size of the file or a byte range of it,
//! SHA-256 and line count of the decompressed stream. The spool protocol's read side (seal
//! receipt, last checkpoint, whether the recorder is alive, SPEC §5.1) is
//! [`sealcast_reader::spool`].

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use sealcast_format::Header;

use crate::error::{Error, IoContext, Result};

/// Longest header line read (SPEC §8).
const MAX_HEADER: u64 = 64 * 1024;

/// SHA-256 and length of a stream, read in 1 MiB blocks.
///
/// # Errors
/// Read errors.
pub fn sha256_reader(mut r: impl Read) -> io::Result<([u8; 32], u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((h.finalize().into(), n))
}

/// SHA-256 and size of `len` bytes of a file from byte `offset` (fewer when the file is
/// shorter).
///
/// # Errors
/// I/O errors, with the path.
pub fn sha256_file_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 32], u64)> {
    let f = open_at(path, offset)?;
    sha256_reader(f.take(len)).at("read", path)
}

/// Open `path` as a regular file ([`sealcast_reader::open_regular`]: a FIFO, device or
/// socket planted in the spool is refused, never blocked on).
///
/// # Errors
/// [`Error::Open`].
pub fn open(path: &Path) -> Result<File> {
    sealcast_reader::open_regular(path).map_err(|err| Error::Open {
        path: path.to_path_buf(),
        err,
    })
}

/// Open `path` for reading ([`open`]), positioned at byte `offset`.
fn open_at(path: &Path, offset: u64) -> Result<File> {
    use std::io::{Seek, SeekFrom};
    let mut f = open(path)?;
    f.seek(SeekFrom::Start(offset)).map_err(|e| Error::Short {
        path: path.to_path_buf(),
        offset,
        detail: format!("seek: {e}"),
    })?;
    Ok(f)
}

/// SHA-256 and size of a file.
///
/// # Errors
/// I/O errors, with the path.
pub fn sha256_file(path: &Path) -> Result<([u8; 32], u64)> {
    sha256_reader(open(path)?).at("read", path)
}

/// SHA-256 and number of LF-terminated lines of the decompressed stream (skippable frames are
/// skipped by the decoder), in bounded memory.
///
/// # Errors
/// I/O or zstd errors (a torn tail of a crashed recording is an error here).
pub fn content_digest(path: &Path) -> Result<([u8; 32], u64, u64)> {
    content_digest_range(path, 0, u64::MAX)
}

/// [`content_digest`] of `len` bytes of the file from byte `offset`: a run of whole frames,
/// such as a prefix ending at [`sealcast_reader::spool::CheckpointAt::end`] or a segment between two checkpoints
/// (zstd frames decompress on their own).
///
/// # Errors
/// As [`content_digest`].
pub fn content_digest_range(path: &Path, offset: u64, len: u64) -> Result<([u8; 32], u64, u64)> {
    let f = open_at(path, offset)?;
    let mut dec = zstd::stream::read::Decoder::new(f.take(len)).at("decompress", path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        let k = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("decompress", path, e)),
        };
        h.update(&buf[..k]);
        bytes += k as u64;
        lines += memchr_count(&buf[..k]);
    }
    Ok((h.finalize().into(), lines, bytes))
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Read the header line (line 0) of a recording by decompressing only its start.
///
/// # Errors
/// I/O, zstd, or a header that is not sealcast's.
pub fn read_header(path: &Path) -> Result<Header> {
    let bad = |detail: String| Error::Recording {
        path: path.to_path_buf(),
        detail,
    };
    let dec = zstd::stream::read::Decoder::new(open(path)?).at("decompress", path)?;
    let mut r = BufReader::new(dec).take(MAX_HEADER + 1);
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).at("decompress", path)?;
    if line.last() != Some(&b'\n') {
        return Err(bad("no complete header line".into()));
    }
    line.pop();
    let h = Header::parse(&line).map_err(|e| bad(format!("header: {e}")))?;
    if h.sealcast.is_none() {
        return Err(bad("not a sealcast recording (no sealcast header)".into()));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hash_their_bytes_and_bad_files_name_themselves() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("r.cast.zst");
        let frames = [
            zstd::encode_all(&b"{\"version\":3}\nline 1\n"[..], 3).unwrap(),
            zstd::encode_all(&b"line 2\n"[..], 3).unwrap(),
        ];
        std::fs::write(&p, frames.concat()).unwrap();
        let n0 = frames[0].len() as u64;
        let (sha, len) = sha256_file_range(&p, n0, 1 << 20).unwrap();
        assert_eq!(len, frames[1].len() as u64);
        assert_eq!(sha, <[u8; 32]>::from(Sha256::digest(&frames[1])));
        // A segment of whole frames decompresses on its own.
        let (_, lines, bytes) = content_digest_range(&p, n0, frames[1].len() as u64).unwrap();
        assert_eq!((lines, bytes), (1, 7));
        let (_, lines, _) = content_digest(&p).unwrap();
        assert_eq!(lines, 3);
        // Not a sealcast header: an error naming the file.
        match read_header(&p) {
            Err(Error::Recording { path, .. }) => assert_eq!(path, p),
            other => panic!("{other:?}"),
        }
        std::fs::write(&p, b"not zstd").unwrap();
        let e = read_header(&p).unwrap_err();
        assert!(e.to_string().contains("r.cast.zst"), "{e}");
    }
}
