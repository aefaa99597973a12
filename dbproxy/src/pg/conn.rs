//! One PostgreSQL connection's query phase as events (SPEC §11): statements before they are
//! forwarded, results as they complete, COPY, parameter changes, protocol errors.
//!
//! Correlation (anchors-db §4.5): every client message that the server answers pushes what
//! it expects onto a FIFO (Parse → `1`, Bind → `2`, Describe → `t`/`T`/`n`, Execute →
//! rows and a completion, Close → `3`, Sync → `Z`, Query → results … `Z`, FunctionCall → `V`
//! `Z`); server messages pop it. An ErrorResponse in an extended batch makes the server skip
//! everything up to the next Sync: the Executes queued there are reported `skipped`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::frame::Piece;
use super::msg;
use crate::event::{self, ConnCtx, ErrInfo, Now, Obj, Param, SqlText};
use crate::sql::Dialect;

/// Most column names recorded per result.
pub const MAX_COLS: usize = 256;
/// Longest prefix kept of a streamed (over-cap) Query or Parse.
const LARGE_PREFIX_MAX: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
struct Acc {
    q: u64,
    t0: u64,
    first: Option<u64>,
    rows_out: u64,
    bytes_out: u64,
    cols: Vec<String>,
    notices: u64,
    copy: Option<CopyAcc>,
}

#[derive(Debug, Default, Clone)]
struct CopyAcc {
    dir: &'static str,
    binary: bool,
    bytes: u64,
    msgs: u64,
    fail: Option<String>,
}

#[derive(Debug)]
enum Item {
    Simple {
        i: u32,
        n_parts: u64,
        failed: bool,
        acc: Acc,
    },
    Parse {
        name: String,
        sql: Arc<SqlText>,
        oids: Vec<u32>,
        t0: u64,
    },
    Bind,
    /// `Some(name)` for a statement Describe (its ParameterDescription fills the OIDs).
    Describe(Option<String>),
    Execute {
        portal: String,
        acc: Acc,
    },
    Close,
    Sync,
    Fastpath {
        acc: Acc,
        done: bool,
    },
    /// The client's CopyDone / CopyFail: the server ignores Syncs sent between an Execute
    /// that starts COPY FROM STDIN and this (PostgreSQL docs, "COPY Operations").
    CopyEnd,
}

#[derive(Debug, Clone)]
struct Stmt {
    sql: Arc<SqlText>,
    oids: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
struct Portal {
    stmt: String,
    n_params: u64,
    params: Option<Vec<Obj>>,
    params_lost: bool,
    suspended: Option<u64>,
}

#[derive(Debug)]
struct Large {
    tag: u8,
    prefix: Vec<u8>,
    sha: Sha256,
    len: usize,
}

/// Counters for `db.close`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// `db.stmt` events.
    pub stmts: u64,
    /// Results with status `error`.
    pub errors: u64,
    /// Bytes client → server.
    pub bytes_c2s: u64,
    /// Bytes server → client.
    pub bytes_s2c: u64,
}

/// What the relay must do after a client message was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNote {
    /// `Terminate`: the client is leaving.
    Terminate,
}

/// State of one connection after authentication.
#[derive(Debug)]
pub struct Conn {
    ctx: ConnCtx,
    q: u64,
    fifo: VecDeque<Item>,
    stmts: HashMap<String, Stmt>,
    portals: HashMap<String, Portal>,
    txn: u8,
    degraded: bool,
    large_c: Option<Large>,
    copy_in: Option<CopyAcc>,
    copy_ignore_sync: bool,
    s2c_tag: Option<u8>,
    /// Counters.
    pub stats: Stats,
    /// A FATAL error the server sent outside any statement (for `db.close`).
    pub fatal: Option<ErrInfo>,
    unknown_s2c: bool,
}

fn put_params(o: &mut Obj, n: u64, params: Option<Vec<Obj>>, lost: bool) {
    o.u64("n_params", n);
    if let Some(p) = params {
        o.arr("params", p);
    }
    o.flag("params_lost", lost);
}

impl Conn {
    /// A connection numbered `ctx.c`, idle (`I`).
    pub fn new(ctx: ConnCtx) -> Conn {
        Conn {
            ctx,
            q: 0,
            fifo: VecDeque::new(),
            stmts: HashMap::new(),
            portals: HashMap::new(),
            txn: b'I',
            degraded: false,
            large_c: None,
            copy_in: None,
            copy_ignore_sync: false,
            s2c_tag: None,
            stats: Stats::default(),
            fatal: None,
            unknown_s2c: false,
        }
    }

    /// True once the server side could not be followed (results are no longer correlated).
    pub fn degraded(&self) -> bool {
        self.degraded
    }

    /// Statements forwarded whose result has not been seen: reported `aborted` by
    /// [`Conn::abort_pending`].
    pub fn pending(&self) -> usize {
        self.fifo
            .iter()
            .filter(|i| {
                matches!(
                    i,
                    Item::Simple { .. } | Item::Execute { .. } | Item::Fastpath { .. }
                )
            })
            .count()
    }

    fn ev(&self, kind: &str, now: Now) -> Obj {
        event::start(kind, self.ctx.c, self.ctx.proto, now.wall_us)
    }

    fn done(&self, mut o: Obj, out: &mut Vec<String>) {
        o.flag("degraded", self.degraded);
        out.push(o.finish());
    }

    /// A protocol error event (`db.proto_error`).
    pub fn proto_error(
        &self,
        now: Now,
        dir: &str,
        tag: Option<u8>,
        len: Option<u64>,
        detail: &str,
        out: &mut Vec<String>,
    ) {
        let mut o = self.ev("db.proto_error", now);
        o.str("dir", dir);
        if let Some(t) = tag {
            o.str("tag", &char::from(t).escape_default().to_string());
        }
        o.opt_u64("len", len).str("detail", detail);
        self.done(o, out);
    }

    /// Mark the server side unfollowable: results are no longer recorded; statements still
    /// are (the client side is parsed independently).
    pub fn degrade(&mut self, now: Now, detail: &str, out: &mut Vec<String>) {
        if !self.degraded {
            self.proto_error(now, "s2c", None, None, detail, out);
            self.degraded = true;
            self.fifo.clear();
        }
    }

    fn sql(&self, raw: &[u8]) -> SqlText {
        SqlText::new(raw, Dialect::Postgres, self.ctx.sql_max)
    }

    fn next_q(&mut self) -> u64 {
        self.q += 1;
        self.q
    }

    /// Observe one piece of the client → server stream; events that must be recorded
    /// **before** the bytes are forwarded are appended to `out`.
    pub fn client(&mut self, p: Piece<'_>, now: Now, out: &mut Vec<String>) -> Option<ClientNote> {
        match p {
            Piece::Msg { tag, body } => {
                self.stats.bytes_c2s += body.len() as u64 + 5;
                self.client_msg(tag, body, None, now, out)
            }
            Piece::Start { tag, len, kept } => {
                self.stats.bytes_c2s += len as u64 + 5;
                if kept {
                    self.large_c = Some(Large {
                        tag,
                        prefix: Vec::new(),
                        sha: Sha256::new(),
                        len,
                    });
                } else if tag == b'd' {
                    if let Some(c) = self.copy_in.as_mut() {
                        c.bytes += len as u64;
                        c.msgs += 1;
                    }
                } else if !matches!(tag, b'S' | b'H' | b'c' | b'X' | b'p' | b'd') {
                    self.proto_error(
                        now,
                        "c2s",
                        Some(tag),
                        Some(len as u64),
                        "unknown frontend message (forwarded)",
                        out,
                    );
                }
                None
            }
            Piece::Data(d) => {
                if let Some(l) = self.large_c.as_mut() {
                    l.sha.update(d);
                    let room = LARGE_PREFIX_MAX.saturating_sub(l.prefix.len());
                    l.prefix.extend_from_slice(&d[..d.len().min(room)]);
                }
                None
            }
            Piece::End { tag } => self.client_end(tag, now, out),
        }
    }

    fn client_end(&mut self, tag: u8, now: Now, out: &mut Vec<String>) -> Option<ClientNote> {
        match tag {
            b'S' => {
                if !self.copy_ignore_sync {
                    self.fifo.push_back(Item::Sync);
                }
                None
            }
            b'X' => Some(ClientNote::Terminate),
            b'c' => {
                self.copy_ignore_sync = false;
                self.fifo.push_back(Item::CopyEnd);
                None
            }
            _ => {
                let l = self.large_c.take()?;
                let full_len = l.len;
                let digest = l.sha.finalize();
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                self.client_msg(l.tag, &l.prefix, Some((full_len, hex)), now, out)
            }
        }
    }

    fn client_msg(
        &mut self,
        tag: u8,
        body: &[u8],
        large: Option<(usize, String)>,
        now: Now,
        out: &mut Vec<String>,
    ) -> Option<ClientNote> {
        match tag {
            b'Q' => {
                let text = msg::Cur::new(body).cstr().unwrap_or(body);
                let mut sql = self.sql(text);
                if let Some((len, hex)) = &large {
                    sql = sql.over_cap(*len, hex.clone());
                }
                let q = self.next_q();
                self.stmts.remove("");
                let n_parts = sql.n_parts.unwrap_or(1);
                let mut o = self.ev("db.stmt", now);
                o.u64("q", q).str("via", "simple");
                sql.put(&mut o);
                o.opt_u64("n_parts", sql.n_parts);
                o.str("txn_before", &char::from(self.txn).to_string());
                if !sql.redacted.is_empty() {
                    o.strs("redacted", &sql.redacted);
                }
                self.done(o, out);
                self.stats.stmts += 1;
                self.fifo.push_back(Item::Simple {
                    i: 0,
                    n_parts,
                    failed: false,
                    acc: Acc {
                        q,
                        t0: now.mono_us,
                        ..Acc::default()
                    },
                });
            }
            b'P' => {
                let Some((name, q, oids)) = msg::parse_parse(body).or_else(|| {
                    // A streamed Parse: the prefix holds name and (the start of) the query.
                    let mut c = msg::Cur::new(body);
                    let name = String::from_utf8_lossy(c.cstr()?).into_owned();
                    Some((name, c.rest(), Vec::new()))
                }) else {
                    self.proto_error(
                        now,
                        "c2s",
                        Some(tag),
                        Some(body.len() as u64),
                        "malformed Parse",
                        out,
                    );
                    return None;
                };
                let mut sql = self.sql(q);
                if let Some((len, hex)) = large {
                    sql = sql.over_cap(len, hex);
                }
                let sql = Arc::new(sql);
                self.stmts.insert(
                    name.clone(),
                    Stmt {
                        sql: sql.clone(),
                        oids: oids.clone(),
                    },
                );
                self.fifo.push_back(Item::Parse {
                    name,
                    sql,
                    oids,
                    t0: now.mono_us,
                });
            }
            b'B' => {
                let portal = match msg::parse_bind(body) {
                    Some(b) if large.is_none() => {
                        let oids = self
                            .stmts
                            .get(&b.stmt)
                            .map(|s| s.oids.clone())
                            .unwrap_or_default();
                        let ps: Vec<Param<'_>> = b
                            .values
                            .iter()
                            .enumerate()
                            .map(|(i, v)| match v {
                                None => Param::Null,
                                Some(v) if b.binary.get(i).copied().unwrap_or(true) => {
                                    Param::Binary(oids.get(i).copied().unwrap_or(0), v)
                                }
                                Some(v) => Param::Text(v),
                            })
                            .collect();
                        let params = event::params(self.ctx.params, &ps);
                        (
                            b.portal.clone(),
                            Portal {
                                stmt: b.stmt.clone(),
                                n_params: b.values.len() as u64,
                                params,
                                params_lost: false,
                                suspended: None,
                            },
                        )
                    }
                    _ => {
                        let mut c = msg::Cur::new(body);
                        let portal = c
                            .cstr()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .unwrap_or_default();
                        let stmt = c
                            .cstr()
                            .map(|s| String::from_utf8_lossy(s).into_owned())
                            .unwrap_or_default();
                        (
                            portal,
                            Portal {
                                stmt,
                                params_lost: true,
                                ..Portal::default()
                            },
                        )
                    }
                };
                self.portals.insert(portal.0, portal.1);
                self.fifo.push_back(Item::Bind);
            }
            b'D' => {
                let stmt = msg::parse_target(body).and_then(|(k, n)| (k == b'S').then_some(n));
                self.fifo.push_back(Item::Describe(stmt));
            }
            b'C' => {
                if let Some((k, name)) = msg::parse_target(body) {
                    if k == b'S' {
                        self.stmts.remove(&name);
                    } else {
                        self.portals.remove(&name);
                    }
                }
                self.fifo.push_back(Item::Close);
            }
            b'E' => {
                let (portal, max_rows) = msg::parse_execute(body).unwrap_or_default();
                let q = self.next_q();
                let p = self.portals.get(&portal).cloned().unwrap_or_default();
                let mut o = self.ev("db.stmt", now);
                o.u64("q", q)
                    .str("via", "extended")
                    .str("stmt", &p.stmt)
                    .str("portal", &portal);
                if max_rows > 0 {
                    o.u64("max_rows", u64::from(max_rows));
                }
                o.opt_u64("resumes", p.suspended);
                let sql = self.stmts.get(&p.stmt).map(|s| s.sql.clone());
                match &sql {
                    Some(sql) => {
                        sql.put(&mut o);
                        o.opt_u64("n_parts", sql.n_parts);
                    }
                    None => {
                        o.bool("stmt_unknown", true);
                    }
                }
                put_params(&mut o, p.n_params, p.params.clone(), p.params_lost);
                o.str("txn_before", &char::from(self.txn).to_string());
                if let Some(sql) = &sql {
                    if !sql.redacted.is_empty() {
                        o.strs("redacted", &sql.redacted);
                    }
                }
                self.done(o, out);
                self.stats.stmts += 1;
                if let Some(pp) = self.portals.get_mut(&portal) {
                    pp.suspended = None;
                }
                self.fifo.push_back(Item::Execute {
                    portal,
                    acc: Acc {
                        q,
                        t0: now.mono_us,
                        ..Acc::default()
                    },
                });
            }
            b'F' => {
                let q = self.next_q();
                let mut o = self.ev("db.stmt", now);
                o.u64("q", q).str("via", "fastpath");
                match msg::parse_function_call(body) {
                    Some((oid, binary, vals)) => {
                        o.u64("fn_oid", u64::from(oid));
                        let ps: Vec<Param<'_>> = vals
                            .iter()
                            .enumerate()
                            .map(|(i, v)| match v {
                                None => Param::Null,
                                Some(v) if binary.get(i).copied().unwrap_or(true) => {
                                    Param::Binary(0, v)
                                }
                                Some(v) => Param::Text(v),
                            })
                            .collect();
                        put_params(
                            &mut o,
                            vals.len() as u64,
                            event::params(self.ctx.params, &ps),
                            false,
                        );
                    }
                    None => {
                        put_params(&mut o, 0, None, true);
                    }
                }
                o.str("txn_before", &char::from(self.txn).to_string());
                self.done(o, out);
                self.stats.stmts += 1;
                self.fifo.push_back(Item::Fastpath {
                    acc: Acc {
                        q,
                        t0: now.mono_us,
                        ..Acc::default()
                    },
                    done: false,
                });
            }
            b'f' => {
                self.copy_ignore_sync = false;
                self.fifo.push_back(Item::CopyEnd);
                let m = msg::cstr_body(body);
                if let Some(c) = self.copy_in.as_mut() {
                    c.fail = Some(m);
                }
            }
            _ => {}
        }
        None
    }

    fn front_acc(&mut self) -> Option<&mut Acc> {
        self.fifo.iter_mut().find_map(|i| match i {
            Item::Simple { acc, .. } | Item::Execute { acc, .. } | Item::Fastpath { acc, .. } => {
                Some(acc)
            }
            _ => None,
        })
    }

    /// Observe one piece of the server → client stream; result events go to `out`.
    pub fn server(&mut self, p: Piece<'_>, now: Now, out: &mut Vec<String>) {
        match p {
            Piece::Msg { tag, body } => {
                self.stats.bytes_s2c += body.len() as u64 + 5;
                self.s2c_tag = None;
                self.server_msg(tag, body, now, out);
            }
            Piece::Start { tag, len, kept } => {
                self.stats.bytes_s2c += len as u64 + 5;
                if self.degraded {
                    return;
                }
                if let Some(acc) = self.front_acc() {
                    if acc.first.is_none() {
                        acc.first = Some(now.mono_us);
                    }
                    match tag {
                        b'D' => {
                            acc.rows_out += 1;
                            acc.bytes_out += len as u64 + 5;
                        }
                        b'd' => {
                            if let Some(c) = acc.copy.as_mut() {
                                c.bytes += len as u64;
                                c.msgs += 1;
                            }
                        }
                        _ => {}
                    }
                }
                if kept {
                    self.s2c_tag = Some(tag);
                } else if !matches!(tag, b'D' | b'd') && !self.unknown_s2c {
                    self.unknown_s2c = true;
                    self.proto_error(
                        now,
                        "s2c",
                        Some(tag),
                        Some(len as u64),
                        "unknown backend message (relayed)",
                        out,
                    );
                }
            }
            Piece::Data(_) => {}
            Piece::End { tag } => {
                if self.s2c_tag.take() == Some(tag) {
                    // A kept message over the cap: handled without its body.
                    self.server_msg(tag, &[], now, out);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &mut self,
        acc: &Acc,
        i: u32,
        status: &str,
        tag: Option<&str>,
        err: Option<&ErrInfo>,
        now: Now,
        out: &mut Vec<String>,
    ) {
        if let Some(c) = &acc.copy {
            let mut o = self.ev("db.copy", now);
            o.u64("q", acc.q)
                .u64("i", u64::from(i))
                .str("dir", c.dir)
                .str("format", if c.binary { "binary" } else { "text" })
                .u64("bytes", c.bytes)
                .u64("msgs", c.msgs)
                .opt_str("fail", c.fail.as_deref());
            self.done(o, out);
        }
        let mut o = self.ev("db.result", now);
        o.u64("q", acc.q)
            .u64("i", u64::from(i))
            .str("status", status)
            .opt_str("tag", tag);
        match tag.and_then(msg::tag_rows) {
            Some(r) => o.u64("rows", r),
            None if tag.is_some() => o.null("rows"),
            None => &mut o,
        };
        o.u64("rows_out", acc.rows_out)
            .u64("bytes_out", acc.bytes_out);
        if !acc.cols.is_empty() {
            o.strs("cols", &acc.cols);
        }
        o.u64("dur_us", now.mono_us.saturating_sub(acc.t0));
        o.opt_u64("ttfb_us", acc.first.map(|f| f.saturating_sub(acc.t0)));
        if let Some(e) = err {
            o.obj("err", e.obj());
        }
        if acc.notices > 0 {
            o.u64("notices", acc.notices);
        }
        if status == "error" || status == "cancelled" {
            self.stats.errors += 1;
        }
        self.done(o, out);
    }

    fn skipped(&mut self, q: u64, i: u32, now: Now, out: &mut Vec<String>) {
        let mut o = self.ev("db.result", now);
        o.u64("q", q)
            .u64("i", u64::from(i))
            .str("status", "skipped");
        self.done(o, out);
    }

    fn server_msg(&mut self, tag: u8, body: &[u8], now: Now, out: &mut Vec<String>) {
        if self.degraded {
            return;
        }
        if let Some(acc) = self.front_acc() {
            if acc.first.is_none() {
                acc.first = Some(now.mono_us);
            }
        }
        match tag {
            b'1' => match self.fifo.pop_front() {
                Some(Item::Parse {
                    name,
                    sql,
                    oids,
                    t0,
                }) => self.prepared(&name, &sql, &oids, t0, None, now, out),
                _ => self.degrade(now, "ParseComplete without a Parse", out),
            },
            b'2' => self.expect(|i| matches!(i, Item::Bind), "BindComplete", now, out),
            b'3' => self.expect(|i| matches!(i, Item::Close), "CloseComplete", now, out),
            b'n' => self.expect(|i| matches!(i, Item::Describe(_)), "NoData", now, out),
            b't' => {
                // ParameterDescription of a statement Describe: the types the server chose.
                if let Some(Item::Describe(Some(name))) = self.fifo.front() {
                    let mut c = msg::Cur::new(body);
                    let n = c.i16().unwrap_or(0).max(0) as usize;
                    let oids: Vec<u32> = (0..n).map_while(|_| c.i32().map(|v| v as u32)).collect();
                    if let Some(st) = self.stmts.get_mut(name) {
                        st.oids = oids;
                    }
                }
            }
            b'T' => {
                if matches!(self.fifo.front(), Some(Item::Describe(_))) {
                    self.fifo.pop_front();
                } else if let Some(acc) = self.front_acc() {
                    acc.cols = msg::row_description(body, MAX_COLS);
                }
            }
            b'G' | b'H' | b'W' => {
                let binary = body.first() == Some(&1);
                let dir = match tag {
                    b'G' => "in",
                    b'H' => "out",
                    _ => "both",
                };
                let c = CopyAcc {
                    dir,
                    binary,
                    ..CopyAcc::default()
                };
                if tag != b'H' {
                    self.copy_in = Some(c.clone());
                    // Syncs sent after the Execute and before CopyDone/CopyFail are ignored.
                    let end = self.fifo.iter().position(|i| matches!(i, Item::CopyEnd));
                    let mut k = 0;
                    self.fifo.retain(|i| {
                        k += 1;
                        !(end.is_none_or(|e| k - 1 < e) && matches!(i, Item::Sync))
                    });
                    // Not yet sent: Syncs from now until CopyDone/CopyFail are ignored too.
                    self.copy_ignore_sync = end.is_none();
                }
                if let Some(acc) = self.front_acc() {
                    acc.copy = Some(c);
                }
            }
            b'c' => {}
            b'C' | b'I' | b's' => {
                let ctag = (tag == b'C').then(|| msg::cstr_body(body));
                let status = match tag {
                    b'C' => "ok",
                    b'I' => "empty",
                    _ => "suspended",
                };
                self.complete(status, ctag.as_deref(), None, now, out);
            }
            b'E' => {
                let err = msg::error_fields(body);
                self.error(err, now, out);
            }
            b'Z' => {
                self.txn = body.first().copied().unwrap_or(b'I');
                match self.fifo.pop_front() {
                    Some(Item::Sync) | Some(Item::Fastpath { .. }) => {}
                    Some(Item::Simple {
                        i,
                        n_parts,
                        failed,
                        acc,
                    }) => {
                        if failed {
                            for k in i..n_parts.min(u64::from(u32::MAX)) as u32 {
                                self.skipped(acc.q, k, now, out);
                            }
                        }
                    }
                    _ => self.degrade(now, "ReadyForQuery out of turn", out),
                }
            }
            b'V' => {
                let mut done = None;
                if let Some(Item::Fastpath { acc, done: d }) = self.fifo.front_mut() {
                    *d = true;
                    done = Some(acc.clone());
                }
                match done {
                    Some(acc) => self.result(&acc, 0, "ok", None, None, now, out),
                    None => self.degrade(now, "FunctionCallResponse without a FunctionCall", out),
                }
            }
            b'N' => {
                if let Some(acc) = self.front_acc() {
                    acc.notices += 1;
                }
            }
            b'A' => {}
            b'S' => {
                if let Some((name, value)) = msg::parameter_status(body) {
                    let mut o = self.ev("db.param", now);
                    o.str("name", &name).str("value", &value);
                    self.done(o, out);
                }
            }
            _ => {
                if !self.unknown_s2c {
                    self.unknown_s2c = true;
                    self.proto_error(
                        now,
                        "s2c",
                        Some(tag),
                        Some(body.len() as u64),
                        "unexpected backend message (relayed)",
                        out,
                    );
                }
            }
        }
    }

    fn expect(&mut self, f: impl Fn(&Item) -> bool, what: &str, now: Now, out: &mut Vec<String>) {
        if self.fifo.front().is_some_and(f) {
            self.fifo.pop_front();
        } else {
            self.degrade(now, &format!("{what} out of turn"), out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn prepared(
        &mut self,
        name: &str,
        sql: &SqlText,
        oids: &[u32],
        t0: u64,
        err: Option<&ErrInfo>,
        now: Now,
        out: &mut Vec<String>,
    ) {
        let mut o = self.ev("db.prepare", now);
        o.str("stmt", name);
        sql.put(&mut o);
        o.u32s("param_types", oids);
        o.bool("ok", err.is_none());
        if let Some(e) = err {
            o.obj("err", e.obj());
        }
        o.u64("dur_us", now.mono_us.saturating_sub(t0));
        if !sql.redacted.is_empty() {
            o.strs("redacted", &sql.redacted);
        }
        self.done(o, out);
    }

    fn drop_copy_end(&mut self, had_copy_in: bool) {
        if had_copy_in {
            if let Some(k) = self.fifo.iter().position(|i| matches!(i, Item::CopyEnd)) {
                self.fifo.remove(k);
            }
        }
    }

    fn complete(
        &mut self,
        status: &str,
        tag: Option<&str>,
        err: Option<&ErrInfo>,
        now: Now,
        out: &mut Vec<String>,
    ) {
        let cin = self.copy_in.take();
        self.drop_copy_end(cin.is_some());
        match self.fifo.front_mut() {
            Some(Item::Simple { i, acc, .. }) => {
                let (k, mut a) = (*i, acc.clone());
                if cin.is_some() {
                    a.copy = cin;
                }
                *i += 1;
                *acc = Acc {
                    q: a.q,
                    t0: now.mono_us,
                    ..Acc::default()
                };
                self.result(&a, k, status, tag, err, now, out);
            }
            Some(Item::Execute { .. }) => {
                let Some(Item::Execute { portal, mut acc }) = self.fifo.pop_front() else {
                    return;
                };
                if cin.is_some() {
                    acc.copy = cin;
                }
                if status == "suspended" {
                    if let Some(p) = self.portals.get_mut(&portal) {
                        p.suspended = Some(acc.q);
                    }
                }
                self.result(&acc, 0, status, tag, err, now, out);
            }
            _ => self.degrade(now, "CommandComplete without a statement", out),
        }
    }

    fn error(&mut self, err: ErrInfo, now: Now, out: &mut Vec<String>) {
        let cin = self.copy_in.take();
        self.drop_copy_end(cin.is_some());
        let status = if err.sqlstate.as_deref() == Some("57014") {
            "cancelled"
        } else {
            "error"
        };
        match self.fifo.front_mut() {
            None | Some(Item::Sync) => {
                if err.severity.as_deref() == Some("FATAL")
                    || err.severity.as_deref() == Some("PANIC")
                {
                    self.fatal = Some(err);
                } else {
                    self.degrade(now, "ErrorResponse outside a statement", out);
                }
            }
            Some(Item::Simple { i, failed, acc, .. }) => {
                let (k, mut a) = (*i, acc.clone());
                if cin.is_some() {
                    a.copy = cin;
                }
                *i += 1;
                *failed = true;
                self.result(&a, k, status, None, Some(&err), now, out);
            }
            Some(Item::Fastpath { acc, .. }) => {
                let a = acc.clone();
                self.result(&a, 0, status, None, Some(&err), now, out);
            }
            Some(_) => {
                // Extended batch: the failing message, then everything up to Sync is skipped.
                let mut reported = false;
                while let Some(item) = self.fifo.front() {
                    if matches!(item, Item::Sync) {
                        break;
                    }
                    match self.fifo.pop_front() {
                        Some(Item::Parse {
                            name,
                            sql,
                            oids,
                            t0,
                        }) => {
                            self.stmts.remove(&name);
                            if !reported {
                                reported = true;
                                self.prepared(&name, &sql, &oids, t0, Some(&err), now, out);
                            }
                        }
                        Some(Item::Execute { mut acc, .. }) => {
                            if !reported && cin.is_some() {
                                acc.copy = cin.clone();
                            }
                            if reported {
                                self.skipped(acc.q, 0, now, out);
                            } else {
                                reported = true;
                                self.result(&acc, 0, status, None, Some(&err), now, out);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The connection ended: every statement forwarded without an outcome is `aborted`.
    pub fn abort_pending(&mut self, now: Now, out: &mut Vec<String>) {
        let items: Vec<Item> = self.fifo.drain(..).collect();
        for it in items {
            match it {
                Item::Simple { i, acc, .. } => {
                    let mut o = self.ev("db.result", now);
                    o.u64("q", acc.q)
                        .u64("i", u64::from(i))
                        .str("status", "aborted")
                        .u64("rows_out", acc.rows_out)
                        .u64("bytes_out", acc.bytes_out)
                        .u64("dur_us", now.mono_us.saturating_sub(acc.t0));
                    self.done(o, out);
                }
                Item::Execute { acc, .. } | Item::Fastpath { acc, done: false } => {
                    let mut o = self.ev("db.result", now);
                    o.u64("q", acc.q)
                        .u64("i", 0)
                        .str("status", "aborted")
                        .u64("rows_out", acc.rows_out)
                        .u64("bytes_out", acc.bytes_out)
                        .u64("dur_us", now.mono_us.saturating_sub(acc.t0));
                    self.done(o, out);
                }
                _ => {}
            }
        }
    }

    /// The statement currently running (for `db.cancel`'s `target_q`): the oldest forwarded
    /// statement without an outcome.
    pub fn running_q(&self) -> Option<u64> {
        self.fifo.iter().find_map(|i| match i {
            Item::Simple { acc, .. } | Item::Execute { acc, .. } | Item::Fastpath { acc, .. } => {
                Some(acc.q)
            }
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParamPolicy;
    use crate::pg::frame::Framer;
    use crate::pg::{CLIENT_KEEP, SERVER_KEEP};

    fn m(tag: u8, body: &[u8]) -> Vec<u8> {
        msg::encode(tag, body)
    }

    struct T {
        conn: Conn,
        c: Framer,
        s: Framer,
        evs: Vec<String>,
    }

    impl T {
        fn new() -> T {
            T {
                conn: Conn::new(ConnCtx {
                    c: 1,
                    proto: "pg",
                    params: ParamPolicy::Full,
                    sql_max: 1 << 20,
                }),
                c: Framer::new(CLIENT_KEEP, 1 << 20),
                s: Framer::new(SERVER_KEEP, 1 << 20),
                evs: Vec::new(),
            }
        }
        fn client(&mut self, bytes: &[u8]) {
            let (conn, evs) = (&mut self.conn, &mut self.evs);
            self.c
                .feed(bytes, &mut |p| {
                    conn.client(p, Now::default(), evs);
                })
                .unwrap();
        }
        fn server(&mut self, bytes: &[u8]) {
            let (conn, evs) = (&mut self.conn, &mut self.evs);
            self.s
                .feed(bytes, &mut |p| conn.server(p, Now::default(), evs))
                .unwrap();
        }
        fn kinds(&self) -> Vec<serde_json::Value> {
            self.evs
                .iter()
                .map(|e| serde_json::from_str(e).unwrap())
                .collect()
        }
    }

    #[test]
    fn parameter_description_gives_bind_oids() {
        let mut t = T::new();
        t.client(
            &[
                m(b'P', b"s1\0SELECT $1::text\0\0\0"),
                m(b'D', b"Ss1\0"),
                m(b'S', b""),
            ]
            .concat(),
        );
        t.server(
            &[
                m(b'1', b""),
                m(b't', b"\0\x01\0\0\0\x19"),
                m(b'T', b"\0\0"),
                m(b'Z', b"I"),
            ]
            .concat(),
        );
        t.client(
            &[
                m(b'B', b"\0s1\0\0\x01\0\x01\0\x01\0\0\0\x01b\0\0"),
                m(b'E', b"\0\0\0\0\0"),
                m(b'S', b""),
            ]
            .concat(),
        );
        let ev = t.kinds();
        let st = ev.iter().find(|e| e["k"] == "db.stmt").unwrap();
        assert_eq!(
            st["params"][0],
            serde_json::json!({"t":"binary","oid":25,"b64":"Yg=="}),
            "{st}"
        );
    }

    #[test]
    fn pipelined_batch_error_skips_the_rest() {
        let mut t = T::new();
        let bde = |stmt: &[u8]| {
            let mut b = b"\0".to_vec();
            b.extend_from_slice(stmt);
            b.extend_from_slice(b"\0\0\0\0\0\0\0");
            [m(b'B', &b), m(b'D', b"P\0"), m(b'E', b"\0\0\0\0\0")].concat()
        };
        t.client(
            &[
                m(b'P', b"P_0\0SELECT 1\0\0\0"),
                m(b'P', b"P_1\0SELECT 2\0\0\0"),
                m(b'S', b""),
            ]
            .concat(),
        );
        t.server(&[m(b'1', b""), m(b'1', b""), m(b'Z', b"I")].concat());
        t.client(&[bde(b"P_0"), bde(b"P_2"), bde(b"P_1"), m(b'S', b"")].concat());
        t.server(
            &[
                m(b'2', b""),
                m(
                    b'T',
                    b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0",
                ),
                m(b'D', b"\0\x01\0\0\0\x011"),
                m(b'C', b"SELECT 1\0"),
            ]
            .concat(),
        );
        t.server(
            &[
                m(
                    b'E',
                    b"SERROR\0C26000\0Mprepared statement \"P_2\" does not exist\0\0",
                ),
                m(b'Z', b"I"),
            ]
            .concat(),
        );
        let ev = t.kinds();
        let res: Vec<(u64, String)> = ev
            .iter()
            .filter(|e| e["k"] == "db.result")
            .map(|e| {
                (
                    e["q"].as_u64().unwrap(),
                    e["status"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            res,
            [(1, "ok".into()), (2, "error".into()), (3, "skipped".into())]
        );
        let unknown = ev
            .iter()
            .find(|e| e["k"] == "db.stmt" && e["q"] == 2)
            .unwrap();
        assert_eq!(unknown["stmt_unknown"], true);
        assert_eq!(
            ev.iter()
                .filter(|e| e["k"] == "db.prepare" && e["ok"] == true)
                .count(),
            2
        );
        assert!(!t.conn.degraded());
    }
}
