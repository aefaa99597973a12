//! Player measurements for `bench/player.sh` (one recording per process, so peak RSS is the
//! player's own): time to the first rendered frame, index build speed (seekable: scan +
//! keyframes; transcript: on the second thread; MB/s of output), 200 seeks to random times
//! (p50, max), peak RSS, and for scale the time of a plain replay (decode + vt100).
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

/// `player_bench --keyframes-only FILE`: only the seekable pass (scan + keyframes, one
/// thread), for instruction counts under `perf stat` (robust to other load on the cores).
fn keyframes_only(path: &str) {
    let policy = IndexPolicy::default();
    let rec = Recording::open(path.as_ref()).expect("open");
    let shared = Shared::new(rec, policy);
    let (mut kb, _) = shared.split_builders(policy);
    let t = Instant::now();
    loop {
        let more = shared.scan_step(8, false);
        let mut fed = 0;
        loop {
            let f = shared.index_step(&mut kb, 1 << 16);
            fed += f;
            if f == 0 {
                break;
            }
        }
        if fed == 0 && !more {
            break;
        }
    }
    let out = shared.index().out_bytes();
    println!(
        "file={path} keyframes_only_s={:.2} output_mb={:.1}",
        t.elapsed().as_secs_f64(),
        out as f64 / 1e6
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--keyframes-only") {
        return keyframes_only(
            args.get(2)
                .expect("usage: player_bench --keyframes-only FILE"),
        );
    }
    let path = args.get(1).cloned().expect("usage: player_bench FILE");
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

    // The player's background pass: the scan and the keyframes on one thread (what makes
    // the whole file seekable), the transcript of scrolled-off rows on a second one.
    let (index_s, transcript_s) = shared.index_all(policy);
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
    // Peak RSS of the player's work, read before the replay below (which faults the whole
    // recording's pages in).
    let peak_rss = peak_rss_kib();
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
    println!(
        "file={path} replay_only_s={replay_s:.2} output_mb={:.1} first_frame_ms={first_ms:.1} index_s={index_s:.2} index_mb_s={:.1} transcript_s={transcript_s:.2} transcript_mb_s={:.1} \
         keyframes={kfs} keyframe_mib={:.1} transcript_rows={rows} transcript_mib={:.1} \
         seek_p50_ms={:.2} seek_max_ms={:.2} peak_rss_mib={:.1}",
        out_bytes as f64 / 1e6,
        out_bytes as f64 / 1e6 / index_s,
        out_bytes as f64 / 1e6 / transcript_s,
        kf_bytes as f64 / 1048576.0,
        tr_bytes as f64 / 1048576.0,
        times[times.len() / 2],
        times[times.len() - 1],
        peak_rss as f64 / 1024.0,
    );
}
