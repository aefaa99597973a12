//! Verify throughput probe: builds a log-like recording in memory and times `verify_bytes`.
//! `cargo run --release -p sealcast-reader --example verify_speed -- [MB]`
use std::time::Instant;

use sealcast_reader::verify_bytes;

fn main() {
    let mb: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let (mut w, trust) = sealcast_testkit::system_writer("probe");
    let mut chunk = Vec::new();
    let mut i = 0u64;
    let t = Instant::now();
    let mut fed = 0;
    while fed < mb << 20 {
        chunk.clear();
        while chunk.len() < 4096 {
            chunk.extend_from_slice(
                format!("2026-11-21T10:{:02}:{:02}Z \x1b[32mINFO\x1b[0m worker[{}] processed request id={} in {}ms\r\n", i % 60, i % 59, i % 7, i, i % 250).as_bytes(),
            );
            i += 1;
        }
        w.output(&chunk).expect("write");
        fed += chunk.len();
    }
    let (file, _) = w.finish(Some(0)).expect("finish");
    let rec = t.elapsed();
    let t = Instant::now();
    let r = verify_bytes(&file, None, &trust);
    let el = t.elapsed();
    split_costs(&file);
    let stream = r.verified_bytes as f64;
    println!(
        "input {} MB, record {:.2}s ({:.0} MB/s), compressed {:.1} MB (ratio {:.1}), verify {:?} {:.2}s = {:.0} MB/s of stream",
        mb,
        rec.as_secs_f64(),
        fed as f64 / 1e6 / rec.as_secs_f64(),
        file.len() as f64 / 1e6,
        stream / file.len() as f64,
        r.status,
        el.as_secs_f64(),
        stream / 1e6 / el.as_secs_f64()
    );
}

fn split_costs(file: &[u8]) {
    use sealcast_format::{decompress_frame, scan, FrameKind};
    let t = Instant::now();
    let mut total = 0;
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    for f in scan(file).flatten() {
        if f.kind == FrameKind::Data {
            buf.clear();
            decompress_frame(f.bytes, f.offset, &mut buf).unwrap();
            total += buf.len();
            frames.push(buf.clone());
        }
    }
    let d = t.elapsed();
    // Lines split once, as the verifier does; then hashing and the event rules separately.
    let lines: Vec<&[u8]> = frames
        .iter()
        .flat_map(|b| b[..b.len() - 1].split(|&x| x == b'\n'))
        .collect();
    let t = Instant::now();
    let mut c = sealcast_signer::Chain::new("h", "s");
    for l in &lines {
        c.push(l);
    }
    let h = t.elapsed();
    let t = Instant::now();
    let mut rules = sealcast_format::EventRules::new();
    let mut scratch = Vec::new();
    for l in &lines[1..] {
        rules.check(l, &mut scratch).expect("valid event");
    }
    let e = t.elapsed();
    println!(
        "decompress {:.0} MB/s, hash {:.0} MB/s, event rules {:.0} MB/s",
        total as f64 / 1e6 / d.as_secs_f64(),
        total as f64 / 1e6 / h.as_secs_f64(),
        total as f64 / 1e6 / e.as_secs_f64()
    );
}
