//! Player measurements for `bench/player.sh` (one recording per process, so peak RSS is the
//! player's own): time to the first rendered frame, index build speed (scan + keyframes +
//! transcript, MB/s of output), 200 seeks to random times (p50, max), and peak RSS.
//!
//! `cargo run --release -p sealcast-tui --example player_bench -- FILE`

use std::time::Instant;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use sealcast_term::IndexPolicy;
use sealcast_tui::{App, Player, PlayerOptions, Recording, Shared};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: player_bench FILE");
    // PLAYER_BUDGET_MIB: the keyframe memory budget (default 64).
    let policy = IndexPolicy {
        budget_bytes: std::env::var("PLAYER_BUDGET_MIB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .map_or(IndexPolicy::default().budget_bytes, |m| m << 20),
        ..IndexPolicy::default()
    };
    let t0 = Instant::now();
    let rec = Recording::open(path.as_ref()).expect("open");
    let shared = Shared::new(rec, policy);
    let app = App::with_player(Player::new(
        shared.clone(),
        PlayerOptions {
            at_us: Some(0),
            ..Default::default()
        },
    ));
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    term.draw(|f| sealcast_tui::ui::render(&app, f)).unwrap();
    let first_ms = t0.elapsed().as_secs_f64() * 1e3;

    let t1 = Instant::now();
    while shared.scan_step(64, false) {}
    let scan_s = t1.elapsed().as_secs_f64();
    // Replaying the events alone (decode + vt100, no keyframes or transcript), for scale.
    let t2 = Instant::now();
    {
        let rec = sealcast_tui::shared::source(&shared);
        let m = rec.meta();
        let mut e = sealcast_term::Emulator::new(m.cols, m.rows);
        let n = sealcast_term::EventSource::len(&*rec);
        sealcast_term::replay(&mut e, &*rec, 0, n);
    }
    let replay_s = t2.elapsed().as_secs_f64();
    let (kf_s, tr_s) = shared.index_all(policy);
    // Seekable: the scan, then keyframes (the transcript is built beside them on the
    // second core, and finishes at `transcript_s`).
    let index_s = kf_s + scan_s;
    let transcript_s = tr_s + scan_s;
    let (out_bytes, kfs, kf_bytes, rows, tr_bytes) = {
        let i = shared.index();
        (
            i.out_bytes(),
            i.keyframes().len(),
            i.keyframe_bytes(),
            i.transcript().len(),
            i.transcript().heap_bytes(),
        )
    };
    let dur = sealcast_tui::shared::source(&shared).duration_us();

    let mut app = app;
    let mut seeds = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::new();
    for _ in 0..200 {
        seeds ^= seeds << 13;
        seeds ^= seeds >> 7;
        seeds ^= seeds << 17;
        let t = seeds % dur.max(1);
        let p = app.player.as_mut().unwrap();
        let s = Instant::now();
        p.seek_to_for_bench(t);
        times.push(s.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "file={path} scan_s={scan_s:.2} replay_only_s={replay_s:.2} output_mb={:.1} first_frame_ms={first_ms:.1} index_s={index_s:.2} index_mb_s={:.1} transcript_s={transcript_s:.2} transcript_mb_s={:.1} \
         keyframes={kfs} keyframe_mib={:.1} transcript_rows={rows} transcript_mib={:.1} \
         seek_p50_ms={:.2} seek_max_ms={:.2} peak_rss_mib={:.1}",
        out_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6 / index_s,
        out_bytes as f64 / 1e6 / transcript_s,
        kf_bytes as f64 / 1048576.0,
        tr_bytes as f64 / 1048576.0,
        times[times.len() / 2],
        times[times.len() - 1],
        peak_rss_kib() as f64 / 1024.0,
    );
}
