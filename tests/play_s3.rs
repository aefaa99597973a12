//! End to end: `sealcast play s3://BUCKET/KEY` against a real `moto_server`, in a real
//! terminal (a tmux pane). Recordings shipped by the real `sealcast upload` play with the
//! badge `sealcast verify` gives the same bytes under the key's name with the `.seal` object
//! beside them: signed and verified as uploaded; TRUNCATED when the object was overwritten with
//! a shorter copy (which only the receipt object can tell); MODIFIED when another session's
//! recording is copied under this session's key. A mirror's file plays with its `.seal`
//! beside it the same way. A missing key, and an object that is no recording, exit 1 with
//! one line naming the URL, the terminal never switched. Every wait polls the screen until a
//! condition or a deadline.
//!
//! Skipped (with a message) when tmux is not installed, unless `CI` is set; needs
//! `moto_server` (as every S3 test).

mod common;
#[path = "support/play_pane.rs"]
mod play_pane;
mod s3_support;
#[path = "support/tmux.rs"]
mod tmux;

use std::fs;

use play_pane::{assert_restored, on_screen, pane_with, require_tmux, sh_quote, status};
use s3_support::{aws_env, record_sessions, recording_key, run, upload_cmd, Fixture};

#[test]
fn play_objects_with_their_badges() {
    if !require_tmux("play_objects_with_their_badges") {
        return;
    }
    let fx = Fixture::new(false);
    let recs = record_sessions(&fx.env, &fx.spool, 2);
    let keys: Vec<String> = recs.iter().map(|r| recording_key(r)).collect();
    let up = run(&mut upload_cmd(
        &fx.env,
        &fx.spool,
        Some(&fx.env.key),
        "h1",
        &fx.moto.endpoint(),
    ));
    assert!(up.status.success(), "upload failed");
    let receipt = fx.get(&format!("{}.seal", keys[0]));
    assert!(!receipt.is_empty(), "the upload stored the seal receipt");

    // Session 0 cut before its last checkpoint: readable and signed up to there, but shorter
    // than its receipt says (SPEC §5): TRUNCATED, which only the .seal object can tell.
    let whole = fx.get(&keys[0]);
    let last_cp = sealcast_format::scan(&whole)
        .flatten()
        .filter(|f| f.kind == sealcast_format::FrameKind::Checkpoint)
        .last()
        .expect("a checkpoint");
    let cut = whole[..last_cp.offset as usize].to_vec();
    // Also in a mirror (the bucket's layout in a directory), with its receipt beside it.
    let mirror = fx.env.path("mirror").join(&keys[0]);
    fs::create_dir_all(mirror.parent().unwrap()).unwrap();
    fs::write(&mirror, &cut).unwrap();
    fs::write(common::receipt_path(&mirror), &receipt).unwrap();
    // Session 1's recording under a third key named after session 0: MODIFIED.
    let wrong = keys[0].replace("/recordings/h1/", "/recordings/h1/copy/");
    fx.put(&wrong, fx.get(&keys[1]));

    let bin = sh_quote(&common::bin());
    let play = |target: &str| {
        let endpoint = match target.starts_with("s3://") {
            true => format!("--endpoint-url {}", fx.moto.endpoint()),
            false => String::new(),
        };
        format!(
            "{bin} play --trusted {} {endpoint} '{target}'",
            sh_quote(&fx.trust)
        )
    };
    let url = |key: &str| format!("s3://rec/{key}");
    // One player in its own pane: wait for `badge` in the status line and `text` on the
    // recorded screen, quit, check the terminal is restored; the status line.
    let show = |target: &str, what: &str, badge: &str, text: &str| -> String {
        let tmux = pane_with(&fx.env, &play(target), 120, 30, aws_env);
        let s = tmux.wait_screen(what, 20, |s| {
            status(s).contains(badge) && on_screen(s, text)
        });
        tmux.keys(&["q"]);
        assert_restored(&tmux);
        assert!(tmux.screen().contains("EXIT=0"), "{what}");
        status(&s)
    };

    // As uploaded: signed and verified. A missing key, and an object that is no recording:
    // one line each naming the URL, exit 1, the terminal never switched to the player.
    show(
        &url(&keys[0]),
        "the verified object",
        "✔ signed by ",
        "session 0",
    );
    let missing = url("pfx/recordings/h1/none.cast.zst");
    let garbage = url("pfx/recordings/h1/garbage.cast.zst");
    fx.put(
        "pfx/recordings/h1/garbage.cast.zst",
        b"no recording\n".to_vec(),
    );
    let line = format!(
        "{} 2>&1; echo M=$?; {} 2>&1",
        play(&missing),
        play(&garbage)
    );
    let tmux = pane_with(&fx.env, &line, 120, 30, aws_env);
    let s = tmux.wait_screen("the failed plays' exits", 20, |s| s.contains("EXIT="));
    assert!(s.contains("M=1") && s.contains("EXIT=1"), "{s}");
    let lines: Vec<&str> = s.lines().filter(|l| l.contains("sealcast:")).collect();
    assert_eq!(lines.len(), 2, "{s}");
    assert!(
        lines[0].starts_with(&format!("sealcast: {missing}: no such object")),
        "{s}"
    );
    assert!(
        lines[1].starts_with(&format!("sealcast: {garbage}: ")),
        "{s}"
    );
    assert!(lines[1].contains("not a recording"), "{s}");
    assert_eq!(tmux.display("#{alternate_on}"), "0");
    drop(tmux);

    // Overwritten with the cut copy: TRUNCATED, from the bucket as from the mirror.
    fx.put(&keys[0], cut);
    for (target, what) in [
        (url(&keys[0]), "the truncated object"),
        (mirror.display().to_string(), "the truncated mirror file"),
    ] {
        let st = show(&target, what, "CHAIN BROKEN", "session 0");
        assert!(st.contains("TRUNCATED"), "{what}: {st}");
    }
    // Another session's recording under this one's name: MODIFIED.
    let st = show(
        &url(&wrong),
        "the copy under a wrong name",
        "MODIFIED",
        "session 1",
    );
    assert!(st.contains("file name"), "{st}");
}
