//! The database proxy against a real PostgreSQL 15 (tests/db/harness.rs), driven by real
//! clients: psql, pgbench, tokio-postgres and raw sockets for what no client sends. Every
//! recording made here verifies OK with `sealcast verify`.

mod common;
mod db;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use db::harness::{d_events, decompressed, kinds, require, target, verify_all, DbProxy, Postgres};
use sealcast_format::EventKind;
use serde_json::Value;

fn sealcast() -> PathBuf {
    common::bin()
}

fn proxy(pg: &Postgres, tls: bool, extra: &str) -> DbProxy {
    DbProxy::start(
        &sealcast(),
        &target("postgres", pg.port, &pg.pki, tls, extra),
        ".s.PGSQL.5432",
        &[],
    )
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

/// The results of statement `q` in `evs`.
fn results_of(evs: &[Value], q: u64) -> Vec<&Value> {
    evs.iter()
        .filter(|e| e["k"] == "db.result" && e["q"] == q)
        .collect()
}

#[test]
fn auth_matrix_tls_on_and_off_passthrough_and_injected() {
    if !require("auth_matrix_tls_on_and_off_passthrough_and_injected", false) {
        return;
    }
    let pg = Postgres::shared();
    for tls in [true, false] {
        let p = proxy(pg, tls, "");
        for (role, pw, _) in db::harness::PG_ROLES {
            let out = psql(&p, role, pw, &["-w", "-At", "-c", "SELECT current_user"]);
            assert!(
                out.status.success(),
                "{role} tls={tls}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), *role);
        }
        let out = psql(&p, "app_scram", "wrong", &["-w", "-c", "SELECT 1"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
            "{out:?}"
        );
        let recs = p.wait_sealed(4);
        verify_all(&p, &recs);
        let mut methods = Vec::new();
        for r in &recs {
            let e = d_events(r);
            let open = kinds(&e, "db.open")[0];
            assert_eq!(open["upstream"]["tls"].is_object(), tls, "{open}");
            let a = kinds(&e, "db.auth")[0];
            methods.push((
                a["method"].as_str().unwrap().to_string(),
                a["ok"].as_bool().unwrap(),
                a["err"]["sqlstate"].as_str().map(str::to_string),
            ));
            for pw in ["scram-pw", "md5-pw", "clear-pw", "wrong"] {
                assert!(
                    !common::contains(&decompressed(r), pw.as_bytes()),
                    "{pw} recorded"
                );
            }
        }
        methods.sort();
        assert_eq!(
            methods,
            [
                ("md5".into(), true, None),
                ("password".into(), true, None),
                ("scram-sha-256".into(), false, Some("28P01".into())),
                ("scram-sha-256".into(), true, None),
            ],
            "tls={tls}"
        );
        p.stop();
    }
    // Injected: the client sends no password and never learns it; SCRAM and MD5 upstream.
    for (role, pw) in [("app_scram", "scram-pw"), ("app_md5", "md5-pw")] {
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join("cred.toml");
        std::fs::write(&cred, format!("user = \"{role}\"\npassword = \"{pw}\"\n")).unwrap();
        std::fs::set_permissions(&cred, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let p = proxy(pg, true, &format!("credentials = \"injected\"\ncredentials_file = \"{}\"\nallowed_users = [\"root\"]\n", cred.display()));
        let out = psql(
            &p,
            "contractor",
            "",
            &["-w", "-At", "-c", "SELECT current_user"],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), role);
        let recs = p.wait_sealed(1);
        verify_all(&p, &recs);
        let e = d_events(&recs[0]);
        assert_eq!(kinds(&e, "db.open")[0]["auth_mode"], "injected");
        assert_eq!(kinds(&e, "db.open")[0]["startup"]["user"], "contractor");
        let a = kinds(&e, "db.auth")[0];
        assert_eq!(
            (a["ok"].as_bool(), a["db_user"].as_str()),
            (Some(true), Some(role))
        );
        assert!(!common::contains(&decompressed(&recs[0]), pw.as_bytes()));
        p.stop();
    }
}

#[test]
fn tokio_postgres_binary_params_portals_copy_in_and_pipelining() {
    if !require(
        "tokio_postgres_binary_params_portals_copy_in_and_pipelining",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let sock = p.sock_dir();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (mut client, conn) = tokio_postgres::Config::new()
            .host_path(&sock)
            .port(5432)
            .user("app_scram")
            .password("scram-pw")
            .dbname("shop")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        // Binary parameters, one NULL.
        let row = client
            .query_one(
                "SELECT $1::int4 + 1, $2::bytea, $3::int4 IS NULL",
                &[&41i32, &vec![0u8, 255], &None::<i32>],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        // Prepared once, executed twice; a Describe-only prepare executes nothing.
        let st = client.prepare("SELECT $1::text || 'x'").await.unwrap();
        for v in ["a", "b"] {
            client.query_one(&st, &[&v]).await.unwrap();
        }
        client.prepare("SELECT 'never executed'").await.unwrap();
        // A portal read three rows at a time.
        let tx = client.transaction().await.unwrap();
        let portal = tx
            .bind("SELECT g FROM generate_series(1, 5) g", &[])
            .await
            .unwrap();
        assert_eq!(tx.query_portal(&portal, 3).await.unwrap().len(), 3);
        assert_eq!(tx.query_portal(&portal, 3).await.unwrap().len(), 2);
        tx.commit().await.unwrap();
        // COPY in the extended protocol.
        client
            .execute("DELETE FROM acct WHERE a >= 100", &[])
            .await
            .unwrap();
        let sink = client.copy_in("COPY acct FROM STDIN").await.unwrap();
        futures_send(sink, b"100\tx\n101\ty\n").await;
        // Two queries pipelined on one connection; the second fails.
        let (a, b) = tokio::join!(
            client.query("SELECT 1", &[]),
            client.query("SELECT 1/0", &[])
        );
        assert!(a.is_ok() && b.is_err());
        drop(client);
        drop(task.await.expect("the connection task panicked"));
    });
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let stmts = kinds(&e, "db.stmt");
    let first = stmts[0];
    assert_eq!(first["via"], "extended");
    assert_eq!(
        first["params"][0],
        serde_json::json!({"t":"binary","oid":23,"b64":"AAAAKQ=="})
    );
    assert_eq!(
        first["params"][1],
        serde_json::json!({"t":"binary","oid":17,"b64":"AP8="})
    );
    assert_eq!(first["params"][2], serde_json::json!({"t":"null"}));
    assert!(
        !stmts.iter().any(|s| s["sql"] == "SELECT 'never executed'"),
        "a Describe-only prepare is not a statement"
    );
    let x: Vec<&&Value> = stmts
        .iter()
        .filter(|s| s["sql"] == "SELECT $1::text || 'x'")
        .collect();
    assert_eq!(x.len(), 2);
    assert_eq!(x[0]["stmt"], x[1]["stmt"]);
    // tokio-postgres sends text as binary format (OID 25): the bytes of "b".
    assert_eq!(
        x[1]["params"][0],
        serde_json::json!({"t":"binary","oid":25,"b64":"Yg=="})
    );
    let ports: Vec<&&Value> = stmts
        .iter()
        .filter(|s| s["sql"] == "SELECT g FROM generate_series(1, 5) g")
        .collect();
    assert_eq!(ports.len(), 2);
    assert_eq!(ports[0]["max_rows"], 3);
    assert_eq!(ports[1]["resumes"], ports[0]["q"]);
    let r0 = results_of(&e, ports[0]["q"].as_u64().unwrap());
    assert_eq!(
        (r0[0]["status"].as_str(), r0[0]["rows_out"].as_u64()),
        (Some("suspended"), Some(3))
    );
    let r1 = results_of(&e, ports[1]["q"].as_u64().unwrap());
    assert_eq!(
        (
            r1[0]["status"].as_str(),
            r1[0]["tag"].as_str(),
            r1[0]["rows_out"].as_u64()
        ),
        (Some("ok"), Some("SELECT 2"), Some(2))
    );
    let copy = kinds(&e, "db.copy");
    assert_eq!(copy.len(), 1);
    assert_eq!(
        (
            copy[0]["dir"].as_str(),
            copy[0]["bytes"].as_u64(),
            copy[0]["msgs"].as_u64()
        ),
        (Some("in"), Some(12), Some(1))
    );
    let cq = copy[0]["q"].as_u64().unwrap();
    assert_eq!(results_of(&e, cq)[0]["tag"], "COPY 2");
    let z = stmts.iter().find(|s| s["sql"] == "SELECT 1/0").unwrap();
    assert_eq!(
        results_of(&e, z["q"].as_u64().unwrap())[0]["err"]["sqlstate"],
        "22012",
        "{:#?}",
        &e[e.len().saturating_sub(8)..]
    );
    p.stop();
}

async fn futures_send(sink: tokio_postgres::CopyInSink<bytes::Bytes>, data: &'static [u8]) {
    use futures_util::SinkExt;
    let mut sink = std::pin::pin!(sink);
    sink.send(bytes::Bytes::from_static(data)).await.unwrap();
    assert_eq!(sink.as_mut().finish().await.unwrap(), 2);
}

#[test]
fn pgbench_prepared_and_a_pipeline_with_an_error() {
    if !require("pgbench_prepared_and_a_pipeline_with_an_error", false) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let dir = p.dir.path().to_path_buf();
    std::fs::write(
        dir.join("plain.sql"),
        "\\set a random(1, 1000)\nSELECT :a;\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("pipe.sql"),
        "\\startpipeline\nSELECT 1;\nSELECT 1/0;\nSELECT 2;\n\\endpipeline\n",
    )
    .unwrap();
    let bench = |script: &str, tx: &str| {
        Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-t", tx, "-f"])
            .arg(dir.join(script))
            .arg("-h")
            .arg(p.sock_dir())
            .args(["-p", "5432", "-U", "app_scram", "shop"])
            .env("PGPASSWORD", "scram-pw")
            .output()
            .unwrap()
    };
    let out = bench("plain.sql", "50");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The client aborts on the error, by design.
    let out = bench("pipe.sql", "1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("division by zero"),
        "{err}"
    );
    // pgbench also opens a connection of its own before the clients' (no statements).
    let recs = p.wait_sealed(4);
    verify_all(&p, &recs);
    let all: Vec<Vec<Value>> = recs.iter().map(|r| d_events(r)).collect();
    let e = all
        .iter()
        .max_by_key(|e| kinds(e, "db.stmt").len())
        .unwrap()
        .clone();
    let stmts = kinds(&e, "db.stmt");
    assert_eq!(stmts.len(), 50);
    assert!(stmts
        .iter()
        .all(|s| s["via"] == "extended" && s["stmt"] == "P_0" && s["n_params"] == 1));
    assert_eq!(
        kinds(&e, "db.result")
            .iter()
            .filter(|r| r["status"] == "ok" && r["rows_out"] == 1)
            .count(),
        50
    );
    assert_eq!(kinds(&e, "db.prepare").len(), 1);
    // The pipeline: ok, error, skipped (the server discards what follows an error until Sync).
    let e = all
        .iter()
        .find(|e| {
            kinds(e, "db.stmt")
                .iter()
                .any(|s| s["sql"] == "SELECT 1/0;")
        })
        .unwrap()
        .clone();
    let st: Vec<(String, String)> = kinds(&e, "db.stmt")
        .iter()
        .map(|s| {
            let r = results_of(&e, s["q"].as_u64().unwrap());
            (
                s["sql"].as_str().unwrap_or("?").to_string(),
                r.first()
                    .map(|r| r["status"].as_str().unwrap().to_string())
                    .unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        st,
        [
            ("SELECT 1;".into(), "ok".into()),
            ("SELECT 1/0;".into(), "error".into()),
            ("SELECT 2;".into(), "skipped".into())
        ]
    );
    p.stop();
}

#[test]
fn copy_both_ways_and_two_million_rows_in_bounded_memory() {
    if !require(
        "copy_both_ways_and_two_million_rows_in_bounded_memory",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    pg.admin("shop", "DELETE FROM acct WHERE a >= 1000");
    let p = proxy(pg, true, "");
    // psql's \copy from stdin: sent as COPY ... FROM STDIN; the local side is not on the wire.
    let mut child = Command::new("psql")
        .args(["-X", "-h"])
        .arg(p.sock_dir())
        .args([
            "-p",
            "5432",
            "-U",
            "app_scram",
            "-d",
            "shop",
            "-c",
            "\\copy acct from stdin",
        ])
        .env("PGPASSWORD", "scram-pw")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        for i in 1000..21000 {
            writeln!(w, "{i}\trow{i}").unwrap();
        }
    }
    assert!(child.wait().unwrap().success());
    let big = "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 2000000) g) TO STDOUT";
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "psql -X -h '{}' -p 5432 -U app_scram -d shop -c \"{big}\" | wc -c",
            p.sock_dir().display()
        ))
        .env("PGPASSWORD", "scram-pw")
        .output()
        .unwrap();
    let bytes: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let out = psql(
        &p,
        "app_scram",
        "scram-pw",
        &[
            "-At",
            "-o",
            "/dev/null",
            "-c",
            "SELECT g FROM generate_series(1, 2000000) g",
        ],
    );
    assert!(out.status.success());
    let rss_mib = p.peak_rss_kib() / 1024;
    let recs = p.wait_sealed(3);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let c = kinds(&e, "db.copy")[0];
    let sent: usize = (1000..21000)
        .map(|i: u32| format!("{i}\trow{i}\n").len())
        .sum();
    assert_eq!(
        (c["dir"].as_str(), c["bytes"].as_u64()),
        (Some("in"), Some(sent as u64))
    );
    assert_eq!(kinds(&e, "db.stmt")[0]["sql"], "COPY  acct FROM STDIN ");
    assert_eq!(kinds(&e, "db.result")[0]["tag"], "COPY 20000");
    let e = d_events(&recs[1]);
    let c = kinds(&e, "db.copy")[0];
    assert_eq!(
        (c["dir"].as_str(), c["msgs"].as_u64(), c["bytes"].as_u64()),
        (Some("out"), Some(2_000_000), Some(bytes))
    );
    assert_eq!(kinds(&e, "db.result")[0]["rows"], 2_000_000);
    let e = d_events(&recs[2]);
    let r = kinds(&e, "db.result")[0];
    assert_eq!(
        (r["rows"].as_u64(), r["rows_out"].as_u64()),
        (Some(2_000_000), Some(2_000_000))
    );
    // Row data is counted, never copied: the recording stays small.
    assert!(std::fs::metadata(&recs[2]).unwrap().len() < 16 * 1024);
    assert!(rss_mib <= 32, "proxy peak RSS {rss_mib} MiB");
    p.stop();
}

/// tmux session running `cmd`; killed on drop.
struct Tmux(String);
impl Tmux {
    fn start(name: &str, cmd: &str) -> Tmux {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", name])
            .output();
        db::harness::run(Command::new("tmux").args([
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "200",
            "-y",
            "50",
            cmd,
        ]));
        Tmux(name.to_string())
    }
    fn keys(&self, k: &str) {
        db::harness::run(Command::new("tmux").args(["send-keys", "-t", &self.0, k]));
    }
}
impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn ctrl_c_cancel_is_forwarded_and_a_forged_one_is_not() {
    if !require("ctrl_c_cancel_is_forwarded_and_a_forged_one_is_not", false) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let done = p.dir.path().join("done");
    let t = Tmux::start(
        "sealcast-db-cancel",
        &format!("PGPASSWORD=scram-pw psql -X -h '{}' -p 5432 -U app_scram -d shop -c 'SELECT pg_sleep(30) AS cancel_me'; touch '{}'", p.sock_dir().display(), done.display()),
    );
    db::harness::wait_for(
        "pg_sleep to run",
        std::time::Duration::from_secs(20),
        || pg.log_text().contains("SELECT pg_sleep(30) AS cancel_me"),
    );
    let t0 = std::time::Instant::now();
    t.keys("C-c");
    db::harness::wait_for("psql to end", std::time::Duration::from_secs(20), || {
        done.exists()
    });
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    // A forged CancelRequest (unknown pid/key) on the socket: recorded, not forwarded.
    {
        use std::io::Write;
        let mut s = std::os::unix::net::UnixStream::connect(&p.socket).unwrap();
        let mut pkt = 16u32.to_be_bytes().to_vec();
        pkt.extend_from_slice(&80_877_102u32.to_be_bytes());
        pkt.extend_from_slice(&4242u32.to_be_bytes());
        pkt.extend_from_slice(b"kkkk");
        s.write_all(&pkt).unwrap();
    }
    let recs = p.wait_sealed(2);
    verify_all(&p, &recs);
    let (mut main, mut forged) = (None, None);
    for r in &recs {
        let e = d_events(r);
        if kinds(&e, "db.stmt").is_empty() {
            forged = Some(e);
        } else {
            main = Some(e);
        }
    }
    let e = main.unwrap();
    let q = kinds(&e, "db.stmt")[0]["q"].as_u64().unwrap();
    let c = kinds(&e, "db.cancel")[0];
    assert_eq!(
        (c["forwarded"].as_bool(), c["target_q"].as_u64()),
        (Some(true), Some(q))
    );
    let r = results_of(&e, q)[0];
    assert_eq!(
        (r["status"].as_str(), r["err"]["sqlstate"].as_str()),
        (Some("cancelled"), Some("57014"))
    );
    let f = forged.unwrap();
    let c = kinds(&f, "db.cancel")[0];
    assert_eq!(
        (c["forwarded"].as_bool(), c["target_pid"].as_u64()),
        (Some(false), Some(4242))
    );
    p.stop();
}

#[test]
fn a_foreign_uid_is_refused_and_recorded() {
    if !require("a_foreign_uid_is_refused_and_recorded", false) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    // Open the socket up so that only SO_PEERCRED stands in the way.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p.sock_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(p.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&p.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "psql", "-X", "-w", "-h"])
        .arg(p.sock_dir())
        .args([
            "-p",
            "5432",
            "-U",
            "app_scram",
            "-d",
            "shop",
            "-c",
            "SELECT 'from nobody'",
        ])
        .env("PGPASSWORD", "scram-pw")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["k"], "db.refused");
    assert_eq!(e[0]["client"]["peer_uid"], 65534);
    assert!(!pg.log_text().contains("from nobody"));
    p.stop();
}

#[test]
fn passwords_are_redacted_and_parameter_changes_recorded() {
    if !require(
        "passwords_are_redacted_and_parameter_changes_recorded",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let out = psql(
        &p,
        "postgres",
        "super-pw",
        &[
            "-c",
            "ALTER ROLE only_plus PASSWORD 'Very-Secret-1'",
            "-c",
            "SET SESSION AUTHORIZATION app_md5",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let raw = decompressed(&recs[0]);
    assert!(!common::contains(&raw, b"Very-Secret-1"));
    let e = d_events(&recs[0]);
    let s = kinds(&e, "db.stmt")[0];
    assert_eq!(s["sql"], "ALTER ROLE only_plus PASSWORD '***'");
    assert_eq!(s["redacted"][0], "password_literal");
    // Parameter changes the server reports after startup are recorded.
    let params: Vec<(&str, &str)> = kinds(&e, "db.param")
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["value"].as_str().unwrap()))
        .collect();
    assert!(
        params.contains(&("session_authorization", "app_md5"))
            && params.contains(&("is_superuser", "off")),
        "{params:?}"
    );
    p.stop();
}

#[test]
fn a_failing_recording_refuses_the_statement_before_the_server_sees_it() {
    if !require(
        "a_failing_recording_refuses_the_statement_before_the_server_sees_it",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let fs = db::harness::Tmpfs::mount(&p.spool, "256k");
    let sock = p.sock_dir();
    let spool = p.spool.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (failed_at, err) = rt.block_on(async {
        let (client, conn) = tokio_postgres::Config::new()
            .host_path(&sock)
            .port(5432)
            .user("app_scram")
            .password("scram-pw")
            .dbname("shop")
            .connect(tokio_postgres::NoTls)
            .await
            .unwrap();
        let task = tokio::spawn(conn);
        client.simple_query("SELECT 'probe-0'").await.unwrap();
        // Fill the file system the recording lives on.
        let mut filler = std::fs::File::create(spool.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut filler, &block).is_ok() {}
        // Each probe carries 32 KiB of incompressible text, so its statement event needs
        // new pages of the full file system: the first probe's event cannot be written.
        let mut failed = None;
        for i in 1..5 {
            if let Err(e) = client
                .simple_query(&format!(
                    "SELECT 'probe-{i}', '{}'",
                    db::harness::noise(i as u64, 32 * 1024)
                ))
                .await
            {
                failed = Some((i, format!("{e:?}")));
                break;
            }
        }
        drop(client);
        drop(task.await.expect("the connection task panicked"));
        failed.expect("a statement must fail once the recording cannot be written")
    });
    assert!(
        err.contains("recording failed") || err.contains("closed"),
        "{err}"
    );
    let recs = p.recordings();
    assert_eq!(recs.len(), 1);
    let rec = &recs[0];
    // Every probe the server saw was recorded first; the refused one never reached it.
    let recorded: Vec<String> = common::events(rec)
        .into_iter()
        .filter(|e| e.kind == EventKind::Database)
        .filter_map(|e| serde_json::from_slice::<Value>(&e.bytes).ok())
        .filter(|v| v["k"] == "db.stmt")
        .map(|v| v["sql"].as_str().unwrap().to_string())
        .collect();
    let log = pg.log_text();
    for i in 0..=failed_at {
        let probe = format!("SELECT 'probe-{i}'");
        if log.contains(&format!("statement: {probe}\n")) {
            assert!(
                recorded.contains(&probe),
                "{probe} reached the server unrecorded"
            );
        }
    }
    assert!(
        !log.contains(&format!("statement: SELECT 'probe-{failed_at}'\n")),
        "the refused statement reached the server"
    );
    // Nothing unverified is called verified: the recording is not OK.
    let out = Command::new(sealcast())
        .arg("verify")
        .arg("--trusted")
        .arg(&p.trust)
        .arg(rec)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Unmount first, so the proxy's temp dir can be removed.
    drop(fs);
    p.stop();
}

/// Raw protocol over the proxy socket.
mod raw {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    pub fn startup(params: &[(&str, &str)], version: u32) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        for (k, v) in params {
            b.extend_from_slice(k.as_bytes());
            b.push(0);
            b.extend_from_slice(v.as_bytes());
            b.push(0);
        }
        b.push(0);
        let mut out = ((b.len() + 4) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&b);
        out
    }

    pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// Read one tagged message.
    pub fn read(s: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
        let mut h = [0u8; 5];
        s.read_exact(&mut h).ok()?;
        let n = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let mut b = vec![0u8; n - 4];
        s.read_exact(&mut b).ok()?;
        Some((h[0], b))
    }

    pub fn connect(p: &std::path::Path) -> UnixStream {
        let s = UnixStream::connect(p).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        s
    }

    pub fn send(s: &mut UnixStream, b: &[u8]) {
        s.write_all(b).unwrap();
    }
}

#[test]
fn raw_gssenc_direct_tls_replication_and_protocol_3_2() {
    if !require("raw_gssenc_direct_tls_replication_and_protocol_3_2", false) {
        return;
    }
    use std::io::Read;
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    // GSSENCRequest → 'N', then a normal startup with cleartext authentication.
    let mut s = raw::connect(&p.socket);
    raw::send(
        &mut s,
        &[8u32.to_be_bytes(), 80_877_104u32.to_be_bytes()].concat(),
    );
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"N");
    raw::send(
        &mut s,
        &raw::startup(&[("user", "app_clear"), ("database", "shop")], 196_608),
    );
    let (t, body) = raw::read(&mut s).unwrap();
    assert_eq!((t, &body[..4]), (b'R', &3i32.to_be_bytes()[..]));
    raw::send(&mut s, &raw::msg(b'p', b"clear-pw\0"));
    while let Some((t, _)) = raw::read(&mut s) {
        if t == b'Z' {
            break;
        }
    }
    raw::send(&mut s, &raw::msg(b'Q', b"SELECT 'after gss'\0"));
    while let Some((t, _)) = raw::read(&mut s) {
        if t == b'Z' {
            break;
        }
    }
    raw::send(&mut s, &raw::msg(b'X', b""));
    drop(s);
    // A TLS ClientHello on the socket: closed, recorded as a protocol error.
    let mut s = raw::connect(&p.socket);
    raw::send(&mut s, &[0x16, 0x03, 0x01, 0x00, 0x10, 0, 0, 0, 0]);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest); // a reset connection reads as an error: as good as closed
    assert!(
        rest.first().is_none_or(|&b| b == b'E'),
        "a ClientHello gets at most an ErrorResponse: {rest:?}"
    );
    // replication=database is refused (FATAL 28000).
    let mut s = raw::connect(&p.socket);
    raw::send(
        &mut s,
        &raw::startup(
            &[
                ("user", "app_scram"),
                ("database", "shop"),
                ("replication", "database"),
            ],
            196_608,
        ),
    );
    let (t, body) = raw::read(&mut s).unwrap();
    assert_eq!(t, b'E');
    assert!(String::from_utf8_lossy(&body).contains("28000"));
    // Protocol 3.2 with an unknown _pq_ option: PostgreSQL 15's NegotiateProtocolVersion is relayed.
    let mut s = raw::connect(&p.socket);
    raw::send(
        &mut s,
        &raw::startup(
            &[
                ("user", "app_clear"),
                ("database", "shop"),
                ("_pq_.sealcast_test", "1"),
            ],
            196_610,
        ),
    );
    let (t, body) = raw::read(&mut s).unwrap();
    assert_eq!(t, b'v', "{}", String::from_utf8_lossy(&body));
    let (t, _) = raw::read(&mut s).unwrap();
    assert_eq!(t, b'R');
    drop(s);
    let recs = p.wait_sealed(4);
    verify_all(&p, &recs);
    let all: Vec<Vec<Value>> = recs.iter().map(|r| d_events(r)).collect();
    let gss = all
        .iter()
        .find(|e| {
            kinds(e, "db.stmt")
                .iter()
                .any(|s| s["sql"] == "SELECT 'after gss'")
        })
        .expect("gss session");
    assert_eq!(kinds(gss, "db.open")[0]["gss_requested"], true);
    assert_eq!(kinds(gss, "db.auth")[0]["method"], "password");
    assert!(all.iter().any(|e| kinds(e, "db.proto_error")
        .iter()
        .any(|x| x["detail"].as_str().unwrap_or("").contains("direct TLS"))));
    let repl = all
        .iter()
        .find(|e| {
            kinds(e, "db.open")
                .iter()
                .any(|o| o["startup"]["replication"] == "database")
        })
        .expect("replication attempt");
    assert_eq!(kinds(repl, "db.auth")[0]["err"]["sqlstate"], "28000");
    assert!(all.iter().any(|e| kinds(e, "db.open")
        .iter()
        .any(|o| o["startup"]["protocol"] == "3.2")));
    p.stop();
}

#[test]
fn sealcast_queries_lists_verified_statements_and_marks_the_rest() {
    if !require(
        "sealcast_queries_lists_verified_statements_and_marks_the_rest",
        false,
    ) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let out = psql(
        &p,
        "app_scram",
        "scram-pw",
        &["-c", "SELECT 1; SELECT 1/0;"],
    );
    assert!(!out.status.success());
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let q = |file: &Path| {
        Command::new(sealcast())
            .args(["queries", "--json", "--trusted"])
            .arg(&p.trust)
            .arg(file)
            .output()
            .unwrap()
    };
    let out = q(&recs[0]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (
            rows[0]["status"].as_str(),
            rows[0]["rows"].as_u64(),
            rows[0]["verified"].as_bool()
        ),
        (Some("ok"), Some(1), Some(true))
    );
    assert!(rows.iter().all(|r| r["coverage"] == "verified"), "{rows:?}");
    assert_eq!(
        (
            rows[1]["status"].as_str(),
            rows[1]["sqlstate"].as_str(),
            rows[1]["i"].as_u64()
        ),
        (Some("error"), Some("22012"), Some(1))
    );
    assert_eq!(
        (
            rows[0]["db_user"].as_str(),
            rows[0]["db"].as_str(),
            rows[0]["sql"].as_str()
        ),
        (
            Some("app_scram"),
            Some("shop"),
            Some("SELECT 1; SELECT 1/0;")
        )
    );
    // Without its final checkpoint (a crash tail) nothing after checkpoint 0 is verified:
    // the rows are still listed, marked, and the exit code is not 0.
    let data = std::fs::read(&recs[0]).unwrap();
    let last = sealcast_format::scan(&data)
        .map(|f| f.unwrap())
        .last()
        .unwrap();
    assert_eq!(last.kind, sealcast_format::FrameKind::Checkpoint);
    let cut = p.dir.path().join("cut.cast.zst");
    std::fs::write(&cut, &data[..last.offset as usize]).unwrap();
    let out = q(&cut);
    assert_eq!(out.status.code(), Some(2));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["verified"] == false));
    assert!(rows.iter().all(|r| r["coverage"] == "unsealed"), "{rows:?}");
    let human = Command::new(sealcast())
        .args(["queries", "--trusted"])
        .arg(&p.trust)
        .arg(&cut)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&human.stdout)
        .lines()
        .skip(1)
        .all(|l| l.starts_with("UNSEALED ")));
    p.stop();
}

#[test]
fn channel_binding_latin1_long_statements_and_upstreams_that_refuse_tls() {
    if !require(
        "channel_binding_latin1_long_statements_and_upstreams_that_refuse_tls",
        false,
    ) {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let pg = Postgres::shared();
    let p = proxy(pg, true, "sql_max = 64\n");
    // channel_binding=require cannot work through a proxy that terminates TLS: refused.
    let out = Command::new("psql")
        .args(["-X", "-w", "-h"])
        .arg(p.sock_dir())
        .args([
            "-p",
            "5432",
            "-U",
            "app_scram",
            "-d",
            "shop",
            "-c",
            "SELECT 1",
        ])
        .env("PGPASSWORD", "scram-pw")
        .env("PGCHANNELBINDING", "require")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("channel binding"),
        "{out:?}"
    );
    // A LATIN1 client: the statement bytes are not UTF-8.
    let out = Command::new("psql")
        .args(["-X", "-h"])
        .arg(p.sock_dir())
        .args(["-p", "5432", "-U", "app_scram", "-d", "shop", "-c"])
        .arg(std::ffi::OsStr::from_bytes(b"SELECT 'caf\xe9'"))
        .env("PGPASSWORD", "scram-pw")
        .env("PGCLIENTENCODING", "LATIN1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let long = format!("SELECT '{}'", "y".repeat(200));
    assert!(psql(&p, "app_scram", "scram-pw", &["-c", &long])
        .status
        .success());
    let recs = p.wait_sealed(3);
    verify_all(&p, &recs);
    let all: Vec<Vec<Value>> = recs.iter().map(|r| d_events(r)).collect();
    let cb = all
        .iter()
        .find(|e| kinds(e, "db.stmt").is_empty())
        .expect("the channel-binding attempt");
    assert_eq!(kinds(cb, "db.auth")[0]["ok"], false);
    let stmts: Vec<&Value> = all.iter().flat_map(|e| kinds(e, "db.stmt")).collect();
    let latin = stmts
        .iter()
        .find(|s| s["sql_b64"].is_string())
        .expect("a sql_b64 statement");
    assert_eq!(latin["sql_b64"], "U0VMRUNUICdjYWbpJw==");
    let cut = stmts
        .iter()
        .find(|s| s["trunc"] == true)
        .expect("a cut statement");
    assert_eq!(cut["sql_len"].as_u64(), Some(long.len() as u64));
    assert_eq!(cut["sql"].as_str().unwrap().len(), 64);
    assert_eq!(cut["sql_sha256"], sha256_hex(long.as_bytes()));
    p.stop();

    // An upstream that answers 'N' to SSLRequest, and one that sends bytes after 'S'
    // (buffer stuffing): both refused, never a plaintext fallback.
    for answer in [&b"N"[..], b"Sxxxxxxxxxxxxxxx"] {
        let fake = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = fake.local_addr().unwrap().port();
        let answer = answer.to_vec();
        let t = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut s, _) = fake.accept().unwrap();
            let mut req = [0u8; 8];
            s.read_exact(&mut req).unwrap();
            assert_eq!(&req[4..], &80_877_103u32.to_be_bytes());
            s.write_all(&answer).unwrap();
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest);
            rest
        });
        let t_body = format!(
            "protocol = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\nca_file = \"{}\"\n",
            pg.pki.ca.display()
        );
        let p = DbProxy::start(&sealcast(), &t_body, ".s.PGSQL.5432", &[]);
        let out = psql(&p, "app_scram", "scram-pw", &["-w", "-c", "SELECT 'never'"]);
        assert!(!out.status.success());
        let sent_after = t.join().unwrap();
        assert!(
            !common::contains(&sent_after, b"app_scram"),
            "the startup message went out in plaintext"
        );
        let recs = p.wait_sealed(1);
        verify_all(&p, &recs);
        let e = d_events(&recs[0]);
        let err = kinds(&e, "db.open")[0]["upstream"]["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(err.contains("refused TLS") || err.contains("TLS"), "{err}");
        p.stop();
    }
}

#[test]
fn a_client_killed_mid_statement_leaves_it_aborted() {
    if !require("a_client_killed_mid_statement_leaves_it_aborted", false) {
        return;
    }
    let pg = Postgres::shared();
    let p = proxy(pg, true, "");
    let mut child = Command::new("psql")
        .args(["-X", "-h"])
        .arg(p.sock_dir())
        .args([
            "-p",
            "5432",
            "-U",
            "app_scram",
            "-d",
            "shop",
            "-c",
            "SELECT pg_sleep(3) AS killed_client",
        ])
        .env("PGPASSWORD", "scram-pw")
        .spawn()
        .unwrap();
    db::harness::wait_for("the statement", std::time::Duration::from_secs(20), || {
        pg.log_text()
            .contains("SELECT pg_sleep(3) AS killed_client")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let q = kinds(&e, "db.stmt")[0]["q"].as_u64().unwrap();
    assert_eq!(results_of(&e, q)[0]["status"], "aborted");
    assert_eq!(kinds(&e, "db.close")[0]["reason"], "client_eof");
    p.stop();
}

/// The proxy as a library, writing into a recording it shares with a PTY-like writer:
/// two client connections (c = 1, 2) and `o` events interleave in one verified file.
#[test]
fn one_recording_shared_by_the_proxy_and_a_terminal_session() {
    if !require(
        "one_recording_shared_by_the_proxy_and_a_terminal_session",
        false,
    ) {
        return;
    }
    use sealcast_dbproxy::relay::{self, Opened, Proxy};
    use sealcast_dbproxy::{DbConfig, EventSink, SealedSink};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let pg = Postgres::shared();
    let env = common::TestEnv::new();
    let cfg = DbConfig::parse(
        &format!("[db.t]\n{}", target("postgres", pg.port, &pg.pki, true, "")),
        Path::new("inline"),
    )
    .unwrap();
    let proxy = Arc::new(Proxy::new("t", cfg.db["t"].clone(), 0).unwrap());
    let key =
        sealcast_signer::SigningKey::from_file_bytes(&std::fs::read(&env.key).unwrap()).unwrap();
    let meta = sealcast_format::SealMeta::new(
        "0123456789abcdef0123456789abcdef",
        // The host id the environment's trust file binds the key to (SPEC §6).
        sealcast_recorder::sys::default_host_id(),
        "root",
        1,
        "test",
        key.id().to_string(),
    );
    let w = sealcast_recorder::SealedWriter::new(
        Vec::new(),
        key,
        &sealcast_format::Header::sealed(meta),
        sealcast_recorder::SystemClock::new(),
        sealcast_recorder::CheckpointPolicy::default(),
    )
    .unwrap();
    let sink = Arc::new(SealedSink::new(w));
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join(".s.PGSQL.5432");
    let next_c = Arc::new(AtomicU64::new(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(async { tokio::net::UnixListener::bind(&sock) })
        .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let server = {
        let (sink, proxy, next_c) = (sink.clone(), proxy.clone(), next_c.clone());
        rt.spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..2 {
                let (s, _) = listener.accept().await.unwrap();
                let (sink, next_c) = (sink.clone(), next_c.clone());
                let open: relay::Opener = Box::new(move || {
                    Ok(Opened {
                        sink: sink as Arc<dyn EventSink>,
                        c: next_c.fetch_add(1, Ordering::SeqCst),
                        session_id: "0123456789abcdef0123456789abcdef".into(),
                    })
                });
                tasks.push(tokio::spawn(relay::handle(
                    proxy.clone(),
                    s,
                    open,
                    rx.clone(),
                )));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    sink.with_writer(|w| w.output(b"$ psql\r\n")).unwrap();
    for n in 1..=2 {
        let out = Command::new("psql")
            .args(["-X", "-h"])
            .arg(sock_dir.path())
            .args([
                "-p",
                "5432",
                "-U",
                "app_scram",
                "-d",
                "shop",
                "-c",
                &format!("SELECT {n} AS shared"),
            ])
            .env("PGPASSWORD", "scram-pw")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        sink.with_writer(|w| w.output(format!("connection {n} done\r\n").as_bytes()))
            .unwrap();
    }
    rt.block_on(server).unwrap();
    let _ = tx.send(true);
    let (file, note) = sink.finish().unwrap();
    let path = env.path("shared.cast.zst");
    std::fs::write(&path, &file).unwrap();
    std::fs::write(common::receipt_path(&path), &note).unwrap();
    let report = common::verify_file(&path, &env.trust());
    assert_eq!(
        report.status,
        sealcast_reader::Status::Ok,
        "{}",
        report.reason
    );
    let evs = common::events(&path);
    let codes: String = evs
        .iter()
        .map(|e| e.kind.code())
        .collect::<Vec<_>>()
        .join("");
    assert!(
        codes.starts_with('o') && codes.contains("do") && codes.contains("od"),
        "{codes}"
    );
    let d: Vec<Value> = evs
        .iter()
        .filter(|e| e.kind == EventKind::Database)
        .map(|e| serde_json::from_slice(&e.bytes).unwrap())
        .collect();
    let stmts: Vec<(u64, &str)> = kinds(&d, "db.stmt")
        .iter()
        .map(|s| (s["c"].as_u64().unwrap(), s["sql"].as_str().unwrap()))
        .collect();
    assert_eq!(
        stmts,
        [(1, "SELECT 1 AS shared"), (2, "SELECT 2 AS shared")]
    );
}
