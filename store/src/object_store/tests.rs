//! The object primitives over the in-memory and directory stores: conditional PUT that never
//! overwrites, typed `Occupied`, FIFO-safe mirror reads, multipart uploads end to end.

use std::fs;
use std::path::Path;

use super::*;
use crate::clock::SystemClock;
use crate::error::Error;
use crate::multipart::{put_multipart, resume_record_path, MultipartOptions};
use crate::object::{put_file, LockMode, Put, Retention};

fn rt() -> tokio::runtime::Runtime {
    crate::s3::runtime().unwrap()
}

fn file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

fn sha(b: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(b).into()
}

/// Created once; the same bytes again are `AlreadyThere` with the first version; other bytes
/// are `Error::Occupied` naming the key, and the stored bytes stay.
fn never_overwrites<S: ObjectStore>(store: &S, dir: &Path) {
    let a = file(dir, "a", b"first bytes\n");
    let b = file(dir, "b", b"other bytes\n");
    let rt = rt();
    let put = |p: &Path, bytes: &[u8]| {
        rt.block_on(put_file(
            store,
            "k/x.cast.zst",
            p,
            bytes.len() as u64,
            &sha(bytes),
            None,
        ))
    };
    let first = put(&a, b"first bytes\n").unwrap();
    let Put::Created(v) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        put(&a, b"first bytes\n").unwrap(),
        Put::AlreadyThere(v),
        "same bytes: already there"
    );
    match put(&b, b"other bytes\n") {
        Err(Error::Occupied(o)) => {
            assert!(o.key.ends_with("k/x.cast.zst"), "{o}");
            assert_eq!(o.ours, hex::encode(sha(b"other bytes\n")));
            assert_eq!(o.stored, hex::encode(sha(b"first bytes\n")));
        }
        other => panic!("other bytes must be Occupied: {other:?}"),
    }
    let got = rt
        .block_on(store.get("k/x.cast.zst", None, 1 << 20))
        .unwrap();
    assert_eq!(got, b"first bytes\n");
    let listed = rt.block_on(store.list_current("k/")).unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].key, "k/x.cast.zst");
}

#[test]
fn memory_store_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    never_overwrites(&MemoryStore::new(false), d.path());
}

#[test]
fn dir_store_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("mirror");
    never_overwrites(&DirStore::new(&root), d.path());
}

#[test]
fn memory_store_refuses_a_body_that_does_not_match_its_sha256() {
    let d = tempfile::tempdir().unwrap();
    let a = file(d.path(), "a", b"bytes\n");
    let store = MemoryStore::new(false);
    let r = rt().block_on(put_file(&store, "k", &a, 6, &sha(b"other\n"), None));
    assert!(
        matches!(r.as_ref().map_err(Error::root), Err(Error::S3 { code: Some(c), .. }) if c == "BadDigest"),
        "{r:?}"
    );
    assert!(store.keys().is_empty());
}

#[test]
fn memory_store_keeps_versions_delete_markers_and_retention() {
    let d = tempfile::tempdir().unwrap();
    let a = file(d.path(), "a", b"v1\n");
    let store = MemoryStore::new(true);
    store.set_now(1_000);
    let rt = rt();
    assert!(rt.block_on(store.object_lock_enabled()).unwrap());
    let r = Retention {
        mode: LockMode::Compliance,
        days: 1,
    };
    rt.block_on(put_file(&store, "k", &a, 3, &sha(b"v1\n"), Some(r.lock(0))))
        .unwrap();
    let h = rt.block_on(store.head("k", None)).unwrap();
    let (mode, until) = h.retention.clone().unwrap();
    assert_eq!(mode, "COMPLIANCE");
    assert!(until >= 86_400, "{until}");
    let overwrite = store.insert("k", b"v2\n".to_vec());
    store.delete("k");
    let all = rt.block_on(store.list("k")).unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[2].delete_marker && all[2].latest);
    assert_eq!(all[0].last_modified, Some(1_000));
    assert!(rt.block_on(store.get("k", None, 100)).is_err(), "hidden");
    assert_eq!(
        rt.block_on(store.get("k", h.version_id.as_deref(), 100))
            .unwrap(),
        b"v1\n"
    );
    assert_eq!(
        rt.block_on(store.get("k", Some(&overwrite), 100)).unwrap(),
        b"v2\n"
    );
    assert!(rt.block_on(store.list_current("k")).unwrap().is_empty());
}

#[test]
fn small_objects_over_the_limit_are_too_big_naming_the_key() {
    let d = tempfile::tempdir().unwrap();
    let mirror = DirStore::new(d.path());
    fs::create_dir_all(d.path().join("m")).unwrap();
    fs::write(d.path().join("m/big.sig"), vec![b'x'; 100]).unwrap();
    let mem = MemoryStore::new(false);
    mem.insert("m/big.sig", vec![b'x'; 100]);
    let rt = rt();
    for r in [
        rt.block_on(mirror.get("m/big.sig", None, 10)),
        rt.block_on(mem.get("m/big.sig", None, 10)),
    ] {
        match r {
            Err(Error::TooBig { key, size, max }) => {
                assert!(key.ends_with("m/big.sig"), "{key}");
                assert!(size > 10 && max == 10);
            }
            other => panic!("{other:?}"),
        }
    }
    // Not read at all when larger than the limit: the size only.
    let f = rt.block_on(mirror.fetch("m/big.sig", None, 10)).unwrap();
    assert_eq!((f.size, f.sha256.as_deref(), f.len()), (100, None, 0));
    let f = rt.block_on(mirror.fetch("m/big.sig", None, 100)).unwrap();
    assert_eq!(f.sha256, Some(hex::encode(sha(&[b'x'; 100]))));
    assert_eq!(&f[..], &[b'x'; 100][..]);
}

/// A FIFO planted at a mirror key is refused as not a regular file, at once (opening it the
/// ordinary way would block until a writer came).
#[test]
fn a_fifo_in_a_mirror_is_refused_not_waited_on() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("recordings")).unwrap();
    let fifo = d.path().join("recordings/x.cast.zst");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let mirror = DirStore::new(d.path());
    let rt = rt();
    let t0 = std::time::Instant::now();
    for r in [
        rt.block_on(mirror.fetch("recordings/x.cast.zst", None, 1 << 20))
            .map(|_| ()),
        rt.block_on(mirror.get("recordings/x.cast.zst", None, 1 << 20))
            .map(|_| ()),
        crate::recording::sha256_file(&fifo).map(|_| ()),
    ] {
        assert!(
            matches!(
                r,
                Err(Error::Open {
                    err: sealcast_reader::OpenError::NotRegular(_),
                    ..
                })
            ),
            "{r:?}"
        );
    }
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
}

/// A multipart upload over the in-memory store: three parts, the stored object is the file,
/// no upload and no resume record left; a second call finds it `AlreadyThere`.
#[test]
fn multipart_upload_lands_whole_in_memory() {
    let d = tempfile::tempdir().unwrap();
    let bytes: Vec<u8> = (0..11u32 << 20).map(|i| (i % 251) as u8).collect();
    let p = file(d.path(), "big.cast.zst", &bytes);
    let store = MemoryStore::new(false);
    let opts = MultipartOptions {
        part_size: 5 << 20,
        parallel_parts: 2,
        resume: Some(resume_record_path(d.path(), "big.cast.zst")),
    };
    let size = bytes.len() as u64;
    let rt = rt();
    let r = rt
        .block_on(put_multipart(
            &store,
            "r/big",
            &p,
            size,
            &sha(&bytes),
            &opts,
            None,
            &SystemClock,
        ))
        .unwrap();
    assert!(matches!(r, Put::Created(Some(_))), "{r:?}");
    assert_eq!(store.current("r/big").as_deref(), Some(&bytes[..]));
    assert!(!resume_record_path(d.path(), "big.cast.zst").exists());
    let again = rt
        .block_on(put_multipart(
            &store,
            "r/big",
            &p,
            size,
            &sha(&bytes),
            &opts,
            None,
            &SystemClock,
        ))
        .unwrap();
    assert!(matches!(again, Put::AlreadyThere(_)), "{again:?}");
}
