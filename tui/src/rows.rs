//! Side-panel rows from a recording's events, found while its frames are scanned: commands
//! (`c` events, SPEC §2.4.1), database statements (`d` events, SPEC §11), and otherwise
//! markers, resizes, idle periods and the exit status.
//!
//! The shell rows come from the `c` events alone (a `start` and its `end`). What the proc
//! source saw (`p` events) and the disagreements between the two sources are `sealcast
//! commands`' report (SPEC §2.4.5), worked out outside this crate from the [`MetaEvent`]s kept
//! here and handed back as a [`CommandsOverlay`].

use std::collections::HashMap;

use sealcast_format::{CommandEvent, EventKind};
use serde_json::Value;

use crate::model::{PanelKind, PanelRow, Verification};

/// A `c` or `p` event, for the commands report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEvent {
    /// Index of the event.
    pub event: u64,
    /// Time, µs since the session start.
    pub t_us: u64,
    /// [`EventKind::Command`] (`c`) or [`EventKind::Process`] (`p`).
    pub kind: EventKind,
    /// The event's data (a JSON object, SPEC §2.4).
    pub data: String,
    /// Verification state of the event (filled when the report is asked for).
    pub state: Verification,
}

/// What the commands report adds to the panel: per shell command `id`, where it comes from
/// and what the recorder saw of it (`shell · 2 processes`); rows of processes no claim
/// covers (source `proc`) and of disagreements, each with the verification state the report
/// gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandsOverlay {
    /// (command id, sources text).
    pub sources: Vec<(u64, String)>,
    /// Proc-source command rows and disagreement rows.
    pub rows: Vec<PanelRow>,
}

/// Lengths of the row lists, to cut them back to (a live file's cut last frame is scanned
/// again once complete).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Mark {
    other: usize,
    cmd: usize,
    meta: usize,
}

/// The rows found so far (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct Rows {
    /// Markers, resizes, idle periods, exit status.
    other: Vec<PanelRow>,
    /// Commands, statements, disagreements, exit status.
    cmd: Vec<PanelRow>,
    /// Open command `id` → row in `cmd`.
    open_cmds: HashMap<u64, usize>,
    /// (connection, execution `q`) → row in `cmd`.
    stmts: HashMap<(u64, u64), usize>,
    /// Connection → label from its `db.open`.
    conns: HashMap<u64, String>,
    meta: Vec<MetaEvent>,
    has_cmds: bool,
    overlay: bool,
    /// Rows from here on have no verification state yet.
    unstated: Mark,
    /// Rows in `cmd` before `unstated` that gained an event since they were stated.
    dirty: Vec<usize>,
}

/// A row's state: the worst of its events' (rows without events keep theirs).
fn state_row(r: &mut PanelRow, state: &impl Fn(u64) -> Verification) {
    if let Some((first, rest)) = r.events.split_first() {
        r.verification = rest.iter().fold(state(*first), |v, e| v.worst(state(*e)));
    }
}

/// SQL and command lines on one line: runs of whitespace become one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Rows {
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            other: self.other.len(),
            cmd: self.cmd.len(),
            meta: self.meta.len(),
        }
    }

    pub(crate) fn truncate(&mut self, m: Mark) {
        self.other.truncate(m.other);
        self.cmd.truncate(m.cmd);
        self.meta.truncate(m.meta);
        let n = self.cmd.len();
        self.open_cmds.retain(|_, i| *i < n);
        self.stmts.retain(|_, i| *i < n);
        self.dirty.retain(|i| *i < n);
        self.unstated = Mark {
            other: self.unstated.other.min(m.other),
            cmd: self.unstated.cmd.min(m.cmd),
            meta: 0,
        };
        self.has_cmds = self.cmd.iter().any(|r| r.kind.is_command());
    }

    /// The panel: commands and statements when the recording has any, else markers,
    /// resizes, idle periods and the exit status.
    pub(crate) fn panel(&self) -> &[PanelRow] {
        if self.has_cmds {
            &self.cmd
        } else {
            &self.other
        }
    }

    /// Every row (both lists), for the timeline.
    pub(crate) fn all(&self) -> impl Iterator<Item = &PanelRow> {
        self.other
            .iter()
            .chain(self.cmd.iter().filter(|r| r.kind != PanelKind::Exit))
    }

    pub(crate) fn meta(&self) -> &[MetaEvent] {
        &self.meta
    }

    /// A row that belongs to the "other" list (idle, marker, resize).
    pub(crate) fn push_other(&mut self, row: PanelRow) {
        self.other.push(row);
    }

    /// The exit status: in both lists.
    pub(crate) fn push_exit(&mut self, row: PanelRow) {
        self.cmd.push(row.clone());
        self.other.push(row);
    }

    fn push_cmd(&mut self, row: PanelRow) -> usize {
        self.has_cmds |= row.kind.is_command();
        self.cmd.push(row);
        self.cmd.len() - 1
    }

    /// Recompute every row's state from its events (rows without events keep theirs).
    pub(crate) fn restate(&mut self, state: impl Fn(u64) -> Verification) {
        for r in self.other.iter_mut().chain(self.cmd.iter_mut()) {
            state_row(r, &state);
        }
        self.unstated = self.mark();
        self.dirty.clear();
    }

    /// State the rows added, and the rows that gained an event, since the last call.
    pub(crate) fn restate_new(&mut self, state: impl Fn(u64) -> Verification) {
        let from = self.unstated;
        for r in self.other.iter_mut().skip(from.other) {
            state_row(r, &state);
        }
        for r in self.cmd.iter_mut().skip(from.cmd) {
            state_row(r, &state);
        }
        for i in std::mem::take(&mut self.dirty) {
            if let Some(r) = self.cmd.get_mut(i) {
                state_row(r, &state);
            }
        }
        self.unstated = self.mark();
    }

    /// A `c` event.
    pub(crate) fn command(&mut self, event: u64, t_us: u64, data: &str) {
        self.meta.push(MetaEvent {
            event,
            t_us,
            kind: EventKind::Command,
            data: data.to_string(),
            state: Verification::Pending,
        });
        // Malformed or unknown `ev`s are the report's business (it counts them).
        let Ok(Some(ev)) = CommandEvent::parse(data) else {
            return;
        };
        match ev {
            CommandEvent::Start {
                id,
                cmd,
                cwd,
                partial,
                trunc,
                late,
                ..
            } => {
                let mut sources = String::from("shell");
                for (flag, word) in [(partial, "partial"), (late, "late"), (trunc, "cut")] {
                    if flag {
                        sources.push_str(" · ");
                        sources.push_str(word);
                    }
                }
                let mut row = PanelRow::new(
                    t_us,
                    0,
                    PanelKind::Command {
                        id: Some(id),
                        cwd,
                        pipestatus: Vec::new(),
                        sources,
                    },
                    one_line(&cmd),
                );
                row.events.push(event);
                let i = self.push_cmd(row);
                self.open_cmds.insert(id, i);
            }
            CommandEvent::End {
                id,
                exit,
                pipestatus,
                duration_us,
                ..
            } => {
                let Some(i) = self.open_cmds.remove(&id) else {
                    return;
                };
                self.dirty.push(i);
                let Some(row) = self.cmd.get_mut(i) else {
                    return;
                };
                row.dur_us = duration_us;
                row.status = exit;
                row.events.push(event);
                if let PanelKind::Command { pipestatus: p, .. } = &mut row.kind {
                    *p = pipestatus;
                }
            }
            _ => {}
        }
    }

    /// A `p` event: kept for the commands report only.
    pub(crate) fn process(&mut self, event: u64, t_us: u64, data: &str) {
        self.meta.push(MetaEvent {
            event,
            t_us,
            kind: EventKind::Process,
            data: data.to_string(),
            state: Verification::Pending,
        });
    }

    /// A `d` event (SPEC §11).
    pub(crate) fn database(&mut self, event: u64, t_us: u64, data: &str) {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let kind = v["k"].as_str().unwrap_or_default();
        let c = v["c"].as_u64().unwrap_or(0);
        let err_text = |v: &Value| -> Option<String> {
            let e = v.get("err")?;
            let code = e["sqlstate"]
                .as_str()
                .map(str::to_string)
                .or_else(|| e["code"].as_u64().map(|n| n.to_string()));
            let msg = e["message"].as_str().unwrap_or_default();
            Some(match code {
                Some(c) => format!("{c} {msg}").trim_end().to_string(),
                None => msg.to_string(),
            })
        };
        let conn = |rows: &Rows| {
            Some(
                rows.conns
                    .get(&c)
                    .cloned()
                    .unwrap_or_else(|| format!("c{c}")),
            )
        };
        match kind {
            "db.open" => {
                let st = &v["startup"];
                let user = st["user"].as_str().unwrap_or("?");
                let db = st["database"].as_str().unwrap_or(user);
                let proto = v["proto"].as_str().unwrap_or("db");
                let target = v["target"].as_str().unwrap_or("?");
                self.conns
                    .insert(c, format!("c{c} {user}@{db} ({proto} {target})"));
            }
            "db.stmt" => {
                let text = if let Some(sql) = v["sql"].as_str() {
                    let mut t = one_line(sql);
                    if v["trunc"].as_bool() == Some(true) {
                        t.push('…');
                    }
                    t
                } else if v.get("sql_b64").is_some() {
                    format!(
                        "(SQL not UTF-8, {} bytes)",
                        v["sql_len"].as_u64().unwrap_or(0)
                    )
                } else if v["stmt_unknown"].as_bool() == Some(true) {
                    format!(
                        "(unknown prepared statement {})",
                        v["stmt"]
                            .as_str()
                            .map(str::to_string)
                            .or_else(|| v["stmt_id"].as_u64().map(|n| n.to_string()))
                            .unwrap_or_default()
                    )
                } else {
                    format!("({})", v["via"].as_str().unwrap_or("statement"))
                };
                let mut row = PanelRow::new(
                    t_us,
                    0,
                    PanelKind::Query {
                        connection: conn(self),
                        rows: None,
                        error: None,
                    },
                    text,
                );
                row.events.push(event);
                let i = self.push_cmd(row);
                if let Some(q) = v["q"].as_u64() {
                    self.stmts.insert((c, q), i);
                }
            }
            "db.result" => {
                let Some(q) = v["q"].as_u64() else { return };
                let Some(&i) = self.stmts.get(&(c, q)) else {
                    return;
                };
                self.dirty.push(i);
                let Some(row) = self.cmd.get_mut(i) else {
                    return;
                };
                row.events.push(event);
                row.dur_us = row.dur_us.max(v["dur_us"].as_u64().unwrap_or(0));
                let PanelKind::Query { rows, error, .. } = &mut row.kind else {
                    return;
                };
                if let Some(n) = v["rows"].as_u64() {
                    *rows = Some(n);
                }
                match v["status"].as_str().unwrap_or_default() {
                    "error" | "cancelled"
                        if error.is_none()
                            || matches!(error.as_deref(), Some("aborted" | "skipped")) =>
                    {
                        *error = Some(err_text(&v).unwrap_or_else(|| "error".into()));
                    }
                    s @ ("aborted" | "skipped") if error.is_none() => *error = Some(s.into()),
                    _ => {}
                }
            }
            "db.prepare" | "db.auth" | "db.refused" if v["ok"].as_bool() != Some(true) => {
                let text = match kind {
                    "db.prepare" => format!(
                        "PREPARE {}",
                        v["sql"].as_str().map(one_line).unwrap_or_default()
                    ),
                    "db.auth" => format!("login ({})", v["method"].as_str().unwrap_or("?")),
                    _ => "connection refused".into(),
                };
                let error = err_text(&v)
                    .or_else(|| v["reason"].as_str().map(str::to_string))
                    .or_else(|| Some("failed".into()));
                let mut row = PanelRow::new(
                    t_us,
                    v["dur_us"].as_u64().unwrap_or(0),
                    PanelKind::Query {
                        connection: conn(self),
                        rows: None,
                        error,
                    },
                    text.trim_end().to_string(),
                );
                row.events.push(event);
                self.push_cmd(row);
            }
            _ => {}
        }
    }

    /// Add the commands report's view (once; a second overlay replaces nothing).
    pub(crate) fn apply_overlay(&mut self, o: CommandsOverlay) {
        if self.overlay {
            return;
        }
        self.overlay = true;
        for (id, text) in o.sources {
            for r in &mut self.cmd {
                if let PanelKind::Command {
                    id: Some(rid),
                    sources,
                    ..
                } = &mut r.kind
                {
                    if *rid == id {
                        *sources = text.clone();
                    }
                }
            }
        }
        for row in o.rows {
            self.has_cmds |= row.kind.is_command();
            let at = self.cmd.partition_point(|r| r.t_us <= row.t_us);
            self.cmd.insert(at, row);
        }
        // Row positions moved: forget the maps of rows still waiting for events (the
        // overlay comes once the file is scanned).
        self.open_cmds.clear();
        self.stmts.clear();
        self.dirty.clear();
        self.unstated = self.mark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_collect_their_results() {
        let mut r = Rows::default();
        r.database(0, 0, r#"{"v":1,"k":"db.open","c":1,"proto":"pg","ts":"x","target":"main","startup":{"user":"alice","database":"app"}}"#);
        r.database(1, 10, r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"x","q":1,"via":"simple","sql":"SELECT 1;\n  SELECT  2","sql_len":18,"sql_sha256":"0","n_parts":2,"txn_before":"I"}"#);
        r.database(2, 20, r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"x","q":1,"i":0,"status":"ok","tag":"SELECT 1","rows":1,"rows_out":1,"bytes_out":1,"dur_us":5}"#);
        r.database(3, 30, r#"{"v":1,"k":"db.result","c":1,"proto":"pg","ts":"x","q":1,"i":1,"status":"error","rows_out":0,"bytes_out":0,"dur_us":9,"err":{"sqlstate":"42P01","severity":"ERROR","message":"relation \"t\" does not exist"}}"#);
        let p = r.panel();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].text, "SELECT 1; SELECT 2");
        assert_eq!(p[0].events, [1, 2, 3]);
        assert_eq!(p[0].dur_us, 9);
        assert!(p[0].failed());
        assert_eq!(
            p[0].kind,
            PanelKind::Query {
                connection: Some("c1 alice@app (pg main)".into()),
                rows: Some(1),
                error: Some("42P01 relation \"t\" does not exist".into()),
            }
        );
    }

    #[test]
    fn a_command_is_only_as_verified_as_its_least_verified_event() {
        let mut r = Rows::default();
        r.command(
            3,
            10,
            r#"{"ev":"start","id":1,"src":"shell","cmd":"make","cwd":"/"}"#,
        );
        r.command(
            9,
            20,
            r#"{"ev":"end","id":1,"src":"shell","exit":0,"duration_us":10}"#,
        );
        assert_eq!(r.panel()[0].events, [3, 9]);
        // The start verified, the end in an unsealed tail.
        r.restate(|e| {
            if e < 5 {
                Verification::Verified { seq: 1 }
            } else {
                Verification::Unsealed
            }
        });
        assert_eq!(r.panel()[0].verification, Verification::Unsealed);
        r.restate(|_| Verification::Verified { seq: 2 });
        assert_eq!(r.panel()[0].verification, Verification::Verified { seq: 2 });
        r.restate(|e| {
            if e == 3 {
                Verification::Failed
            } else {
                Verification::Pending
            }
        });
        assert_eq!(r.panel()[0].verification, Verification::Failed);
    }

    #[test]
    fn rows_scanned_after_the_summary_get_their_state() {
        let mut r = Rows::default();
        let v = |_: u64| Verification::Verified { seq: 1 };
        r.command(1, 10, r#"{"ev":"start","id":1,"src":"shell","cmd":"a"}"#);
        r.restate(v);
        // More frames: the end of command 1 (unsealed), a new command.
        r.command(
            5,
            20,
            r#"{"ev":"end","id":1,"src":"shell","exit":0,"duration_us":10}"#,
        );
        r.command(6, 30, r#"{"ev":"start","id":2,"src":"shell","cmd":"b"}"#);
        let s = |e: u64| {
            if e < 5 {
                Verification::Verified { seq: 1 }
            } else {
                Verification::Unsealed
            }
        };
        r.restate_new(s);
        let p = r.panel();
        assert_eq!(
            p[0].verification,
            Verification::Unsealed,
            "its end is unsealed"
        );
        assert_eq!(p[1].verification, Verification::Unsealed);
    }
}
