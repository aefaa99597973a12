//! The database proxy against a real MariaDB 10.11 (tests/db/harness.rs), driven by the
//! `mariadb` client and mysql_async. Every recording made here verifies OK.

mod common;
mod db;

use std::process::{Command, Output};

use db::harness::{d_events, kinds, require, target, verify_all, DbProxy, Mariadb};
use serde_json::Value;

fn proxy(m: &Mariadb, tls: bool, extra: &str) -> DbProxy {
    DbProxy::start(
        &common::bin(),
        &target("mysql", m.port, &m.pki, tls, extra),
        "mysqld.sock",
        &[],
    )
}

fn mariadb(p: &DbProxy, user: &str, password: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new("mariadb");
    c.arg("--no-defaults")
        .arg(format!("--socket={}", p.socket.display()))
        .arg(format!("-u{user}"));
    if let Some(pw) = password {
        c.arg(format!("-p{pw}"));
    }
    c.args(args).output().expect("run mariadb")
}

fn results_of(evs: &[Value], q: u64) -> Vec<&Value> {
    evs.iter()
        .filter(|e| e["k"] == "db.result" && e["q"] == q)
        .collect()
}

fn stmt_result<'a>(e: &'a [Value], sql: &str) -> Vec<&'a Value> {
    let s = kinds(e, "db.stmt")
        .into_iter()
        .find(|s| s["sql"] == sql)
        .unwrap_or_else(|| panic!("no statement {sql:?}"));
    results_of(e, s["q"].as_u64().unwrap())
}

#[test]
fn mariadb_client_statements_errors_warnings_and_multi_results() {
    if !require(
        "mariadb_client_statements_errors_warnings_and_multi_results",
        true,
    ) {
        return;
    }
    let m = Mariadb::shared();
    db::harness::run(
        Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!("--socket={}", m.socket.display()))
            .args(["-uroot", "--delimiter=//", "-e", "DROP PROCEDURE IF EXISTS shop.two// CREATE PROCEDURE shop.two() BEGIN SELECT 1 AS one; SELECT 2 AS two; END//"]),
    );
    let p = proxy(m, true, "");
    let out = mariadb(&p, "app", Some("app-pw"), &["shop", "-e", "DELETE FROM t; INSERT INTO t VALUES (1,'x'),(2,'y') ON DUPLICATE KEY UPDATE b=VALUES(b); SELECT 1/0; CALL two(); SELECT nosuchcol FROM t"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1054"),
        "{out:?}"
    );
    let mut child = Command::new("mariadb")
        .arg("--no-defaults")
        .arg(format!("--socket={}", p.socket.display()))
        .args(["-uapp", "-papp-pw", "shop"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        w.write_all(b"USE mysql;\nSELECT COUNT(*) FROM shop.t;\nCREATE USER IF NOT EXISTS 'x'@'%' IDENTIFIED BY 'Very-Secret-2';\n").unwrap();
    }
    assert!(child.wait_with_output().unwrap().status.success());
    let recs = p.wait_sealed(2);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let open = kinds(&e, "db.open")[0];
    assert!(
        open["upstream"]["tls"]["cert_sha256"]
            .as_str()
            .unwrap()
            .len()
            == 64,
        "{open}"
    );
    assert!(open["server"]["version"]
        .as_str()
        .unwrap()
        .contains("MariaDB"));
    let a = kinds(&e, "db.auth")[0];
    assert_eq!(
        (a["method"].as_str(), a["ok"].as_bool()),
        (Some("mysql_native_password"), Some(true))
    );
    let ins = stmt_result(
        &e,
        "INSERT INTO t VALUES (1,'x'),(2,'y') ON DUPLICATE KEY UPDATE b=VALUES(b)",
    );
    assert_eq!(
        (ins[0]["status"].as_str(), ins[0]["rows"].as_u64()),
        (Some("ok"), Some(2))
    );
    // SELECT 1/0 is a NULL row with a warning, not a LOCAL INFILE request.
    let div = stmt_result(&e, "SELECT 1/0");
    assert_eq!(
        (div[0]["rows_out"].as_u64(), div[0]["warnings"].as_u64()),
        (Some(1), Some(1))
    );
    assert!(kinds(&e, "db.copy").is_empty());
    let call = stmt_result(&e, "CALL two()");
    let r: Vec<(u64, Option<&str>)> = call
        .iter()
        .map(|r| (r["i"].as_u64().unwrap(), r["cols"][0].as_str()))
        .collect();
    assert_eq!(r, [(0, Some("one")), (1, Some("two")), (2, None)]);
    let bad = stmt_result(&e, "SELECT nosuchcol FROM t");
    assert_eq!(
        (
            bad[0]["status"].as_str(),
            bad[0]["err"]["sqlstate"].as_str(),
            bad[0]["err"]["code"].as_u64()
        ),
        (Some("error"), Some("42S22"), Some(1054))
    );
    let e = d_events(&recs[1]);
    let st = kinds(&e, "db.stmt");
    assert!(st
        .iter()
        .any(|s| s["via"] == "mysql_init_db" && s["sql"] == "USE `mysql`"));
    let cnt = st
        .iter()
        .find(|s| s["sql"] == "SELECT COUNT(*) FROM shop.t")
        .unwrap();
    assert_eq!(cnt["db"], "mysql");
    let cu = st
        .iter()
        .find(|s| s["sql"].as_str().unwrap_or("").starts_with("CREATE USER"))
        .unwrap();
    assert_eq!(
        cu["sql"],
        "CREATE USER IF NOT EXISTS 'x'@'%' IDENTIFIED BY '***'"
    );
    for r in &recs {
        let raw = Command::new("zstd")
            .args(["-dc", "-q"])
            .arg(r)
            .output()
            .unwrap()
            .stdout;
        assert!(!common::contains(&raw, b"Very-Secret-2") && !common::contains(&raw, b"app-pw"));
    }
    p.stop();
}

#[test]
fn mysql_async_prepared_statements_multi_statements_and_change_user() {
    if !require(
        "mysql_async_prepared_statements_multi_statements_and_change_user",
        true,
    ) {
        return;
    }
    use mysql_async::prelude::*;
    let m = Mariadb::shared();
    let p = proxy(m, true, "");
    let sock = p.socket.clone();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = mysql_async::OptsBuilder::default()
            .socket(Some(sock.to_str().unwrap()))
            .user(Some("app"))
            .pass(Some("app-pw"))
            .db_name(Some("shop"))
            .prefer_socket(true);
        let mut conn = mysql_async::Conn::new(opts).await.unwrap();
        let st = conn.prep("SELECT ? + 1, ?, ? IS NULL").await.unwrap();
        let row: (i64, String, i64) = conn
            .exec_first(&st, (41i64, "txt", None::<i64>))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row, (42, "txt".to_string(), 1));
        let row: (i64, String, i64) = conn
            .exec_first(&st, (1i64, "again", 5i64))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.0, 2);
        let mut res = conn.query_iter("SELECT 1; SELECT 2, 3").await.unwrap();
        let a: Vec<i64> = res.collect().await.unwrap();
        let b: Vec<(i64, i64)> = res.collect().await.unwrap();
        assert_eq!((a, b), (vec![1], vec![(2, 3)]));
        drop(res);
        conn.close(st).await.unwrap();
        let r = conn
            .change_user(mysql_async::ChangeUserOpts::default())
            .await;
        assert!(r.is_err(), "COM_CHANGE_USER must be refused");
    });
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let ex: Vec<&Value> = kinds(&e, "db.stmt")
        .into_iter()
        .filter(|s| s["via"] == "mysql_execute")
        .collect();
    assert_eq!(ex.len(), 2);
    assert_eq!(ex[0]["sql"], "SELECT ? + 1, ?, ? IS NULL");
    assert_eq!(
        ex[0]["params"],
        serde_json::json!([{"t":"LONGLONG","v":"41"},{"t":"VAR_STRING","v":"txt"},{"t":"null"}])
    );
    assert_eq!(
        ex[1]["params"][2],
        serde_json::json!({"t":"LONGLONG","v":"5"})
    );
    assert_eq!(kinds(&e, "db.prepare")[0]["param_count"], 3);
    let multi = stmt_result(&e, "SELECT 1; SELECT 2, 3");
    assert_eq!(
        multi
            .iter()
            .map(|r| r["i"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(multi[1]["cols"], serde_json::json!(["2", "3"]));
    let au: Vec<&Value> = kinds(&e, "db.auth")
        .into_iter()
        .filter(|a| a["method"] == "change_user")
        .collect();
    assert_eq!(au.len(), 1);
    assert_eq!(kinds(&e, "db.close")[0]["reason"], "refused");
    p.stop();
}

#[test]
fn auth_matrix_tls_on_and_off_wrong_password_and_injected() {
    if !require(
        "auth_matrix_tls_on_and_off_wrong_password_and_injected",
        true,
    ) {
        return;
    }
    let m = Mariadb::shared();
    for tls in [true, false] {
        let p = proxy(m, tls, "");
        let out = mariadb(
            &p,
            "app",
            Some("app-pw"),
            &["-N", "-e", "SELECT CURRENT_USER()"],
        );
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "app@127.0.0.1");
        let out = mariadb(&p, "app", Some("wrong"), &["-e", "SELECT 1"]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("1045"),
            "{out:?}"
        );
        let recs = p.wait_sealed(2);
        verify_all(&p, &recs);
        let mut oks = Vec::new();
        for r in &recs {
            let e = d_events(r);
            assert_eq!(kinds(&e, "db.open")[0]["upstream"]["tls"].is_object(), tls);
            let a = kinds(&e, "db.auth")[0];
            oks.push((a["ok"].as_bool().unwrap(), a["err"]["code"].as_u64()));
        }
        oks.sort();
        assert_eq!(oks, [(false, Some(1045)), (true, None)]);
        p.stop();
    }
    let dir = tempfile::tempdir().unwrap();
    let cred = dir.path().join("cred.toml");
    std::fs::write(
        &cred,
        "user = \"app\"\npassword = \"app-pw\"\ndatabase = \"shop\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cred, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let p = proxy(
        m,
        true,
        &format!(
            "credentials = \"injected\"\ncredentials_file = \"{}\"\nallowed_users = [\"root\"]\n",
            cred.display()
        ),
    );
    let out = mariadb(
        &p,
        "contractor",
        None,
        &["-N", "-e", "SELECT CURRENT_USER(), DATABASE()"],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "app@127.0.0.1\tshop"
    );
    let recs = p.wait_sealed(1);
    verify_all(&p, &recs);
    let e = d_events(&recs[0]);
    let a = kinds(&e, "db.auth")[0];
    assert_eq!(
        (a["ok"].as_bool(), a["db_user"].as_str()),
        (Some(true), Some("app"))
    );
    assert_eq!(kinds(&e, "db.open")[0]["startup"]["user"], "contractor");
    p.stop();
}

#[test]
fn ctrl_c_kill_query_on_a_second_connection() {
    if !require("ctrl_c_kill_query_on_a_second_connection", true) {
        return;
    }
    let m = Mariadb::shared();
    let p = proxy(m, true, "");
    let done = p.dir.path().join("done");
    let name = "sealcast-db-mariadb-cancel";
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", name])
        .output();
    db::harness::run(Command::new("tmux").args([
        "new-session",
        "-d",
        "-s",
        name,
        &format!(
            "mariadb --no-defaults --socket='{}' -uapp -papp-pw shop; touch '{}'",
            p.socket.display(),
            done.display()
        ),
    ]));
    struct Kill(&'static str);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["kill-session", "-t", self.0])
                .output();
        }
    }
    let _k = Kill(name);
    db::harness::wait_for("the prompt", std::time::Duration::from_secs(20), || {
        String::from_utf8_lossy(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", name])
                .output()
                .unwrap()
                .stdout,
        )
        .contains("[shop]>")
    });
    db::harness::run(Command::new("tmux").args([
        "send-keys",
        "-t",
        name,
        "-l",
        "SELECT SLEEP(30) AS cancel_me \\g",
    ]));
    db::harness::run(Command::new("tmux").args(["send-keys", "-t", name, "Enter"]));
    let pane = || {
        String::from_utf8_lossy(
            &Command::new("tmux")
                .args(["capture-pane", "-p", "-t", name])
                .output()
                .unwrap()
                .stdout,
        )
        .into_owned()
    };
    let t0 = std::time::Instant::now();
    while !m.log_text().contains("SELECT SLEEP(30) AS cancel_me") {
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(20),
            "SLEEP never reached the server; pane:\n{}\nlog:\n{}",
            pane(),
            m.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    db::harness::run(Command::new("tmux").args(["send-keys", "-t", name, "C-c"]));
    db::harness::wait_for(
        "the query to be interrupted",
        std::time::Duration::from_secs(20),
        || {
            String::from_utf8_lossy(
                &Command::new("tmux")
                    .args(["capture-pane", "-p", "-t", name])
                    .output()
                    .unwrap()
                    .stdout,
            )
            .contains("interrupted")
        },
    );
    db::harness::run(Command::new("tmux").args(["send-keys", "-t", name, "-l", "exit"]));
    db::harness::run(Command::new("tmux").args(["send-keys", "-t", name, "Enter"]));
    db::harness::wait_for("mariadb to end", std::time::Duration::from_secs(20), || {
        done.exists()
    });
    let recs = p.wait_sealed(2);
    verify_all(&p, &recs);
    let all: Vec<Vec<Value>> = recs.iter().map(|r| d_events(r)).collect();
    let main = all
        .iter()
        .find(|e| {
            kinds(e, "db.stmt")
                .iter()
                .any(|s| s["sql"] == "SELECT SLEEP(30) AS cancel_me")
        })
        .unwrap();
    let r = stmt_result(main, "SELECT SLEEP(30) AS cancel_me");
    assert_eq!(
        (r[0]["status"].as_str(), r[0]["err"]["code"].as_u64()),
        (Some("cancelled"), Some(1317)),
        "{main:#?}"
    );
    let id = kinds(main, "db.open")[0]["server"]["connection_id"]
        .as_u64()
        .unwrap();
    assert!(
        all.iter().any(|e| kinds(e, "db.stmt")
            .iter()
            .any(|s| s["sql"] == format!("KILL QUERY {id}"))),
        "the KILL QUERY connection is recorded"
    );
    p.stop();
}

#[test]
fn local_infile_forbidden_by_default_and_recorded_when_allowed() {
    if !require(
        "local_infile_forbidden_by_default_and_recorded_when_allowed",
        true,
    ) {
        return;
    }
    let m = Mariadb::shared();
    m.admin("CREATE TABLE IF NOT EXISTS shop.inf (a int, b varchar(10)); DELETE FROM shop.inf");
    let data = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(data.path(), "1\tone\n2\ttwo\n").unwrap();
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE inf",
        data.path().display()
    );
    for allow in [false, true] {
        let p = proxy(
            m,
            true,
            if allow {
                "allow_local_infile = true\n"
            } else {
                ""
            },
        );
        let out = mariadb(
            &p,
            "app",
            Some("app-pw"),
            &["--local-infile=1", "shop", "-e", &load],
        );
        assert_eq!(out.status.success(), allow, "{out:?}");
        let recs = p.wait_sealed(1);
        verify_all(&p, &recs);
        let e = d_events(&recs[0]);
        let r = stmt_result(&e, &load);
        if allow {
            let c = kinds(&e, "db.copy")[0];
            assert_eq!(
                (c["format"].as_str(), c["file"].as_str()),
                (Some("local_infile"), data.path().to_str())
            );
            assert_eq!(
                (r[0]["status"].as_str(), r[0]["rows"].as_u64()),
                (Some("ok"), Some(2)),
                "{e:#?}"
            );
        } else {
            assert!(kinds(&e, "db.copy").is_empty());
            assert_eq!(r[0]["status"], "error");
        }
        p.stop();
    }
    assert_eq!(m.admin("SELECT COUNT(*) FROM shop.inf").trim(), "2");
}

#[test]
fn a_failing_recording_refuses_the_command_before_the_server_sees_it() {
    if !require(
        "a_failing_recording_refuses_the_command_before_the_server_sees_it",
        true,
    ) {
        return;
    }
    use mysql_async::prelude::*;
    let m = Mariadb::shared();
    let p = proxy(m, true, "");
    let fs = db::harness::Tmpfs::mount(&p.spool, "256k");
    let (sock, spool) = (p.socket.clone(), p.spool.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        let opts = mysql_async::OptsBuilder::default()
            .socket(Some(sock.to_str().unwrap()))
            .user(Some("app"))
            .pass(Some("app-pw"))
            .db_name(Some("shop"))
            .prefer_socket(true);
        let mut conn = mysql_async::Conn::new(opts).await.unwrap();
        conn.query_drop("SELECT 'myprobe-0'").await.unwrap();
        let mut filler = std::fs::File::create(spool.join("filler")).unwrap();
        while std::io::Write::write_all(&mut filler, &[0u8; 4096]).is_ok() {}
        // 32 KiB of incompressible text: the statement event needs new pages of the full disk.
        let r = conn
            .query_drop(format!(
                "SELECT 'myprobe-1', '{}'",
                db::harness::noise(1, 32 * 1024)
            ))
            .await;
        format!("{:?}", r.expect_err("the command must be refused"))
    });
    assert!(err.contains("recording failed"), "{err}");
    let log = m.log_text();
    assert!(log.contains("SELECT 'myprobe-0'"));
    assert!(
        !log.contains("myprobe-1"),
        "the refused command reached the server"
    );
    // Unmount first, so the proxy's temp dir can be removed.
    drop(fs);
    p.stop();
}
