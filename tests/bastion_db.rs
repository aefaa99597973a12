//! Database sessions through the real sshd bastion (SPEC §10.3): `ssh bastion db <target>`
//! runs the target's client against the session's own recording proxy (shape 1), and every
//! shell session gets the proxies of the targets its user may use (`psql service=<target>`,
//! `mariadb --defaults-group-suffix=_<target>`; shape 2). The databases are the real
//! PostgreSQL 15 and MariaDB 10.11 of tests/db/harness.rs; the clients are psql and mariadb;
//! the credentials are injected (the user never has the password).
//!
//! Needs root, OpenSSH, PostgreSQL 15 and MariaDB 10.11; skipped with a message otherwise,
//! unless `CI` is set.

mod bastion;
mod common;
mod db;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bastion::harness::{code, id_of, run, run_timeout, Bastion, PtyClient};
use bastion::recording::Rec;
use db::harness::{decompressed, Mariadb, Postgres};
use sealcast_format::EventKind;
use serde_json::Value;

const PG_PW: &str = "scram-pw";
const MY_PW: &str = "app-pw";

fn require(test: &str, mysql: bool) -> bool {
    bastion::harness::require(test) && db::harness::require(test, mysql)
}

/// Targets for the bastion's user: `pg` (PostgreSQL, TLS, injected `app_scram`), `my`
/// (MariaDB, TLS, injected `app`) when `m` is given, and `other` (only root may use it).
fn add_targets(b: &Bastion, pg: &Postgres, m: Option<&Mariadb>) {
    let sealcast_uid = id_of("sealcast", "-u");
    let secret = |name: &str, user: &str, pw: &str| {
        let p = b.etc.join(format!("db-{name}.cred"));
        fs::write(&p, format!("user = \"{user}\"\npassword = \"{pw}\"\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(sealcast_uid), None).unwrap();
        p
    };
    let ca = |name: &str, from: &Path| {
        let p = b.etc.join(format!("db-{name}-ca.pem"));
        fs::copy(from, &p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    };
    let mut text = fs::read_to_string(&b.config).unwrap();
    text.push_str(&format!(
        "\n[db.pg]\nprotocol = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n\
         credentials = \"injected\"\ncredentials_file = \"{}\"\ndatabase = \"shop\"\n\
         allowed_users = [\"{}\"]\n\
         \n[db.other]\nprotocol = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"disable\"\n\
         allowed_users = [\"root\"]\n",
        pg.port,
        ca("pg", &pg.pki.ca).display(),
        secret("pg", "app_scram", PG_PW).display(),
        b.user,
        pg.port,
    ));
    if let Some(m) = m {
        text.push_str(&format!(
            "\n[db.my]\nprotocol = \"mysql\"\nhost = \"127.0.0.1\"\nport = {}\nca_file = \"{}\"\n\
             credentials = \"injected\"\ncredentials_file = \"{}\"\ndatabase = \"shop\"\n\
             allowed_users = [\"{}\"]\n",
            m.port,
            ca("my", &m.pki.ca).display(),
            secret("my", "app", MY_PW).display(),
            b.user,
        ));
    }
    fs::write(&b.config, text).unwrap();
    // The installed set-uid binary accepts the targets (client, CA, credentials file as the
    // service user).
    let check = Command::new(&b.shell_bin)
        .arg("--config")
        .arg(&b.config)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "--check-config: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The `d` events of a recording with their index among all events.
fn d_events(rec: &Path) -> Vec<(usize, Value)> {
    common::events(rec)
        .into_iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EventKind::Database)
        .map(|(i, e)| {
            (
                i,
                serde_json::from_slice(&e.bytes).expect("d event is JSON"),
            )
        })
        .collect()
}

/// Index of the first `o` event whose bytes contain `needle`.
fn output_index(rec: &Path, needle: &str) -> Option<usize> {
    common::events(rec)
        .iter()
        .position(|e| e.kind == EventKind::Output && common::contains(&e.bytes, needle.as_bytes()))
}

/// The `db.stmt` event whose SQL contains `needle`, with its index.
fn stmt<'a>(evs: &'a [(usize, Value)], needle: &str) -> Option<&'a (usize, Value)> {
    evs.iter()
        .find(|(_, e)| e["k"] == "db.stmt" && e["sql"].as_str().is_some_and(|s| s.contains(needle)))
}

/// `sealcast queries --json --trusted … REC`: exit code and rows.
fn queries(b: &Bastion, rec: &Path) -> (i32, Vec<Value>) {
    let out = Command::new(common::bin())
        .args(["queries", "--json", "--trusted"])
        .arg(&b.allowed_signers)
        .arg(rec)
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (code(&out.status), rows)
}

fn verified_row<'a>(rows: &'a [Value], needle: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["sql"].as_str().is_some_and(|s| s.contains(needle)))
        .unwrap_or_else(|| panic!("no query row with {needle}: {rows:?}"))
}

/// `ssh -tt … user@host WORDS…` for a [`PtyClient`].
fn tty_argv(b: &Bastion, words: &[&str]) -> Vec<String> {
    let mut argv = b.ssh_argv();
    argv.extend(["-tt".to_string(), b.destination()]);
    argv.extend(words.iter().map(|w| w.to_string()));
    argv
}

/// Remove the socket directories the test user's sessions left (the user is deleted with
/// the bastion).
fn remove_socket_dirs(b: &Bastion) {
    use std::os::unix::fs::MetadataExt;
    for e in fs::read_dir("/tmp").unwrap().flatten() {
        let stale = e.file_name().to_string_lossy().starts_with("sealcast-db-")
            && fs::symlink_metadata(e.path()).is_ok_and(|m| m.uid() == b.uid);
        if stale {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

#[test]
fn db_command_runs_the_client_against_the_recording_proxy_and_refuses_anything_else() {
    if !require(
        "db_command_runs_the_client_against_the_recording_proxy_and_refuses_anything_else",
        true,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let m = Mariadb::shared();
    let b = Bastion::start();
    add_targets(&b, pg, Some(m));

    // psql in the recorded PTY, driven interactively.
    let before = b.recordings();
    let mut c = PtyClient::spawn(&tty_argv(&b, &["db", "pg"]), 100, 30);
    c.expect("=>", 30);
    c.send("select 'shape' || 'one_' || 6*7;\r");
    c.expect("shapeone_42", 30);
    c.send("\\q\r");
    assert_eq!(c.wait(30), 0, "{}", c.text());
    let rec = b.wait_new_recording(&before, 30);
    let r = Rec::load(&rec);
    assert_eq!(r.shape().as_deref(), Some("db"));
    assert_eq!(r.meta("original_command").as_deref(), Some("db pg"));
    let evs = d_events(&rec);
    let (si, s) = stmt(&evs, "'shape' || 'one_'").expect("the statement as a d event");
    assert_eq!(s["via"], "simple");
    let open = evs.iter().find(|(_, e)| e["k"] == "db.open").unwrap();
    assert_eq!(open.1["auth_mode"], "injected");
    assert_eq!(open.1["client"]["peer_uid"], b.uid);
    assert!(open.1["upstream"]["tls"]["verified"] == true, "{}", open.1);
    // Interleaved with the screen. Causal order holds: the proxy writes the statement before
    // the server sees it, so the answer follows the `d` event. The echo psql printed while
    // the line was typed reaches the writer through the PTY pump, a thread of its own, and
    // may land on either side of the `d` event (SPEC §10.3: the order the writer receives).
    let echo = output_index(&rec, "select 'shape'").expect("echo of the statement");
    let answer = output_index(&rec, "shapeone_42").expect("the answer on screen");
    assert!(
        *si < answer && echo < answer,
        "o {echo}, d {si} < o {answer}"
    );
    b.assert_verifies(&rec);
    db::harness::check_recording(&common::bin(), &b.allowed_signers, &rec);
    let (rc, rows) = queries(&b, &rec);
    assert_eq!(rc, 0, "{rows:?}");
    assert_eq!(verified_row(&rows, "'shape' || 'one_'")["verified"], true);
    assert!(
        pg.log_text().contains(&format!(
            "sealcast:{}",
            r.meta("session").unwrap_or_default()
        )),
        "application_name carries the session id"
    );

    // Without a PTY: the pipes source; psql and mariadb read statements from stdin.
    for (target, sql, want) in [
        ("pg", "select 'pipes' || '_' || 6*7;\n", "pipes_42"),
        ("my", "select concat('my', '_', 6*7);\n", "my_42"),
    ] {
        let before = b.recordings();
        let out = run(&mut b.ssh(&["db", target]), sql.as_bytes(), 30);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(want), "db {target}: {out:?}");
        let rec = b.wait_new_recording(&before, 30);
        let evs = d_events(&rec);
        assert!(stmt(&evs, &sql[..12]).is_some(), "db {target}: {evs:?}");
        assert!(
            !common::contains(&decompressed(&rec), b"-pw"),
            "a password was recorded"
        );
        b.assert_verifies(&rec);
    }

    // Refused, recorded, nothing run: a target the user may not use, and anything but
    // exactly `db <name>`.
    for cmd in [
        "db other",
        "db nosuch",
        "db pg; touch ~/ran",
        "db pg extra",
        "db ../x",
        "db $(touch ~/ran)",
        "db pg`touch ~/ran`",
        "db 'pg'",
        "db",
    ] {
        for tty in [false, true] {
            let before = b.recordings();
            let mut ssh = if tty {
                b.ssh(&["-tt", cmd])
            } else {
                b.ssh(&[cmd])
            };
            let (out, timed_out) = run_timeout(&mut ssh, b"", 30);
            assert!(!timed_out, "{cmd}");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(code(&out.status), 1, "{cmd}: {text}");
            assert!(
                text.contains("sealcast: db session refused"),
                "{cmd}: {text}"
            );
            let rec = b.wait_new_recording(&before, 30);
            let r = Rec::load(&rec);
            assert_eq!(r.shape().as_deref(), Some("db"), "{cmd}");
            assert_eq!(r.meta("original_command").as_deref(), Some(cmd));
            assert_eq!(r.exit().as_deref(), Some("1"), "{cmd}");
            let shown = format!("{}{}", r.text("o"), r.text("e"));
            assert!(
                shown.contains("db session refused"),
                "{cmd}: {}",
                r.describe()
            );
            assert!(d_events(&rec).is_empty(), "{cmd}: no proxy ran");
            b.assert_verifies(&rec);
            assert!(!b.home.join("ran").exists(), "{cmd} ran something");
        }
    }
    assert!(
        !pg.log_text().contains("touch"),
        "nothing reached the server"
    );
    remove_socket_dirs(&b);
}

#[test]
fn shell_sessions_reach_every_allowed_target_through_the_sessions_recording() {
    if !require(
        "shell_sessions_reach_every_allowed_target_through_the_sessions_recording",
        true,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let m = Mariadb::shared();
    let b = Bastion::start();
    add_targets(&b, pg, Some(m));
    let before = b.recordings();
    let mut c = PtyClient::spawn(&tty_argv(&b, &[]), 120, 40);
    c.send("echo ready_$((6*7))\r");
    c.expect("ready_42", 30);
    c.send("psql -X service=pg -c \"select 'svc' || '_' || 6*7\"\r");
    c.expect("svc_42", 30);
    // A script using the service file (PGSERVICE instead of an argument).
    c.send(
        "printf '%s\\n' \"select 'script' || '_' || 6*7;\" > q.sql; \
         printf '#!/bin/sh\\nPGSERVICE=pg exec psql -X -At -f q.sql\\n' > q.sh; sh q.sh\r",
    );
    c.expect("script_42", 30);
    c.send("mariadb --defaults-group-suffix=_my -N -e \"select concat('mysvc', '_', 6*7)\"\r");
    c.expect("mysvc_42", 30);
    // The user sees the environment and the generated files, never a password; the
    // credentials file is not theirs to read.
    c.send(
        "env | grep -E '^(PGSERVICEFILE|MYSQL_HOME)='; cat \"$PGSERVICEFILE\" \"$MYSQL_HOME/my.cnf\"; \
         ls -la \"$SEALCAST_DB_DIR\"; echo listed_$((6*7))\r",
    );
    c.expect("listed_42", 30);
    assert!(c.text().contains("[client_my]"), "{}", c.text());
    let dir_line = c
        .text()
        .lines()
        .find_map(|l| l.trim().strip_prefix("MYSQL_HOME=").map(str::to_string))
        .expect("MYSQL_HOME in the session");
    let dir = PathBuf::from(dir_line.trim());
    let meta = fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), b.uid);
    for cred in ["db-pg.cred", "db-my.cred"] {
        let out = run(b.as_user("/bin/cat").arg(b.etc.join(cred)), &[], 10);
        assert!(!out.status.success(), "the user can read {cred}");
    }
    // Nothing the user can read holds a password: the generated files, and the environment
    // of every process of the user (read as root).
    for f in fs::read_dir(&dir).unwrap() {
        let p = f.unwrap().path();
        if p.is_file() {
            let t = fs::read(&p).unwrap();
            assert!(
                !common::contains(&t, PG_PW.as_bytes()) && !common::contains(&t, MY_PW.as_bytes())
            );
        }
    }
    let mut environments = 0;
    for p in bastion::harness::processes()
        .into_iter()
        .filter(|p| p.uid == b.uid)
    {
        if let Ok(env) = fs::read(format!("/proc/{}/environ", p.pid)) {
            environments += 1;
            assert!(
                !common::contains(&env, PG_PW.as_bytes()),
                "environment of {}",
                p.pid
            );
            assert!(
                !common::contains(&env, MY_PW.as_bytes()),
                "environment of {}",
                p.pid
            );
        }
    }
    // The session's shell at least was read (the loop checked something).
    assert!(
        environments > 0,
        "no environment of the user's processes was read"
    );
    // Another uid on the session's socket: nobody cannot reach the directory; root (who
    // can) is refused by SO_PEERCRED, and the attempt is recorded.
    let sock = dir.join("pg/.s.PGSQL.5432");
    let nobody = run(
        Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .args(["psql", "-X", "-h"])
            .arg(dir.join("pg"))
            .args(["-p", "5432", "-c", "select 'foreign_nobody'"]),
        &[],
        20,
    );
    assert!(!nobody.status.success(), "{nobody:?}");
    let root = run(
        Command::new("psql")
            .args(["-X", "-h"])
            .arg(dir.join("pg"))
            .args([
                "-p",
                "5432",
                "-U",
                "postgres",
                "-c",
                "select 'foreign_root'",
            ])
            .env("PGCONNECT_TIMEOUT", "10"),
        &[],
        20,
    );
    assert!(!root.status.success(), "root got through: {root:?}");
    assert!(sock.exists());
    c.send("exit\r");
    c.wait(30);
    let rec = b.wait_new_recording(&before, 30);
    let r = Rec::load(&rec);
    assert_eq!(r.shape().as_deref(), Some("interactive"));
    let evs = d_events(&rec);
    for (needle, shown) in [
        ("'svc'", "svc_42"),
        ("'script'", "script_42"),
        ("'mysvc'", "mysvc_42"),
    ] {
        let (si, _) = stmt(&evs, needle).unwrap_or_else(|| panic!("{needle}: {evs:?}"));
        let answer = output_index(&rec, shown).unwrap();
        assert!(*si < answer, "{needle}: d {si} before o {answer}");
    }
    // Connection numbers are the session's, across targets.
    let cs: Vec<u64> = evs
        .iter()
        .filter(|(_, e)| e["k"] == "db.open")
        .map(|(_, e)| e["c"].as_u64().unwrap())
        .collect();
    assert!(
        cs.len() >= 3 && cs.windows(2).all(|w| w[0] < w[1]),
        "{cs:?}"
    );
    let refused = evs
        .iter()
        .find(|(_, e)| e["k"] == "db.refused")
        .expect("the foreign uid is recorded");
    assert_eq!(refused.1["client"]["peer_uid"], 0);
    assert!(
        !pg.log_text().contains("foreign_"),
        "a foreign statement ran"
    );
    let all = decompressed(&rec);
    assert!(common::contains(&all, b"PGSERVICEFILE="));
    assert!(
        !common::contains(&all, PG_PW.as_bytes()),
        "the password is in the recording"
    );
    assert!(
        !common::contains(&all, MY_PW.as_bytes()),
        "the password is in the recording"
    );
    b.assert_verifies(&rec);
    db::harness::check_recording(&common::bin(), &b.allowed_signers, &rec);
    let (rc, rows) = queries(&b, &rec);
    assert_eq!(rc, 0, "{rows:?}");
    for n in ["svc", "script", "mysvc"] {
        assert_eq!(
            verified_row(&rows, &format!("'{n}'"))["verified"],
            true,
            "{n}"
        );
    }
    // The ended session's socket directory is removed by the user's next session that
    // has database targets (its sockets no longer listen).
    assert!(dir.is_dir());
    let out = run(&mut b.ssh(&["true"]), b"", 30);
    assert_eq!(code(&out.status), 0, "{out:?}");
    assert!(!dir.exists(), "{} left behind", dir.display());
    remove_socket_dirs(&b);
}

#[test]
fn a_failing_recording_stops_statements_before_the_server() {
    if !require(
        "a_failing_recording_stops_statements_before_the_server",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let mut b = Bastion::start();
    add_targets(&b, pg, None);
    // --check-config refuses an injected credentials file that others could read.
    let cred = b.etc.join("db-pg.cred");
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o640)).unwrap();
    let check = Command::new(&b.shell_bin)
        .arg("--config")
        .arg(&b.config)
        .arg("--check-config")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stderr);
    assert_eq!(code(&check.status), 1, "{said}");
    assert!(
        said.contains("[db.pg]") && said.contains("mode 640"),
        "{said}"
    );
    fs::set_permissions(&cred, fs::Permissions::from_mode(0o600)).unwrap();
    let spool = b.small_spool("smallspool", 1 << 20);
    let tag = format!("wal{}x", std::process::id());
    // SIGHUP ignored so that the loop outlives the recorder's hang-up long enough to show
    // every later statement refused too (SIGKILL follows after the grace).
    let script = format!(
        "trap '' HUP; psql -X -At service=pg -c \"select '{tag}_0'\" >/dev/null 2>&1; \
         while [ ! -e ~/go ]; do sleep 0.05; done; i=1; while [ $i -le 30 ]; do \
         psql -X -At service=pg -c \"select '{tag}_$i'\" >/dev/null 2>>~/err.txt; \
         echo \"$i $?\" >> ~/rc.txt; i=$((i+1)); done"
    );
    let mut ssh = b.ssh(&[&script]);
    ssh.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = ssh.spawn().unwrap();
    assert!(
        bastion::harness::wait_for(Duration::from_secs(30), || pg
            .log_text()
            .contains(&format!("{tag}_0"))),
        "the first statement never reached the server"
    );
    Bastion::fill(&spool, 0);
    b.write_user_file("go", b"", 0o644);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out.status), 1, "{stderr}");
    assert!(stderr.contains("recording failed"), "{stderr}");
    let rcs = fs::read_to_string(b.home.join("rc.txt")).unwrap_or_default();
    let first_fail: u32 = rcs
        .lines()
        .find_map(|l| {
            let (i, rc) = l.split_once(' ')?;
            (rc != "0").then(|| i.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no statement failed: {rcs}"));
    let err = fs::read_to_string(b.home.join("err.txt")).unwrap_or_default();
    assert!(err.contains("recording failed"), "{err}");
    let rec = Bastion::recordings_in(&spool)
        .into_iter()
        .next()
        .expect("the recording");
    // What the file holds (up to the failure): every statement the server ran was written
    // ahead; none after the first refused one ran.
    let rec_evs = Rec::load(&rec);
    let written: Vec<String> = rec_evs
        .events
        .iter()
        .filter(|e| e.kind == EventKind::Database)
        .map(|e| String::from_utf8_lossy(&e.bytes).into_owned())
        .collect();
    let log = pg.log_text();
    for i in 0..=30u32 {
        let probe = format!("'{tag}_{i}'");
        let ran = log.contains(&probe);
        if i > first_fail {
            assert!(!ran, "{probe} ran after the recording failed");
        }
        if ran {
            assert!(
                written.iter().any(|w| w.contains(&probe)),
                "{probe} ran without its db.stmt in the recording"
            );
        }
    }
    let _ = fs::remove_file(spool.join("filler"));
    remove_socket_dirs(&b);
}
