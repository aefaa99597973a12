//! A recorder killed with SIGKILL mid-session leaves a recording whose prefix up to the last
//! checkpoint verifies, and which stock `zstd -dc` still decodes.

mod common;

use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{events, stream, verify_file, TestEnv};
use sealcast_reader::Status;

/// Pids whose parent is `ppid` (from /proc/*/stat).
fn children_of(ppid: u32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let _state = fields.next();
        if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(ppid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn sigkill_leaves_a_verifiable_prefix_that_zstd_reads() {
    let env = TestEnv::new();
    let out = env.path("crash.cast.zst");
    let mut rec = env
        .command()
        .args(["record", "--out"])
        .arg(&out)
        .arg("--key")
        .arg(&env.key)
        .args([
            "--checkpoint-secs",
            "1",
            "--",
            "sh",
            "-c",
            "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.01; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for checkpoint 0 (header) and a time-based one a second later, on disk.
    let checkpoints = || {
        let bytes = fs::read(&out).unwrap_or_default();
        sealcast_format::scan(&bytes)
            .filter(|f| {
                f.as_ref()
                    .is_ok_and(|f| f.kind == sealcast_format::FrameKind::Checkpoint)
            })
            .count()
    };
    assert!(
        common::wait_until(Duration::from_secs(30), || checkpoints() >= 2),
        "no time-based checkpoint within 30 s"
    );
    // The recorded shell is a session leader in its own process group; find it before the
    // recorder dies (it is reparented afterwards) so it can be cleaned up.
    let shells = children_of(rec.id());
    assert_eq!(
        shells.len(),
        1,
        "expected one recorded child, got {shells:?}"
    );
    assert_eq!(rec.try_wait().unwrap(), None, "recorder exited early");
    rec.kill().unwrap(); // SIGKILL
    rec.wait().unwrap();
    for pid in shells {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }

    assert!(
        !common::receipt_path(&out).exists(),
        "a killed recorder wrote a seal receipt"
    );
    let report = verify_file(&out, &env.trust());
    // Which of the two crash statuses depends only on where the kill left the file: right
    // after a checkpoint frame, or inside what followed it (SPEC §7).
    let bytes = fs::read(&out).unwrap();
    let ends_at_checkpoint = sealcast_format::scan(&bytes)
        .last()
        .is_some_and(|f| f.is_ok_and(|f| f.kind == sealcast_format::FrameKind::Checkpoint));
    let want = if ends_at_checkpoint {
        Status::Unclosed
    } else {
        Status::UnsealedTail
    };
    assert_eq!(report.status, want, "{report:?}");
    assert!(!report.sealed, "{report:?}");
    assert!(report.verified_lines > 1, "{report:?}");
    // Checkpoint 0 (header), then at least one time-based checkpoint a second later.
    assert!(report.checkpoints >= 2, "{report:?}");
    let verified_bytes = report.verified_bytes as usize;

    // Stock zstd decodes the complete frames and what it can of the torn one, then fails on
    // the truncated tail (when there is one).
    let z = Command::new("zstd").arg("-dc").arg(&out).output().unwrap();
    if report.status == Status::UnsealedTail {
        assert!(!z.status.success(), "zstd accepted a truncated frame");
    }
    let text = z.stdout;
    assert!(text.starts_with(b"{\"version\":3,"), "no header from zstd");
    assert!(
        text.len() >= verified_bytes,
        "zstd gave {} bytes, fewer than the {verified_bytes} verified",
        text.len()
    );
    let prefix = String::from_utf8_lossy(&text[..verified_bytes]);
    assert_eq!(
        prefix.lines().count() as u64,
        report.verified_lines,
        "verified prefix"
    );
    assert!(prefix.contains(r#""line 0\r\n"#), "{prefix}");

    // The readable output is the loop's lines, in order, from line 0.
    let recorded = String::from_utf8_lossy(&stream(&events(&out), "o")).into_owned();
    let lines: Vec<&str> = recorded.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines.len() > 10, "{recorded:?}");
    for (i, l) in lines.iter().enumerate() {
        let want = format!("line {i}");
        // The last line may be cut by the crash.
        if i + 1 == lines.len() {
            assert!(want.starts_with(l), "{l:?} vs {want:?}");
        } else {
            assert_eq!(*l, want);
        }
    }
}
