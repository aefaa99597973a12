//! `sealcast queries` through the real binary, on recordings made in-process by the real
//! writer: each row carries the coverage of the `d` events it comes from (verified only
//! under a verified checkpoint; unsealed, failed otherwise), and the exit code is the one
//! `sealcast verify` gives for the same file (its name and receipt included).

#[path = "support/player.rs"]
mod support;

use std::path::{Path, PathBuf};

use sealcast_signer::SigningKey;
use serde_json::Value;
use support::*;

/// A `d` event of connection 1 (SPEC §11.2), `rest` the keys after the common ones.
fn d(k: &str, rest: &str) -> String {
    format!(r#"{{"v":1,"k":"{k}","c":1,"proto":"pg","ts":"2025-11-21T04:40:00Z",{rest}}}"#)
}

/// Statement `q` and its result, the statement written ahead as the proxy does.
fn statement(r: &mut Rec, t_us: u64, q: u64) {
    r.at(t_us)
        .db_event(
            &d(
                "db.stmt",
                &format!(r#""q":{q},"via":"simple","sql":"SELECT {q}","txn_before":"I""#),
            ),
            true,
        )
        .unwrap();
    r.at(t_us + 1_000)
        .db_event(
            &d(
                "db.result",
                &format!(
                    r#""q":{q},"i":0,"status":"ok","tag":"SELECT 1","rows":1,"rows_out":1,"bytes_out":1,"dur_us":1000"#
                ),
            ),
            false,
        )
        .unwrap();
}

/// A database session in three checkpoint regions:
///
/// ```text
/// D0 [0 header]                                         C0
/// D1 [1 db.open, 2 stmt 1, 3 result 1]                  C1 (t = 11 s)
/// D2 [4 stmt 2, 5 result 2]                             C2 (t = 23 s)
/// D3 [6 stmt 3, 7 result 3, 8 x 0]                      C3 (final)
/// ```
fn db_session(key: SigningKey, close: bool) -> (Vec<u8>, Vec<u8>) {
    let mut r = Rec::start(key, SESSION);
    r.at(100_000)
        .db_event(
            &d(
                "db.open",
                r#""startup":{"user":"app","database":"shop","protocol":"3.0"}"#,
            ),
            true,
        )
        .unwrap();
    statement(&mut r, 1_000_000, 1);
    r.at(11_000_000).tick().unwrap();
    statement(&mut r, 12_000_000, 2);
    r.at(23_000_000).tick().unwrap();
    statement(&mut r, 24_000_000, 3);
    if close {
        r.finish()
    } else {
        (r.crash(), Vec::new())
    }
}

struct Setup {
    env: Env,
    trust: PathBuf,
    key_pem: String,
}

impl Setup {
    fn new() -> Setup {
        let env = Env::new();
        let key = SigningKey::generate().unwrap();
        let trust = env.path("allowed_signers");
        std::fs::write(&trust, trust_line(HOST, &key)).unwrap();
        Setup {
            env,
            trust,
            key_pem: key.to_pem(),
        }
    }

    fn key(&self) -> SigningKey {
        SigningKey::from_file_bytes(self.key_pem.as_bytes()).unwrap()
    }

    fn write(&self, name: &str, bytes: &[u8], receipt: Option<&[u8]>) -> PathBuf {
        write_recording(&self.env.path("rec"), name, bytes, receipt)
    }

    /// `queries --json`: the rows' (sql, coverage, verified) and the exit code, asserted
    /// equal to `verify`'s for the same file.
    fn queries(&self, path: &Path) -> (Vec<(String, String, bool)>, i32) {
        let trust = self.trust.to_str().unwrap();
        let p = path.to_str().unwrap();
        let run = self.env.run(&["queries", "--json", "--trusted", trust, p]);
        let verify = self.env.run(&["verify", "--trusted", trust, p]);
        assert_eq!(
            run.code,
            verify.code,
            "queries exits as verify does: {}\n{}",
            run.stderr,
            verify.stdout_str()
        );
        let rows = run
            .json_lines()
            .iter()
            .map(|r: &Value| {
                (
                    r["sql"].as_str().unwrap().to_string(),
                    r["coverage"].as_str().unwrap().to_string(),
                    r["verified"].as_bool().unwrap(),
                )
            })
            .collect();
        (rows, run.code)
    }

    /// `queries` (human): the lines after the title.
    fn table(&self, path: &Path) -> Vec<String> {
        let trust = self.trust.to_str().unwrap();
        let run = self
            .env
            .run(&["queries", "--trusted", trust, path.to_str().unwrap()]);
        run.stdout_str().lines().skip(1).map(String::from).collect()
    }
}

fn row(sql: &str, coverage: &str) -> (String, String, bool) {
    (sql.into(), coverage.into(), coverage == "verified")
}

#[test]
fn rows_carry_their_coverage_and_the_exit_code_is_verifys() {
    let s = Setup::new();
    let (bytes, note) = db_session(s.key(), true);
    let name = format!("{SESSION}.cast.zst");

    // Intact, with its receipt: every row verified, exit 0.
    let p = s.write(&name, &bytes, Some(&note));
    let (rows, code) = s.queries(&p);
    assert_eq!(code, 0);
    assert_eq!(
        rows,
        [
            row("SELECT 1", "verified"),
            row("SELECT 2", "verified"),
            row("SELECT 3", "verified"),
        ]
    );
    assert!(s
        .table(&p)
        .iter()
        .all(|l| !l.starts_with(char::is_alphabetic)));

    // The same bytes under another session's name: verify says MODIFIED (SPEC §7.1 step 4),
    // and so does the exit code of queries (it used to verify the bytes alone and exit 0).
    let other = s.write(
        "fedcba9876543210fedcba9876543210.cast.zst",
        &bytes,
        Some(&note),
    );
    let (_, code) = s.queries(&other);
    assert_eq!(code, 1);

    // A statement of the second region changed: its region fails, and everything after
    // it; the first region stays verified.
    let bad = edit_line(&bytes, 4, |l| replace_bytes(l, b"SELECT 2", b"DELETE 2"));
    let p = s.write("tampered.cast.zst", &bad, None);
    let (rows, code) = s.queries(&p);
    assert_eq!(code, 1);
    assert_eq!(
        rows,
        [
            row("SELECT 1", "verified"),
            row("DELETE 2", "failed"),
            row("SELECT 3", "failed"),
        ]
    );
    let lines = s.table(&p);
    assert!(!lines[0].starts_with(char::is_alphabetic), "{lines:?}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("FAILED ")),
        "{lines:?}"
    );
}

#[test]
fn a_crash_tail_is_unsealed() {
    let s = Setup::new();
    let (bytes, _) = db_session(s.key(), false);
    let p = s.write(&format!("{SESSION}.cast.zst"), &bytes, None);
    let (rows, code) = s.queries(&p);
    // verify: UNSEALED_TAIL, exit 2.
    assert_eq!(code, 2);
    assert_eq!(
        rows,
        [
            row("SELECT 1", "verified"),
            row("SELECT 2", "verified"),
            row("SELECT 3", "unsealed"),
        ]
    );
    let lines = s.table(&p);
    assert!(lines[2].starts_with("UNSEALED "), "{lines:?}");
}

/// A FIFO at the recording's path or at its receipt's is what verify reports it as
/// (unreadable, exit 4; a FIFO receipt makes the file MODIFIED), never a hang: queries
/// opened both with a plain open(2), which blocks on a FIFO without a writer.
#[test]
fn fifos_never_block_queries() {
    let s = Setup::new();
    let (bytes, _) = db_session(s.key(), true);
    let dir = s.env.path("fifo");
    let mkfifo = |path: &Path| {
        let st = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "mkfifo {}", path.display());
    };
    std::fs::create_dir_all(&dir).unwrap();
    let trust = s.trust.to_str().unwrap();
    let rec = dir.join("a.cast.zst");
    mkfifo(&rec);
    let run = s
        .env
        .run_within(30, &["queries", "--trusted", trust, rec.to_str().unwrap()]);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("UNREADABLE"), "{}", run.stderr);

    let p = write_recording(&dir, "b.cast.zst", &bytes, None);
    mkfifo(Path::new(&format!("{}.seal", p.display())));
    let run = s.env.run_within(
        30,
        &["queries", "--json", "--trusted", trust, p.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("MODIFIED"), "{}", run.stderr);
}

/// The `d` vectors of SPEC §11.4, through `sealcast queries` with the vectors' trust file.
#[test]
fn db_vectors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors");
    let env = Env::new();
    let trust = dir.join("allowed_signers");
    let run = |name: &str| {
        let file = dir.join(format!("{name}.cast.zst"));
        let r = env.run(&[
            "queries",
            "--json",
            "--trusted",
            trust.to_str().unwrap(),
            file.to_str().unwrap(),
        ]);
        let rows: Vec<(String, String, String)> = r
            .json_lines()
            .iter()
            .map(|r| {
                (
                    r["sql"].as_str().unwrap().to_string(),
                    r["status"].as_str().unwrap().to_string(),
                    r["coverage"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (rows, r.code)
    };
    let row = |sql: &str, status: &str, coverage: &str| {
        (sql.to_string(), status.to_string(), coverage.to_string())
    };
    const Q: &str = "SELECT id, name FROM customers WHERE id = 7";
    const U: &str = "UPDATE customers SET name = 'Bob' WHERE id = 7";
    assert_eq!(
        run("valid-db"),
        (vec![row(Q, "ok", "verified"), row(U, "ok", "verified")], 0)
    );
    assert_eq!(
        run("tamper-db-statement"),
        (
            vec![
                row(&Q.replace("= 7", "= 8"), "ok", "failed"),
                row(U, "ok", "failed")
            ],
            1
        )
    );
    assert_eq!(
        run("crash-db-tail"),
        (
            vec![row(Q, "ok", "verified"), row(U, "no_result", "unsealed")],
            2
        )
    );
}
