//! The `d` event builder (SPEC §11): JSON objects whose keys come out in exactly the order
//! they are added, plus the helpers every kind shares (RFC 3339 times, SQL text fields,
//! parameters under a policy, error objects). Pure; no I/O.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use sha2::{Digest, Sha256};

use sealcast_format::time::rfc3339_micros;

use crate::config::ParamPolicy;
use crate::sql::{self, Dialect};

/// Schema version written as `v`.
pub const SCHEMA: u64 = 1;
/// Longest parameter value recorded (bytes, before base64); longer ones are cut (`cut`).
pub const PARAM_MAX: usize = 4096;

/// A JSON object under construction; keys appear in insertion order.
#[derive(Debug, Clone)]
pub struct Obj {
    buf: String,
    empty: bool,
}

impl Default for Obj {
    fn default() -> Self {
        Obj::new()
    }
}

impl Obj {
    /// `{`.
    pub fn new() -> Obj {
        Obj {
            buf: String::from("{"),
            empty: true,
        }
    }

    fn key(&mut self, k: &str) {
        if !self.empty {
            self.buf.push(',');
        }
        self.empty = false;
        push_str(&mut self.buf, k);
        self.buf.push(':');
    }

    /// A string member.
    pub fn str(&mut self, k: &str, v: &str) -> &mut Obj {
        self.key(k);
        push_str(&mut self.buf, v);
        self
    }

    /// A string member when `v` is `Some`.
    pub fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Obj {
        if let Some(v) = v {
            self.str(k, v);
        }
        self
    }

    /// An unsigned integer member.
    pub fn u64(&mut self, k: &str, v: u64) -> &mut Obj {
        self.key(k);
        self.buf.push_str(&v.to_string());
        self
    }

    /// An unsigned integer member when `v` is `Some`.
    pub fn opt_u64(&mut self, k: &str, v: Option<u64>) -> &mut Obj {
        if let Some(v) = v {
            self.u64(k, v);
        }
        self
    }

    /// A boolean member.
    pub fn bool(&mut self, k: &str, v: bool) -> &mut Obj {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    /// `k: true` only when `v` is true.
    pub fn flag(&mut self, k: &str, v: bool) -> &mut Obj {
        if v {
            self.bool(k, true);
        }
        self
    }

    /// `k: null`.
    pub fn null(&mut self, k: &str) -> &mut Obj {
        self.key(k);
        self.buf.push_str("null");
        self
    }

    /// A nested object.
    pub fn obj(&mut self, k: &str, v: Obj) -> &mut Obj {
        self.key(k);
        self.buf.push_str(&v.finish());
        self
    }

    /// An array of objects.
    pub fn arr(&mut self, k: &str, items: Vec<Obj>) -> &mut Obj {
        self.key(k);
        self.buf.push('[');
        for (i, o) in items.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            self.buf.push_str(&o.finish());
        }
        self.buf.push(']');
        self
    }

    /// An array of strings.
    pub fn strs(&mut self, k: &str, items: &[String]) -> &mut Obj {
        self.key(k);
        self.buf.push('[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            push_str(&mut self.buf, s);
        }
        self.buf.push(']');
        self
    }

    /// An array of unsigned integers.
    pub fn u32s(&mut self, k: &str, items: &[u32]) -> &mut Obj {
        self.key(k);
        self.buf.push('[');
        for (i, v) in items.iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            self.buf.push_str(&v.to_string());
        }
        self.buf.push(']');
        self
    }

    /// The object as JSON text.
    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

fn push_str(buf: &mut String, s: &str) {
    // serde_json's escaping of a plain string cannot fail.
    buf.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// The members every event starts with: `v`, `k`, `c`, `proto`, `ts` (SPEC §11.1).
pub fn start(kind: &str, conn: u64, proto: &str, wall_us: u64) -> Obj {
    let mut o = Obj::new();
    o.u64("v", SCHEMA)
        .str("k", kind)
        .u64("c", conn)
        .str("proto", proto)
        .str("ts", &rfc3339_micros(wall_us));
    o
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::with_capacity(64);
    for x in d {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// The SQL text members of `db.stmt` / `db.prepare`: `sql` (or `sql_b64` when the bytes are
/// not UTF-8), `sql_len`, `sql_sha256`, `trunc` (only when cut at `max` bytes), and the
/// list of redactions applied. Password literals are replaced before anything is measured,
/// so length and hash are those of the recorded (redacted) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlText {
    text: Vec<u8>,
    len: usize,
    sha: String,
    trunc: bool,
    /// Redactions applied (`password_literal`).
    pub redacted: Vec<String>,
    /// Statements in the text (lexical count), when known.
    pub n_parts: Option<u64>,
}

impl SqlText {
    /// Analyse `raw` (the statement bytes as sent) for `dialect`, inline at most `max` bytes.
    pub fn new(raw: &[u8], dialect: Dialect, max: usize) -> SqlText {
        let (red, hit) = sql::redact_passwords(raw, dialect);
        let bytes: &[u8] = &red;
        let mut cut = bytes.len().min(max);
        if let Ok(s) = std::str::from_utf8(bytes) {
            while cut > 0 && !s.is_char_boundary(cut) {
                cut -= 1;
            }
        }
        SqlText {
            text: bytes[..cut].to_vec(),
            len: bytes.len(),
            sha: sha256_hex(bytes),
            trunc: cut < bytes.len(),
            redacted: if hit {
                vec!["password_literal".into()]
            } else {
                Vec::new()
            },
            n_parts: Some(sql::count_statements(bytes, dialect)),
        }
    }

    /// For a statement streamed over the framer's cap: `self` was built from a prefix; the
    /// whole text had `len` bytes with SHA-256 `sha_hex` (redaction applies to the prefix
    /// only, and the hash is over the text as sent).
    pub fn over_cap(mut self, len: usize, sha_hex: String) -> SqlText {
        self.len = len;
        self.sha = sha_hex;
        self.trunc = true;
        self.n_parts = None;
        self
    }

    /// The inline text (possibly cut), lossily decoded: for display.
    pub fn display(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// Append `sql`/`sql_b64`, `sql_len`, `sql_sha256`, `trunc`.
    pub fn put(&self, o: &mut Obj) {
        match std::str::from_utf8(&self.text) {
            Ok(s) => o.str("sql", s),
            Err(_) => o.str("sql_b64", &B64.encode(&self.text)),
        };
        o.u64("sql_len", self.len as u64)
            .str("sql_sha256", &self.sha)
            .flag("trunc", self.trunc);
    }
}

/// One bound parameter as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    /// SQL NULL.
    Null,
    /// Text-format value.
    Text(&'a [u8]),
    /// Binary-format value with its type (PostgreSQL OID, or 0 when unknown).
    Binary(u32, &'a [u8]),
    /// A MySQL binary-protocol value already rendered as text, with its type name.
    Typed(&'static str, String),
}

/// Render parameters under `policy` as the `params` array (absent for `none`).
pub fn params(policy: ParamPolicy, ps: &[Param<'_>]) -> Option<Vec<Obj>> {
    if policy == ParamPolicy::None {
        return None;
    }
    let mut out = Vec::with_capacity(ps.len());
    for p in ps {
        let mut o = Obj::new();
        match p {
            Param::Null => {
                o.str("t", "null");
            }
            Param::Text(b) => {
                o.str("t", "text");
                value(&mut o, policy, b, true);
            }
            Param::Binary(oid, b) => {
                o.str("t", "binary");
                if *oid != 0 {
                    o.u64("oid", u64::from(*oid));
                }
                value(&mut o, policy, b, false);
            }
            Param::Typed(ty, v) => {
                o.str("t", ty);
                value(&mut o, policy, v.as_bytes(), true);
            }
        }
        out.push(o);
    }
    Some(out)
}

fn value(o: &mut Obj, policy: ParamPolicy, b: &[u8], text: bool) {
    if policy == ParamPolicy::Hash {
        o.str("sha256", &sha256_hex(b)).u64("len", b.len() as u64);
        return;
    }
    let cut = b.len() > PARAM_MAX;
    let mut part = &b[..b.len().min(PARAM_MAX)];
    match std::str::from_utf8(part) {
        Ok(s) if text => {
            o.str("v", s);
        }
        Err(e) if text && e.error_len().is_none() => {
            // A character cut at the cap: back to its start.
            part = &part[..e.valid_up_to()];
            o.str("v", std::str::from_utf8(part).unwrap_or(""));
        }
        _ => {
            o.str("b64", &B64.encode(part));
        }
    }
    if cut {
        o.u64("len", b.len() as u64).bool("cut", true);
    }
}

/// An error object `err` (SPEC §11.1): keys in this order, each only when present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrInfo {
    /// SQLSTATE (5 characters).
    pub sqlstate: Option<String>,
    /// Severity (PostgreSQL `V`, else `S`).
    pub severity: Option<String>,
    /// MySQL error number.
    pub code: Option<u64>,
    /// Primary message.
    pub message: Option<String>,
    /// PostgreSQL `D`.
    pub detail: Option<String>,
    /// PostgreSQL `H`.
    pub hint: Option<String>,
    /// PostgreSQL `P` (1-based character position in the statement).
    pub position: Option<String>,
    /// PostgreSQL `s`, `t`, `c`, `n`.
    pub schema: Option<String>,
    /// Table.
    pub table: Option<String>,
    /// Column.
    pub column: Option<String>,
    /// Constraint.
    pub constraint: Option<String>,
}

impl ErrInfo {
    /// A message alone (errors of the proxy itself).
    pub fn msg(m: impl Into<String>) -> ErrInfo {
        ErrInfo {
            message: Some(m.into()),
            ..ErrInfo::default()
        }
    }

    /// As a JSON object.
    pub fn obj(&self) -> Obj {
        let mut o = Obj::new();
        o.opt_str("sqlstate", self.sqlstate.as_deref())
            .opt_str("severity", self.severity.as_deref())
            .opt_u64("code", self.code)
            .opt_str("message", self.message.as_deref())
            .opt_str("detail", self.detail.as_deref())
            .opt_str("hint", self.hint.as_deref())
            .opt_str("position", self.position.as_deref())
            .opt_str("schema", self.schema.as_deref())
            .opt_str("table", self.table.as_deref())
            .opt_str("column", self.column.as_deref())
            .opt_str("constraint", self.constraint.as_deref());
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_insertion_order_and_escaped() {
        let mut o = start("db.stmt", 1, "pg", 1_763_719_323_123_456);
        o.u64("q", 7).str("sql", "SELECT '\"x\"'\n");
        assert_eq!(
            o.finish(),
            r#"{"v":1,"k":"db.stmt","c":1,"proto":"pg","ts":"2025-11-21T10:02:03.123456Z","q":7,"sql":"SELECT '\"x\"'\n"}"#
        );
    }

    #[test]
    fn rfc3339_epoch_and_leap_day() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            rfc3339_micros(951_782_400_000_001),
            "2000-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn params_under_each_policy() {
        let ps = [
            Param::Text(b"42"),
            Param::Null,
            Param::Binary(17, b"\x00\xff"),
        ];
        let full: Vec<String> = params(ParamPolicy::Full, &ps)
            .unwrap()
            .into_iter()
            .map(Obj::finish)
            .collect();
        assert_eq!(
            full,
            [
                r#"{"t":"text","v":"42"}"#,
                r#"{"t":"null"}"#,
                r#"{"t":"binary","oid":17,"b64":"AP8="}"#
            ]
        );
        let hashed = params(ParamPolicy::Hash, &ps[..1])
            .unwrap()
            .remove(0)
            .finish();
        assert!(
            hashed.contains("\"sha256\":\"73475cb4") && !hashed.contains("\"v\""),
            "{hashed}"
        );
        assert!(params(ParamPolicy::None, &ps).is_none());
        let big = vec![b'a'; PARAM_MAX + 10];
        let cut = params(ParamPolicy::Full, &[Param::Text(&big)])
            .unwrap()
            .remove(0)
            .finish();
        assert!(
            cut.ends_with(&format!("\"len\":{},\"cut\":true}}", PARAM_MAX + 10)),
            "{cut}"
        );
    }

    #[test]
    fn sql_text_cut_and_hashed_over_everything() {
        let t = SqlText::new("SELECT 'é'".as_bytes(), Dialect::Postgres, 9);
        let mut o = Obj::new();
        t.put(&mut o);
        let s = o.finish();
        assert!(s.starts_with(r#"{"sql":"SELECT '","sql_len":11,"#), "{s}");
        assert!(s.ends_with(r#""trunc":true}"#), "{s}");
        let latin1 = SqlText::new(b"SELECT '\xe9'", Dialect::Postgres, 100);
        let mut o = Obj::new();
        latin1.put(&mut o);
        assert!(o.finish().contains("\"sql_b64\":\"U0VMRUNUICfpJw==\""));
    }
}

/// The time of an observation, given by the caller (the state machines read no clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Now {
    /// Wall clock, Unix microseconds (for `ts`).
    pub wall_us: u64,
    /// Monotonic microseconds (for durations).
    pub mono_us: u64,
}

impl Now {
    /// The system clocks; `origin` is the monotonic zero.
    pub fn system(origin: std::time::Instant) -> Now {
        Now {
            wall_us: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as u64)
                .unwrap_or(0),
            mono_us: origin.elapsed().as_micros() as u64,
        }
    }
}

/// Per-connection facts every event of the connection carries.
#[derive(Debug, Clone)]
pub struct ConnCtx {
    /// Connection number within the recording, from 1.
    pub c: u64,
    /// `pg` or `mysql`.
    pub proto: &'static str,
    /// Parameter policy.
    pub params: ParamPolicy,
    /// Inline SQL cap (bytes).
    pub sql_max: usize,
}
