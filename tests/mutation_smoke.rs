//! Seeded mutation testing of the verifier and readers on stable Rust (the cargo-fuzz targets
//! in fuzz/ explore further). Properties: no panic on any input; a mutated file is reported OK
//! only if its decompressed content and checkpoints are exactly the original's, and with a
//! seal receipt only if the receipt is the original one; `cat`, `export -f asciicast-v3` and
//! `info` agree on every file (same error text, or none), and read a file `verify` calls OK
//! completely (the `agree` fuzz target's property); a verifying read of every file reports
//! what `verify` reports and marks lines verified exactly as far as that report says
//! (`support::coverage`).

#[path = "support/coverage.rs"]
mod coverage;

use std::path::Path;

use sealcast_format::{decompress_frame, scan, FrameKind};
use sealcast_player::{cat, write_v3};
use sealcast_reader::{inspect, verify_bytes, Reader, Status, StreamEnd};
use sealcast_signer::TrustStore;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..1 + rng.below(3) {
        let len = v.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => v.truncate(rng.below(len)),
            2 => {
                let i = rng.below(len + 1);
                v.insert(i, rng.next() as u8);
            }
            3 if len > 1 => {
                let i = rng.below(len);
                v.remove(i);
            }
            4 if len > 8 => {
                // Duplicate a chunk somewhere else.
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            _ if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            _ => {}
        }
    }
    v
}

/// Decompressed stream and checkpoint payloads, or None if not decodable.
fn content(file: &[u8]) -> Option<(Vec<u8>, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut cps = Vec::new();
    for f in scan(file) {
        let f = f.ok()?;
        match f.kind {
            FrameKind::Data => decompress_frame(f.bytes, f.offset, &mut out).ok()?,
            FrameKind::Checkpoint => cps.push(f.bytes.to_vec()),
        }
    }
    Some((out, cps))
}

#[test]
fn mutated_vectors_never_panic_and_never_falsely_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
    let trust =
        TrustStore::parse(&std::fs::read_to_string(dir.join("allowed_signers")).unwrap()).unwrap();
    // (file, seal receipt) of each seed; the last one is signed but breaks the event rules.
    let seeds: Vec<(Vec<u8>, Vec<u8>)> = [
        "valid-basic",
        "valid-checkpoints",
        "valid-empty-session",
        "bad-signed-orphan-b-event",
    ]
    .iter()
    .map(|n| {
        let file = std::fs::read(dir.join(format!("{n}.cast.zst"))).unwrap();
        let seal = std::fs::read(dir.join(format!("{n}.cast.zst.seal"))).unwrap();
        (file, seal)
    })
    .collect();
    let iterations: usize = std::env::var("SEALCAST_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x5ea1_ca57_0000_0001);
    let mut non_ok = 0;
    for i in 0..iterations {
        let (seed, seed_seal) = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, seed);
        let seal = match rng.below(4) {
            1 => Some(seed_seal.clone()),
            2 => Some(mutate(&mut rng, seed_seal)),
            _ => None,
        };
        let report = verify_bytes(&m, seal.as_deref(), &trust);
        let label = format!("iteration {i}");
        coverage::reads_as_it_verifies(&label, &m, seal.as_deref(), &trust);
        if report.status == Status::Ok {
            assert_eq!(
                content(&m),
                content(seed),
                "iteration {i}: mutated file verified OK with different content"
            );
            if let Some(s) = &seal {
                assert_eq!(s, seed_seal, "iteration {i}: a mutated receipt verified OK");
            }
        } else {
            non_ok += 1;
            assert!(
                !report.reason.is_empty(),
                "iteration {i}: status {:?} without a reason",
                report.status
            );
        }
        agree(i, &m, report.status);
    }
    assert!(
        non_ok > iterations / 2,
        "mutations should mostly be detected ({non_ok}/{iterations})"
    );
}

/// The readers agree on `file`, and read it completely when `verify` said OK.
fn agree(i: usize, file: &[u8], verdict: Status) {
    let (cat_err, cat_end) = match Reader::open(file) {
        Err(e) => (Some(e.to_string()), None),
        Ok(r) => match cat(r, &mut std::io::sink()) {
            Ok(end) => (None, Some(end)),
            Err(e) => (Some(e.to_string()), None),
        },
    };
    let v3_err = write_v3(file, &mut std::io::sink())
        .err()
        .map(|e| e.to_string());
    let info_err = match inspect(file) {
        Err(e) => Some(e.to_string()),
        Ok(s) => s.bad_line.map(|e| e.to_string()),
    };
    assert_eq!(cat_err, v3_err, "iteration {i}: cat and export disagree");
    assert_eq!(cat_err, info_err, "iteration {i}: cat and info disagree");
    if verdict == Status::Ok {
        assert_eq!(cat_err, None, "iteration {i}: verified OK, readers fail");
        assert_eq!(cat_end, Some(StreamEnd::Complete), "iteration {i}");
    }
}
