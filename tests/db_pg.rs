//! The database proxy against a real PostgreSQL 15 (tests/db/harness.rs), driven by real
//! clients: psql, pgbench, tokio-postgres and raw sockets for what no client sends. Every
//! recording made here verifies OK with `sealcast verify`.

mod common;
mod db;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use db::harness::{require, DbProxy, Postgres};
use serde_json::Value;

fn sealcast() -> PathBuf {
    common::bin()
}

/// `[db.t]` body for the shared server, TLS on or off, plus `extra` lines.
fn target(pg: &Postgres, tls: bool, extra: &str) -> String {
    let mut t = format!(
        "protocol = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\n",
        pg.port
    );
    if tls {
        t.push_str(&format!("ca_file = \"{}\"\n", pg.pki.ca.display()));
    } else {
        t.push_str("tls = \"disable\"\n");
    }
    t.push_str(extra);
    t
}

fn proxy(pg: &Postgres, tls: bool, extra: &str) -> DbProxy {
    DbProxy::start(&sealcast(), &target(pg, tls, extra), ".s.PGSQL.5432", &[])
}

/// psql through the proxy as `user` with `password`.
fn psql(p: &DbProxy, user: &str, password: &str, args: &[&str]) -> Output {
    Command::new("psql")
        .args(["-X", "-h"])
        .arg(p.sock_dir())
        .args(["-p", "5432", "-U", user, "-d", "shop"])
        .args(args)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql")
}

/// The `d` events of a recording, parsed.
fn d_events(rec: &Path) -> Vec<Value> {
    common::events(rec)
        .into_iter()
        .filter(|e| e.code == "d")
        .map(|e| serde_json::from_slice(&e.bytes).expect("d event is JSON"))
        .collect()
}

fn kinds<'a>(evs: &'a [Value], k: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["k"] == k).collect()
}

/// `sealcast verify` says OK (exit 0) for every recording of `p`.
fn verify_all(p: &DbProxy, recs: &[PathBuf]) {
    for r in recs {
        let out = Command::new(sealcast())
            .arg("verify")
            .arg("--trusted")
            .arg(&p.trust)
            .arg(r)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "verify {}: {}{}",
            r.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn decompressed(rec: &Path) -> Vec<u8> {
    let out = Command::new("zstd")
        .args(["-dc", "-q"])
        .arg(rec)
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn psql_simple_queries_errors_in_transactions_and_empty_query() {
    if !require(
        "psql_simple_queries_errors_in_transactions_and_empty_query",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    pg.admin("shop", "TRUNCATE acct");
    let p = proxy(pg, true, "");
    let out = psql(
        &p,
        "app_scram",
        "scram-pw",
        &[
            "-c",
            "BEGIN; INSERT INTO acct VALUES (1, 'a'); SELECT 1/0; COMMIT;",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("division by zero"));
    let script = p.dir.path().join("s.sql");
    std::fs::write(&script, "BEGIN;\nINSERT INTO acct VALUES (2, 'b');\nSELECT 1/0;\nINSERT INTO acct VALUES (3, 'c');\nCOMMIT;\n;\nSELECT a FROM acct ORDER BY a;\n").unwrap();
    let out = psql(
        &p,
        "app_scram",
        "scram-pw",
        &["-f", script.to_str().unwrap()],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("(0 rows)"),
        "{out:?}"
    );
    let recs = p.wait_sealed(2);
    verify_all(&p, &recs);

    // -c: one Query, four statements: ok, ok, error, skipped.
    let e = d_events(&recs[0]);
    let open = kinds(&e, "db.open")[0];
    let cert = std::fs::read_to_string(&pg.pki.cert).unwrap();
    let der = rustls_pem_der(&cert);
    assert_eq!(open["upstream"]["tls"]["cert_sha256"], sha256_hex(&der));
    assert_eq!(open["startup"]["user"], "app_scram");
    let auth = kinds(&e, "db.auth")[0];
    assert_eq!(
        (
            auth["method"].as_str(),
            auth["ok"].as_bool(),
            auth["stripped_plus"].as_bool()
        ),
        (Some("scram-sha-256"), Some(true), Some(true))
    );
    let st = kinds(&e, "db.stmt");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["n_parts"], 4);
    assert_eq!(st[0]["via"], "simple");
    let res: Vec<(String, Option<String>)> = kinds(&e, "db.result")
        .iter()
        .map(|r| {
            (
                r["status"].as_str().unwrap().to_string(),
                r["err"]["sqlstate"].as_str().map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        res,
        [
            ("ok".into(), None),
            ("ok".into(), None),
            ("error".into(), Some("22012".into())),
            ("skipped".into(), None)
        ]
    );
    // Statement recorded before its outcome; close last.
    let ks: Vec<&str> = e.iter().map(|v| v["k"].as_str().unwrap()).collect();
    assert_eq!(ks.first(), Some(&"db.open"));
    assert_eq!(ks.last(), Some(&"db.close"));

    // -f: one Query per statement; 25P02 after the error, COMMIT completes as ROLLBACK.
    let e = d_events(&recs[1]);
    let stmts = kinds(&e, "db.stmt");
    let results = kinds(&e, "db.result");
    let by_q = |q: u64| results.iter().find(|r| r["q"] == q).copied().unwrap();
    let sql_q = |s: &str| {
        stmts
            .iter()
            .find(|x| x["sql"] == s)
            .map(|x| x["q"].as_u64().unwrap())
            .unwrap()
    };
    assert_eq!(
        by_q(sql_q("INSERT INTO acct VALUES (3, 'c');"))["err"]["sqlstate"],
        "25P02"
    );
    let commit = by_q(sql_q("COMMIT;"));
    assert_eq!(
        (commit["status"].as_str(), commit["tag"].as_str()),
        (Some("ok"), Some("ROLLBACK"))
    );
    assert_eq!(
        stmts.iter().find(|x| x["sql"] == "BEGIN;").unwrap()["txn_before"],
        "I"
    );
    assert_eq!(
        stmts.iter().find(|x| x["sql"] == "COMMIT;").unwrap()["txn_before"],
        "E"
    );
    assert_eq!(by_q(sql_q(";"))["status"], "empty");
    let sel = by_q(sql_q("SELECT a FROM acct ORDER BY a;"));
    assert_eq!(
        (
            sel["rows"].as_u64(),
            sel["rows_out"].as_u64(),
            sel["cols"][0].as_str()
        ),
        (Some(0), Some(0), Some("a"))
    );
    // The password never reaches the recording; application_name carries the session id.
    for r in &recs {
        assert!(!common::contains(&decompressed(r), b"scram-pw"));
    }
    let session = common::header(&recs[1]).sealcast.unwrap().session;
    assert!(
        pg.log_text()
            .contains(&format!("sealcast:{session}] LOG:  statement: COMMIT;")),
        "server log lacks the session id"
    );
    p.stop();
}

fn rustls_pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}
