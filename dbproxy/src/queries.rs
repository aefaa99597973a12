//! `sealcast queries`: one row per executed statement, built from a recording's `d` events
//! (SPEC §11). Pure: the caller reads the file with a verifying
//! [`sealcast_reader::Reader`] and hands over each `d` event with its time and its
//! [`Coverage`], what verification says of it. A row is verified only when verified
//! checkpoints cover the events it comes from; otherwise it carries their worst coverage
//! (unsealed, failed, unchecked) and is shown as such.

use std::collections::HashMap;

use sealcast_reader::Coverage;
use serde::Serialize;
use serde_json::Value;

/// One statement execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Seconds since the session started, when the statement was recorded.
    pub t: f64,
    /// Connection number.
    pub c: u64,
    /// Execution id within the connection.
    pub q: u64,
    /// Statement index within the execution (multi-statement text).
    pub i: u64,
    /// Database user (the injected one when credentials were injected).
    pub db_user: Option<String>,
    /// Database.
    pub db: Option<String>,
    /// Duration in microseconds (from forwarding to completion).
    pub dur_us: Option<u64>,
    /// `ok`, `error`, `empty`, `suspended`, `skipped`, `cancelled`, `aborted`, or
    /// `no_result` when the recording holds no outcome.
    pub status: String,
    /// SQLSTATE of an error.
    pub sqlstate: Option<String>,
    /// Rows affected or returned (from the completion tag / OK packet).
    pub rows: Option<u64>,
    /// Rows relayed to the client.
    pub rows_out: Option<u64>,
    /// Statement text (or `fastpath <oid>`, `<unknown statement>`).
    pub sql: String,
    /// What verification says of the statement's event and its outcome's together
    /// ([`Coverage::and`]): `Verified` only when verified checkpoints cover both. JSON: its
    /// name (`verified`, `unsealed`, `failed`, `unchecked`).
    pub coverage: Coverage,
    /// `coverage.is_verified()`: true only when the statement and its outcome are covered by
    /// a verified checkpoint.
    pub verified: bool,
}

impl Row {
    fn set_coverage(&mut self, c: Coverage) {
        self.coverage = c;
        self.verified = c.is_verified();
    }
}

#[derive(Debug, Default, Clone)]
struct ConnInfo {
    user: Option<String>,
    db: Option<String>,
}

/// Collects rows from `d` events in file order.
#[derive(Debug, Default)]
pub struct Table {
    conns: HashMap<u64, ConnInfo>,
    /// Row of each statement `(c, q)`, and the coverage of its `db.stmt` event.
    stmts: HashMap<(u64, u64), (usize, Coverage)>,
    rows: Vec<Row>,
    results_seen: HashMap<(u64, u64), u64>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

impl Table {
    /// An empty table.
    pub fn new() -> Table {
        Table::default()
    }

    /// Add one `d` event: `data` is its JSON text, `time_us` its time in the session,
    /// `coverage` what verification says of it (`ReadEvent::coverage`). Unparseable events
    /// are ignored.
    pub fn add(&mut self, time_us: u64, coverage: Coverage, data: &str) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let c = v.get("c").and_then(Value::as_u64).unwrap_or(0);
        match v.get("k").and_then(Value::as_str).unwrap_or("") {
            "db.open" => {
                let st = v.get("startup").cloned().unwrap_or(Value::Null);
                let info = self.conns.entry(c).or_default();
                info.user = s(&st, "user");
                info.db = s(&st, "database").or_else(|| info.user.clone());
            }
            "db.auth" => {
                if let Some(u) = s(&v, "db_user") {
                    self.conns.entry(c).or_default().user = Some(u);
                }
            }
            "db.stmt" => {
                let q = v.get("q").and_then(Value::as_u64).unwrap_or(0);
                if let Some(d) = s(&v, "db") {
                    self.conns.entry(c).or_default().db = Some(d);
                }
                let info = self.conns.get(&c).cloned().unwrap_or_default();
                let sql = s(&v, "sql")
                    .or_else(|| s(&v, "sql_b64").map(|b| format!("<base64 {b}>")))
                    .or_else(|| {
                        v.get("fn_oid")
                            .and_then(Value::as_u64)
                            .map(|o| format!("<fastpath function {o}>"))
                    })
                    .unwrap_or_else(|| "<unknown statement>".into());
                self.stmts.insert((c, q), (self.rows.len(), coverage));
                self.rows.push(Row {
                    t: time_us as f64 / 1e6,
                    c,
                    q,
                    i: 0,
                    db_user: info.user,
                    db: info.db,
                    dur_us: None,
                    status: "no_result".into(),
                    sqlstate: None,
                    rows: None,
                    rows_out: None,
                    sql,
                    coverage,
                    verified: coverage.is_verified(),
                });
            }
            "db.result" => {
                let q = v.get("q").and_then(Value::as_u64).unwrap_or(0);
                let Some(&(at, stmt_coverage)) = self.stmts.get(&(c, q)) else {
                    return;
                };
                let seen = self.results_seen.entry((c, q)).or_insert(0);
                let idx = if *seen == 0 {
                    at
                } else {
                    let r = self.rows[at].clone();
                    self.rows.push(r);
                    self.rows.len() - 1
                };
                *seen += 1;
                let r = &mut self.rows[idx];
                r.i = v.get("i").and_then(Value::as_u64).unwrap_or(0);
                r.status = s(&v, "status").unwrap_or_default();
                r.dur_us = v.get("dur_us").and_then(Value::as_u64);
                r.rows = v.get("rows").and_then(Value::as_u64);
                r.rows_out = v.get("rows_out").and_then(Value::as_u64);
                r.sqlstate = v.get("err").and_then(|e| s(e, "sqlstate"));
                // The statement's own coverage, not the row it was copied from: each result
                // row is as verified as its statement and that result together.
                r.set_coverage(stmt_coverage.and(coverage));
            }
            _ => {}
        }
    }

    /// The rows, in the order the statements were recorded (results of one multi-statement
    /// text after it).
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Coverage = Coverage::Verified { checkpoint: 1 };

    #[test]
    fn statement_joined_with_results() {
        let mut t = Table::new();
        t.add(0, V, r#"{"v":1,"k":"db.open","c":1,"proto":"pg","ts":"x","startup":{"user":"app","database":"shop"}}"#);
        t.add(1_500_000, V, r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"x","q":1,"via":"simple","sql":"SELECT 1; SELECT 1/0"}"#);
        t.add(1_600_000, V, r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"x","q":1,"i":0,"status":"ok","tag":"SELECT 1","rows":1,"dur_us":5}"#);
        t.add(1_700_000, Coverage::Unsealed, r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"x","q":1,"i":1,"status":"error","err":{"sqlstate":"22012"},"dur_us":6}"#);
        let r = t.rows();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].status.as_str(), r[0].rows, r[0].verified),
            ("ok", Some(1), true)
        );
        assert_eq!(r[0].db_user.as_deref(), Some("app"));
        assert_eq!(
            (r[1].i, r[1].sqlstate.as_deref(), r[1].verified),
            (1, Some("22012"), false)
        );
        assert_eq!((r[0].coverage, r[1].coverage), (V, Coverage::Unsealed));
        assert_eq!(r[1].t, 1.5);
    }

    /// A row is as verified as the worse of its statement and its outcome, each result row
    /// on its own; the JSON names the coverage.
    #[test]
    fn rows_carry_the_worse_coverage_of_statement_and_outcome() {
        let stmt = |q: u64| {
            format!(
                r#"{{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"x","q":{q},"via":"simple","sql":"S{q}"}}"#
            )
        };
        let result = |q: u64, i: u64| {
            format!(
                r#"{{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"x","q":{q},"i":{i},"status":"ok"}}"#
            )
        };
        let mut t = Table::new();
        t.add(1, Coverage::Unsealed, &stmt(1));
        t.add(2, V, &result(1, 0));
        t.add(3, V, &stmt(2));
        t.add(4, Coverage::Failed, &result(2, 0));
        t.add(5, V, &stmt(3));
        t.add(6, V, &result(3, 0));
        t.add(7, Coverage::Verified { checkpoint: 2 }, &result(3, 1));
        t.add(8, Coverage::Unchecked, &stmt(4));
        let got: Vec<(String, Coverage, bool)> = t
            .rows()
            .iter()
            .map(|r| (r.sql.clone(), r.coverage, r.verified))
            .collect();
        assert_eq!(
            got,
            [
                ("S1".into(), Coverage::Unsealed, false),
                ("S2".into(), Coverage::Failed, false),
                ("S3".into(), V, true),
                ("S3".into(), Coverage::Verified { checkpoint: 2 }, true),
                ("S4".into(), Coverage::Unchecked, false),
            ]
        );
        let json = serde_json::to_value(&t.rows()[1]).unwrap();
        assert_eq!(
            (json["coverage"].as_str(), json["verified"].as_bool()),
            (Some("failed"), Some(false))
        );
    }
}
