//! Seeded mutation testing of the verifier and reader on stable Rust (the cargo-fuzz targets in
//! fuzz/ explore further). Property: no panic on any input, and a mutated file is reported OK
//! only if its decompressed content and checkpoints are exactly the original's.

use std::path::Path;

use sealcast_format::{decompress_frame, scan, FrameKind};
use sealcast_player::{verify_bytes, Reader, Status};
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
    let seeds: Vec<Vec<u8>> = ["valid-basic", "valid-checkpoints", "valid-empty-session"]
        .iter()
        .map(|n| std::fs::read(dir.join(format!("{n}.cast.zst"))).unwrap())
        .collect();
    let iterations: usize = std::env::var("SEALCAST_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x5ea1_ca57_0000_0001);
    let mut non_ok = 0;
    for i in 0..iterations {
        let seed = &seeds[i % seeds.len()];
        let m = mutate(&mut rng, seed);
        let report = verify_bytes(&m, None, &trust);
        if report.status == Status::Ok {
            assert_eq!(
                content(&m),
                content(seed),
                "iteration {i}: mutated file verified OK with different content"
            );
        } else {
            non_ok += 1;
            assert!(
                !report.reason.is_empty(),
                "iteration {i}: status {:?} without a reason",
                report.status
            );
        }
        if let Ok(r) = Reader::open(&m) {
            for e in r.take(10_000) {
                if e.is_err() {
                    break;
                }
            }
        }
    }
    assert!(
        non_ok > iterations / 2,
        "mutations should mostly be detected ({non_ok}/{iterations})"
    );
}
