//! One MySQL connection's command phase as events (SPEC §11): each command that runs SQL is
//! recorded before it is forwarded; responses are followed packet by packet (OK, ERR,
//! result sets with or without EOF packets, multi-results, LOCAL INFILE, prepared-statement
//! metadata) so every result is correlated with its command. Row contents are counted,
//! never copied.

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use super::frame::{Piece, MAX_PAYLOAD};
use super::msg::{self, Cur};
use crate::event::{self, ConnCtx, ErrInfo, Now, Obj, Param, SqlText};
use crate::sql::Dialect;

/// Most column names recorded per result.
pub const MAX_COLS: usize = 256;
const LARGE_PREFIX_MAX: usize = 1 << 20;

#[derive(Debug, Default, Clone)]
struct Acc {
    q: u64,
    t0: u64,
    first: Option<u64>,
    rows_out: u64,
    bytes_out: u64,
    cols: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rs {
    First,
    Cols(u64),
    ColsEof,
    Rows,
    Infile,
}

#[derive(Debug)]
enum Pending {
    /// COM_QUERY, COM_STMT_EXECUTE, COM_STMT_FETCH, other SQL-running commands.
    Result {
        i: u32,
        acc: Acc,
        rs: Rs,
        init_db: Option<String>,
    },
    /// COM_STMT_PREPARE: the OK, then parameter and column definitions.
    Prepare {
        sql: SqlText,
        t0: u64,
        params: u64,
        cols: u64,
        eofs: u8,
        got: bool,
    },
    /// A command answered by one packet (PING, STATISTICS, RESET…).
    One,
    /// COM_FIELD_LIST: column definitions until EOF (or an ERR).
    FieldList,
}

#[derive(Debug, Clone)]
struct Stmt {
    sql: std::sync::Arc<SqlText>,
    params: u64,
    types: Vec<(u8, bool)>,
    long: Vec<u64>,
}

#[derive(Debug)]
struct Large {
    prefix: Vec<u8>,
    sha: Sha256,
    len: usize,
}

/// What the relay must do with a client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNote {
    /// COM_QUIT.
    Quit,
    /// Refuse the command (reply with this ERR and close): COM_CHANGE_USER.
    Refuse(String),
}

/// Counters for `db.close`.
pub use crate::pg::conn::Stats;

/// State of one MySQL connection after authentication.
#[derive(Debug)]
pub struct Conn {
    ctx: ConnCtx,
    caps: u32,
    q: u64,
    pending: VecDeque<Pending>,
    stmts: HashMap<u32, Stmt>,
    last_stmt: Option<u32>,
    status: u16,
    db: Option<String>,
    c_cont: bool,
    s_cont: bool,
    large: Option<Large>,
    s_large_first: Option<u8>,
    s_large_len: usize,
    degraded: bool,
    /// Counters.
    pub stats: Stats,
    /// Sequence id of the last client packet (an ERR from the proxy answers with it + 1).
    pub last_seq: u8,
}

impl Conn {
    /// A connection numbered `ctx.c` with the capabilities both sides agreed on and the
    /// database chosen at login.
    pub fn new(ctx: ConnCtx, caps: u32, db: Option<String>) -> Conn {
        Conn {
            ctx,
            caps,
            q: 0,
            pending: VecDeque::new(),
            stmts: HashMap::new(),
            last_stmt: None,
            status: 0,
            db,
            c_cont: false,
            s_cont: false,
            large: None,
            s_large_first: None,
            s_large_len: 0,
            degraded: false,
            stats: Stats::default(),
            last_seq: 0,
        }
    }

    /// Statements forwarded without an outcome yet.
    pub fn pending(&self) -> usize {
        self.pending
            .iter()
            .filter(|p| matches!(p, Pending::Result { .. }))
            .count()
    }

    fn ev(&self, kind: &str, now: Now) -> Obj {
        event::start(kind, self.ctx.c, self.ctx.proto, now.wall_us)
    }

    fn done(&self, mut o: Obj, out: &mut Vec<String>) {
        o.flag("degraded", self.degraded);
        out.push(o.finish());
    }

    fn proto_error(&mut self, now: Now, dir: &str, detail: &str, out: &mut Vec<String>) {
        let mut o = self.ev("db.proto_error", now);
        o.str("dir", dir).str("detail", detail);
        self.done(o, out);
    }

    fn degrade(&mut self, now: Now, detail: &str, out: &mut Vec<String>) {
        if !self.degraded {
            self.proto_error(now, "s2c", detail, out);
            self.degraded = true;
        }
        self.pending.clear();
    }

    fn txn(&self) -> &'static str {
        if self.status & msg::STATUS_IN_TRANS != 0 {
            "T"
        } else {
            "I"
        }
    }

    fn stmt_event(
        &mut self,
        via: &str,
        now: Now,
        f: impl FnOnce(&mut Obj),
        out: &mut Vec<String>,
    ) -> u64 {
        self.q += 1;
        let q = self.q;
        let mut o = self.ev("db.stmt", now);
        o.u64("q", q).str("via", via);
        f(&mut o);
        o.str("txn_before", self.txn())
            .opt_str("db", self.db.as_deref());
        self.done(o, out);
        self.stats.stmts += 1;
        q
    }

    /// Observe a piece of the client → server stream; the events to record before
    /// forwarding go to `out`.
    pub fn client(&mut self, p: Piece<'_>, now: Now, out: &mut Vec<String>) -> Option<ClientNote> {
        match p {
            Piece::Packet { seq, body } => {
                self.stats.bytes_c2s += body.len() as u64 + 4;
                self.last_seq = seq;
                if self.c_cont {
                    // The tail of a command over 16 MiB.
                    self.c_cont = body.len() == MAX_PAYLOAD;
                    if let Some(l) = self.large.as_mut() {
                        l.sha.update(body);
                        let room = LARGE_PREFIX_MAX.saturating_sub(l.prefix.len());
                        l.prefix.extend_from_slice(&body[..body.len().min(room)]);
                        l.len += body.len();
                    }
                    if !self.c_cont {
                        return self.large_done(now, out);
                    }
                    return None;
                }
                if self.infile_active() {
                    return None;
                }
                self.command(body, None, now, out)
            }
            Piece::Start { seq, len } => {
                self.stats.bytes_c2s += len as u64 + 4;
                self.last_seq = seq;
                if !self.c_cont && !self.infile_active() {
                    self.large = Some(Large {
                        prefix: Vec::new(),
                        sha: Sha256::new(),
                        len: 0,
                    });
                }
                self.c_cont = len == MAX_PAYLOAD;
                None
            }
            Piece::Data(d) => {
                if let Some(l) = self.large.as_mut() {
                    l.sha.update(d);
                    l.len += d.len();
                    let room = LARGE_PREFIX_MAX.saturating_sub(l.prefix.len());
                    l.prefix.extend_from_slice(&d[..d.len().min(room)]);
                }
                None
            }
            Piece::End => {
                if self.c_cont {
                    return None;
                }
                self.large_done(now, out)
            }
        }
    }

    fn infile_active(&self) -> bool {
        matches!(
            self.pending.front(),
            Some(Pending::Result { rs: Rs::Infile, .. })
        )
    }

    fn large_done(&mut self, now: Now, out: &mut Vec<String>) -> Option<ClientNote> {
        let l = self.large.take()?;
        let hex: String = l
            .sha
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let prefix = l.prefix;
        self.command(&prefix, Some((l.len, hex)), now, out)
    }

    fn command(
        &mut self,
        body: &[u8],
        large: Option<(usize, String)>,
        now: Now,
        out: &mut Vec<String>,
    ) -> Option<ClientNote> {
        let Some(&cmd) = body.first() else {
            // An empty packet outside LOCAL INFILE.
            self.proto_error(now, "c2s", "empty command packet", out);
            return None;
        };
        // The classic protocol answers one command at a time: a stale "answered by one
        // packet" expectation cannot outlive the next command.
        let acc = |q| Acc {
            q,
            t0: now.mono_us,
            ..Acc::default()
        };
        let rest = &body[1..];
        match cmd {
            0x03 => {
                let mut sql = SqlText::new(rest, Dialect::Mysql, self.ctx.sql_max);
                if let Some((len, hex)) = large {
                    sql = sql.over_cap(len.saturating_sub(1), hex);
                }
                let q = self.stmt_event(
                    "mysql_query",
                    now,
                    |o| {
                        sql.put(o);
                        o.opt_u64("n_parts", sql.n_parts);
                        if !sql.redacted.is_empty() {
                            o.strs("redacted", &sql.redacted);
                        }
                    },
                    out,
                );
                self.pending.push_back(Pending::Result {
                    i: 0,
                    acc: acc(q),
                    rs: Rs::First,
                    init_db: None,
                });
            }
            0x16 => {
                let sql = SqlText::new(rest, Dialect::Mysql, self.ctx.sql_max);
                self.pending.push_back(Pending::Prepare {
                    sql,
                    t0: now.mono_us,
                    params: 0,
                    cols: 0,
                    eofs: 0,
                    got: false,
                });
            }
            0x17 => {
                let mut c = Cur::new(rest);
                let raw_id = c.u32().unwrap_or(0);
                let id = if raw_id == u32::MAX {
                    self.last_stmt.unwrap_or(raw_id)
                } else {
                    raw_id
                };
                let (params, lost) = self.exec_params(id, &mut c);
                let st = self.stmts.get(&id).cloned();
                let policy = self.ctx.params;
                let q = self.stmt_event(
                    "mysql_execute",
                    now,
                    |o| {
                        o.u64("stmt_id", u64::from(id));
                        match &st {
                            Some(s) => {
                                s.sql.put(o);
                                o.opt_u64("n_parts", s.sql.n_parts);
                            }
                            None => {
                                o.bool("stmt_unknown", true);
                            }
                        }
                        let n = params
                            .as_ref()
                            .map(|p| p.len() as u64)
                            .or(st.as_ref().map(|s| s.params))
                            .unwrap_or(0);
                        o.u64("n_params", n);
                        if let Some(ps) = &params {
                            let refs: Vec<Param<'_>> = ps
                                .iter()
                                .map(|p| match p {
                                    None => Param::Null,
                                    Some((t, v, true)) => Param::Typed(t, v.clone()),
                                    Some((_, v, false)) => Param::Binary(0, v.as_bytes()),
                                })
                                .collect();
                            if let Some(arr) = event::params(policy, &refs) {
                                o.arr("params", arr);
                            }
                        }
                        o.flag("params_lost", lost);
                        if let Some(s) = &st {
                            if !s.sql.redacted.is_empty() {
                                o.strs("redacted", &s.sql.redacted);
                            }
                        }
                    },
                    out,
                );
                if let Some(s) = self.stmts.get_mut(&id) {
                    s.long.clear();
                }
                self.pending.push_back(Pending::Result {
                    i: 0,
                    acc: acc(q),
                    rs: Rs::First,
                    init_db: None,
                });
            }
            0x18 => {
                // COM_STMT_SEND_LONG_DATA: no response; the parameter is sent apart.
                let mut c = Cur::new(rest);
                if let (Some(id), Some(p)) = (c.u32(), c.u16()) {
                    if let Some(s) = self.stmts.get_mut(&id) {
                        if !s.long.contains(&u64::from(p)) {
                            s.long.push(u64::from(p));
                        }
                    }
                }
            }
            0x19 => {
                if let Some(id) = Cur::new(rest).u32() {
                    self.stmts.remove(&id);
                }
            }
            0x02 => {
                let name = String::from_utf8_lossy(rest).into_owned();
                let q = self.stmt_event(
                    "mysql_init_db",
                    now,
                    |o| {
                        o.str("sql", &format!("USE `{}`", name.replace('`', "``")));
                    },
                    out,
                );
                self.pending.push_back(Pending::Result {
                    i: 0,
                    acc: acc(q),
                    rs: Rs::First,
                    init_db: Some(name),
                });
            }
            0x11 => {
                let m = "COM_CHANGE_USER is refused: the recording belongs to one database login"
                    .to_string();
                let mut o = self.ev("db.auth", now);
                o.str("method", "change_user")
                    .bool("ok", false)
                    .obj("err", ErrInfo::msg(&m).obj());
                self.done(o, out);
                return Some(ClientNote::Refuse(m));
            }
            0x01 => return Some(ClientNote::Quit),
            0x0E | 0x09 | 0x1A | 0x1B | 0x1F => self.pending.push_back(Pending::One),
            // COM_FIELD_LIST (the client's table-name completion): metadata only.
            0x04 => self.pending.push_back(Pending::FieldList),
            0x1C => {
                // COM_STMT_FETCH: more rows of a cursor.
                let mut c = Cur::new(rest);
                let id = c.u32().unwrap_or(0);
                let q = self.stmt_event(
                    "mysql_fetch",
                    now,
                    |o| {
                        o.u64("stmt_id", u64::from(id))
                            .u64("max_rows", u64::from(c.u32().unwrap_or(0)));
                    },
                    out,
                );
                self.pending.push_back(Pending::Result {
                    i: 0,
                    acc: acc(q),
                    rs: Rs::Rows,
                    init_db: None,
                });
            }
            other => {
                // Anything else that may run something (COM_PROCESS_KILL, MariaDB bulk
                // execute, …) is recorded by its command byte before it is forwarded.
                let via = if other == 0xFA {
                    "mysql_bulk"
                } else {
                    "mysql_command"
                };
                let q = self.stmt_event(
                    via,
                    now,
                    |o| {
                        o.str("cmd", &format!("0x{other:02x}"));
                        if other == 0xFA {
                            if let Some(id) = Cur::new(rest).u32() {
                                o.u64("stmt_id", u64::from(id));
                            }
                        }
                    },
                    out,
                );
                self.pending.push_back(Pending::Result {
                    i: 0,
                    acc: acc(q),
                    rs: Rs::First,
                    init_db: None,
                });
            }
        }
        None
    }

    /// Parameters of a COM_STMT_EXECUTE (after the statement id): `None` per NULL, else
    /// (type, text or base64, is_text). `params_lost` when they could not be parsed.
    #[allow(clippy::type_complexity)]
    fn exec_params(
        &mut self,
        id: u32,
        c: &mut Cur<'_>,
    ) -> (Option<Vec<Option<(&'static str, String, bool)>>>, bool) {
        let Some(st) = self.stmts.get(&id).cloned() else {
            return (None, true);
        };
        let n = st.params as usize;
        if n == 0 {
            return (Some(Vec::new()), false);
        }
        let mut parse =
            || -> Option<(Vec<Option<(&'static str, String, bool)>>, Vec<(u8, bool)>)> {
                c.u8()?;
                c.u32()?;
                let bitmap = c.take(n.div_ceil(8))?.to_vec();
                let bound = c.u8()?;
                let types: Vec<(u8, bool)> = if bound == 1 {
                    (0..n)
                        .map(|_| c.take(2).map(|t| (t[0], t[1] & 0x80 != 0)))
                        .collect::<Option<_>>()?
                } else {
                    st.types.clone()
                };
                if types.len() != n {
                    return None;
                }
                let mut vals = Vec::with_capacity(n);
                for (k, &(t, unsigned)) in types.iter().enumerate() {
                    if bitmap[k / 8] & (1 << (k % 8)) != 0 {
                        vals.push(None);
                    } else if st.long.contains(&(k as u64)) {
                        vals.push(Some((
                            msg::type_name(t),
                            "<sent as long data>".to_string(),
                            true,
                        )));
                    } else {
                        let (v, text) = msg::binary_value(c, t, unsigned)?;
                        vals.push(Some((msg::type_name(t), v, text)));
                    }
                }
                Some((vals, types))
            };
        match parse() {
            Some((vals, types)) => {
                if let Some(s) = self.stmts.get_mut(&id) {
                    s.types = types;
                }
                (Some(vals), false)
            }
            None => (None, true),
        }
    }

    /// Observe a piece of the server → client stream; result events go to `out`.
    pub fn server(&mut self, p: Piece<'_>, now: Now, out: &mut Vec<String>) {
        match p {
            Piece::Packet { body, .. } => {
                self.stats.bytes_s2c += body.len() as u64 + 4;
                if self.s_cont {
                    self.s_cont = body.len() == MAX_PAYLOAD;
                    if let Some(Pending::Result { acc, .. }) = self.pending.front_mut() {
                        acc.bytes_out += body.len() as u64 + 4;
                    }
                    return;
                }
                self.s_cont = body.len() == MAX_PAYLOAD;
                self.packet(body, body.len(), now, out);
            }
            Piece::Start { len, .. } => {
                self.stats.bytes_s2c += len as u64 + 4;
                self.s_large_len = len;
                self.s_large_first = None;
            }
            Piece::Data(d) => {
                if self.s_large_first.is_none() {
                    self.s_large_first = d.first().copied();
                }
            }
            Piece::End => {
                let cont = self.s_cont;
                self.s_cont = self.s_large_len == MAX_PAYLOAD;
                if cont {
                    if let Some(Pending::Result { acc, .. }) = self.pending.front_mut() {
                        acc.bytes_out += self.s_large_len as u64 + 4;
                    }
                    return;
                }
                // A packet over the cap is a row (OK/ERR/EOF are small).
                let first = [self.s_large_first.unwrap_or(0)];
                let len = self.s_large_len;
                self.packet(&first, len, now, out);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn result(
        &mut self,
        acc: &Acc,
        i: u32,
        status: &str,
        rows: Option<u64>,
        ok: Option<msg::Ok>,
        err: Option<&ErrInfo>,
        now: Now,
        out: &mut Vec<String>,
    ) {
        let mut o = self.ev("db.result", now);
        o.u64("q", acc.q)
            .u64("i", u64::from(i))
            .str("status", status);
        o.opt_u64("rows", rows);
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
        if let Some(k) = ok {
            if k.warnings > 0 {
                o.u64("warnings", u64::from(k.warnings));
            }
            if k.last_insert_id > 0 {
                o.u64("last_insert_id", k.last_insert_id);
            }
            o.u64("status_flags", u64::from(k.status));
        }
        if status == "error" || status == "cancelled" {
            self.stats.errors += 1;
        }
        self.done(o, out);
    }

    fn packet(&mut self, b: &[u8], len: usize, now: Now, out: &mut Vec<String>) {
        if self.degraded {
            return;
        }
        let deprecate_eof = self.caps & msg::DEPRECATE_EOF != 0;
        let first = b.first().copied().unwrap_or(0);
        if first == 0xFF && b.get(1..3) == Some(&[0xFF, 0xFF][..]) {
            // MariaDB progress report (error code 0xFFFF, MARIADB_CLIENT_PROGRESS): not an
            // outcome; the command goes on.
            return;
        }
        let is_eof = first == 0xFE && len < 9;
        let Some(front) = self.pending.front_mut() else {
            if first == 0xFF {
                let e = msg::err_packet(b);
                let m = e.message.clone().unwrap_or_default();
                self.proto_error(now, "s2c", &format!("error outside a command: {m}"), out);
            } else {
                self.degrade(now, "server packet without a command", out);
            }
            return;
        };
        match front {
            Pending::FieldList => {
                if is_eof || first == 0xFF {
                    self.pending.pop_front();
                }
            }
            Pending::One => {
                self.pending.pop_front();
                if first == 0x00 {
                    if let Some(k) = msg::ok_packet(b) {
                        self.status = k.status;
                    }
                }
            }
            Pending::Prepare {
                sql,
                t0,
                params,
                cols,
                eofs,
                got,
            } => {
                if !*got {
                    if first == 0x00 && b.len() >= 12 {
                        let mut c = Cur::new(&b[1..]);
                        let id = c.u32().unwrap_or(0);
                        *cols = u64::from(c.u16().unwrap_or(0));
                        *params = u64::from(c.u16().unwrap_or(0));
                        *got = true;
                        *eofs = u8::from(!deprecate_eof && *params > 0)
                            + u8::from(!deprecate_eof && *cols > 0);
                        let st = Stmt {
                            sql: std::sync::Arc::new(sql.clone()),
                            params: *params,
                            types: Vec::new(),
                            long: Vec::new(),
                        };
                        let (t0, np) = (*t0, *params);
                        let mut o = self.ev("db.prepare", now);
                        o.u64("stmt_id", u64::from(id));
                        st.sql.put(&mut o);
                        o.u64("param_count", np)
                            .bool("ok", true)
                            .u64("dur_us", now.mono_us.saturating_sub(t0));
                        if !st.sql.redacted.is_empty() {
                            o.strs("redacted", &st.sql.redacted);
                        }
                        self.stmts.insert(id, st);
                        self.last_stmt = Some(id);
                        self.done(o, out);
                        if let Some(Pending::Prepare {
                            params, cols, eofs, ..
                        }) = self.pending.front()
                        {
                            if *params + *cols + u64::from(*eofs) == 0 {
                                self.pending.pop_front();
                            }
                        }
                    } else {
                        let e = msg::err_packet(b);
                        let (sqlc, t0) = (sql.clone(), *t0);
                        self.pending.pop_front();
                        let mut o = self.ev("db.prepare", now);
                        sqlc.put(&mut o);
                        o.bool("ok", false)
                            .obj("err", e.obj())
                            .u64("dur_us", now.mono_us.saturating_sub(t0));
                        self.done(o, out);
                    }
                } else {
                    // Definitions and their EOFs: count down.
                    if *params > 0 {
                        *params -= 1;
                    } else if *eofs > 0 && is_eof {
                        *eofs -= 1;
                    } else if *cols > 0 {
                        *cols -= 1;
                    } else if *eofs > 0 {
                        *eofs -= 1;
                    }
                    if *params + *cols + u64::from(*eofs) == 0 {
                        self.pending.pop_front();
                    }
                }
            }
            Pending::Result {
                i,
                acc,
                rs,
                init_db,
            } => {
                if acc.first.is_none() {
                    acc.first = Some(now.mono_us);
                }
                match *rs {
                    Rs::First | Rs::Infile => {
                        if first == 0x00 {
                            let k = msg::ok_packet(b).unwrap_or_default();
                            self.status = k.status;
                            let (a, ii) = (acc.clone(), *i);
                            if let Some(db) = init_db.take() {
                                self.db = Some(db);
                            }
                            if k.status & msg::STATUS_MORE_RESULTS != 0 {
                                *i += 1;
                                *acc = Acc {
                                    q: a.q,
                                    t0: now.mono_us,
                                    ..Acc::default()
                                };
                                *rs = Rs::First;
                            } else {
                                self.pending.pop_front();
                            }
                            self.result(&a, ii, "ok", Some(k.affected), Some(k), None, now, out);
                        } else if first == 0xFF {
                            let e = msg::err_packet(b);
                            let (a, ii) = (acc.clone(), *i);
                            self.pending.pop_front();
                            let st = if e.code == Some(1317) {
                                "cancelled"
                            } else {
                                "error"
                            };
                            self.result(&a, ii, st, None, None, Some(&e), now, out);
                        } else if first == 0xFB && *rs == Rs::First {
                            // LOCAL INFILE request (only as a command's first response).
                            let file = String::from_utf8_lossy(&b[1..]).into_owned();
                            let (q, ii) = (acc.q, *i);
                            *rs = Rs::Infile;
                            let mut o = self.ev("db.copy", now);
                            o.u64("q", q)
                                .u64("i", u64::from(ii))
                                .str("dir", "in")
                                .str("format", "local_infile")
                                .str("file", &file);
                            self.done(o, out);
                        } else {
                            let n = Cur::new(b).lenenc().unwrap_or(0);
                            *rs = if n == 0 { Rs::Rows } else { Rs::Cols(n) };
                        }
                    }
                    Rs::Cols(n) => {
                        if acc.cols.len() < MAX_COLS {
                            if let Some(name) = msg::column_name(b) {
                                acc.cols.push(name);
                            }
                        }
                        *rs = if n > 1 {
                            Rs::Cols(n - 1)
                        } else if deprecate_eof {
                            Rs::Rows
                        } else {
                            Rs::ColsEof
                        };
                    }
                    Rs::ColsEof => *rs = Rs::Rows,
                    Rs::Rows => {
                        let end = (first == 0xFE && len < 9)
                            || (deprecate_eof && first == 0xFE && len < MAX_PAYLOAD);
                        if end {
                            let (warnings, status) = if deprecate_eof && len >= 7 {
                                let k = msg::ok_packet(b).unwrap_or_default();
                                (k.warnings, k.status)
                            } else {
                                msg::eof_packet(b)
                            };
                            self.status = status;
                            let (a, ii) = (acc.clone(), *i);
                            if status & msg::STATUS_MORE_RESULTS != 0 {
                                *i += 1;
                                *acc = Acc {
                                    q: a.q,
                                    t0: now.mono_us,
                                    ..Acc::default()
                                };
                                *rs = Rs::First;
                            } else {
                                self.pending.pop_front();
                            }
                            let k = msg::Ok {
                                affected: a.rows_out,
                                last_insert_id: 0,
                                status,
                                warnings,
                            };
                            self.result(&a, ii, "ok", Some(a.rows_out), Some(k), None, now, out);
                        } else if first == 0xFF {
                            let e = msg::err_packet(b);
                            let (a, ii) = (acc.clone(), *i);
                            self.pending.pop_front();
                            let st = if e.code == Some(1317) {
                                "cancelled"
                            } else {
                                "error"
                            };
                            self.result(&a, ii, st, None, None, Some(&e), now, out);
                        } else {
                            acc.rows_out += 1;
                            acc.bytes_out += len as u64 + 4;
                        }
                    }
                }
            }
        }
    }

    /// The connection ended: statements without an outcome are `aborted`.
    pub fn abort_pending(&mut self, now: Now, out: &mut Vec<String>) {
        let items: Vec<Pending> = self.pending.drain(..).collect();
        for p in items {
            if let Pending::Result { i, acc, .. } = p {
                let mut o = self.ev("db.result", now);
                o.u64("q", acc.q)
                    .u64("i", u64::from(i))
                    .str("status", "aborted")
                    .u64("rows_out", acc.rows_out)
                    .u64("bytes_out", acc.bytes_out)
                    .u64("dur_us", now.mono_us.saturating_sub(acc.t0));
                self.done(o, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParamPolicy;
    use crate::mysql::frame::{packet, Framer};

    /// Feed `(from_client, packet)` in order.
    fn run(caps: u32, steps: &[(bool, Vec<u8>)]) -> Vec<serde_json::Value> {
        let mut conn = Conn::new(
            ConnCtx {
                c: 1,
                proto: "mysql",
                params: ParamPolicy::Full,
                sql_max: 1 << 20,
            },
            caps,
            None,
        );
        let mut evs = Vec::new();
        let (mut cf, mut sf) = (Framer::new(1 << 20), Framer::new(1 << 20));
        for (client, b) in steps {
            if *client {
                cf.feed(b, &mut |p| {
                    conn.client(p, Now::default(), &mut evs);
                });
            } else {
                sf.feed(b, &mut |p| conn.server(p, Now::default(), &mut evs));
            }
        }
        evs.iter()
            .map(|e| serde_json::from_str(e).unwrap())
            .collect()
    }

    #[test]
    fn null_row_is_not_local_infile_and_multi_results_count() {
        // SELECT 1/0 → one column, one row whose value is NULL (0xFB), EOF; then a CALL
        // with two results (MORE_RESULTS on the first EOF).
        let col = packet(
            2,
            b"\x03def\0\0\0\x051/0\0\x0c\x3f\0\x01\0\0\0\x06\x80\0\0\0\0",
        );
        let steps = [
            (true, packet(0, b"\x03SELECT 1/0")),
            (false, packet(1, b"\x01")),
            (false, col.clone()),
            (false, packet(3, b"\xfe\0\0\x02\0")),
            (false, packet(4, b"\xfb")),
            (false, packet(5, b"\xfe\x01\0\x02\0")),
            (true, packet(0, b"\x03CALL p()")),
            (false, packet(1, b"\x01")),
            (false, col),
            (false, packet(3, b"\xfe\0\0\x0a\0")),
            (false, packet(4, b"\x011")),
            (false, packet(5, b"\xfe\0\0\x0a\0")),
            (false, packet(6, b"\0\0\0\x02\0\0\0")),
        ];
        let ev = run(msg::PROTOCOL_41, &steps);
        let r: Vec<(u64, u64, String, u64)> = ev
            .iter()
            .filter(|e| e["k"] == "db.result")
            .map(|e| {
                (
                    e["q"].as_u64().unwrap(),
                    e["i"].as_u64().unwrap(),
                    e["status"].as_str().unwrap().into(),
                    e["rows_out"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            r,
            [
                (1, 0, "ok".into(), 1),
                (2, 0, "ok".into(), 1),
                (2, 1, "ok".into(), 0)
            ]
        );
        assert!(ev.iter().all(|e| e["k"] != "db.copy"));
        assert_eq!(
            ev.iter().find(|e| e["k"] == "db.result").unwrap()["warnings"],
            1
        );
    }

    #[test]
    fn prepared_execute_params_remembered() {
        let ok_prep = packet(1, b"\0\x07\0\0\0\0\0\x02\0\0\0\0");
        let pdef = packet(2, b"\x03def\0\0\0\x01?\0\x0c\x3f\0\0\0\0\0\xfd\x80\0\0\0\0");
        // Types sent with the first execute, remembered for the second (bound flag 0);
        // the second has parameter 1 NULL and parameter 2 sent as long data.
        let exec1 = packet(
            0,
            &[
                &b"\x17\x07\0\0\0\0\x01\0\0\0\x00\x01\x08\0\xfd\0"[..],
                &42u64.to_le_bytes(),
                b"\x02hi",
            ]
            .concat(),
        );
        let exec2 = packet(0, b"\x17\x07\0\0\0\0\x01\0\0\0\x01\x00");
        let ok = packet(1, b"\0\x01\0\0\0\0\0");
        let ev = run(
            msg::PROTOCOL_41 | msg::DEPRECATE_EOF,
            &[
                (true, packet(0, b"\x16SELECT ?, ?")),
                (false, ok_prep),
                (false, pdef.clone()),
                (false, pdef),
                (true, exec1),
                (false, ok.clone()),
                (true, packet(0, b"\x18\x07\0\0\0\x01\0long")),
                (true, exec2),
                (false, ok),
            ],
        );
        let st: Vec<&serde_json::Value> = ev.iter().filter(|e| e["k"] == "db.stmt").collect();
        assert_eq!(
            st[0]["params"],
            serde_json::json!([{"t":"LONGLONG","v":"42"},{"t":"VAR_STRING","v":"hi"}])
        );
        assert_eq!(
            st[1]["params"],
            serde_json::json!([{"t":"null"},{"t":"VAR_STRING","v":"<sent as long data>"}])
        );
        assert_eq!(st[0]["sql"], "SELECT ?, ?");
        assert_eq!(
            ev.iter()
                .filter(|e| e["k"] == "db.result" && e["status"] == "ok")
                .count(),
            2
        );
    }
}
