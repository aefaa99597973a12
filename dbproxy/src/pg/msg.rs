//! Parsers and encoders of the PostgreSQL messages the proxy reads or writes (PostgreSQL 15
//! docs, "Message Formats"). Every parser is total: malformed input is `None`, never a panic.

use crate::event::ErrInfo;

/// Startup-phase request codes.
pub const SSL_REQUEST: u32 = 80_877_103;
/// GSSENCRequest.
pub const GSSENC_REQUEST: u32 = 80_877_104;
/// CancelRequest.
pub const CANCEL_REQUEST: u32 = 80_877_102;

/// A cursor over a message body.
#[derive(Debug, Clone)]
pub struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    /// Start of `b`.
    pub fn new(b: &'a [u8]) -> Cur<'a> {
        Cur { b, i: 0 }
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.i)?;
        self.i += 1;
        Some(v)
    }
    /// Big-endian i16.
    pub fn i16(&mut self) -> Option<i16> {
        let s = self.take(2)?;
        Some(i16::from_be_bytes([s[0], s[1]]))
    }
    /// Big-endian i32.
    pub fn i32(&mut self) -> Option<i32> {
        let s = self.take(4)?;
        Some(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let s = self.b.get(self.i..end)?;
        self.i = end;
        Some(s)
    }
    /// A NUL-terminated string, without the NUL.
    pub fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.b.get(self.i..)?;
        let n = rest.iter().position(|&c| c == 0)?;
        self.i += n + 1;
        Some(&rest[..n])
    }
    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = self.b.get(self.i..).unwrap_or(&[]);
        self.i = self.b.len();
        r
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An untagged startup-phase packet (body after the length word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// SSLRequest.
    Ssl,
    /// GSSENCRequest.
    GssEnc,
    /// CancelRequest: backend pid and secret key (4 bytes in protocol 3.0, up to 256 in 3.2).
    Cancel {
        /// Backend process id.
        pid: u32,
        /// Secret key.
        key: Vec<u8>,
    },
    /// StartupMessage.
    Message {
        /// Protocol major version (3).
        major: u16,
        /// Minor version.
        minor: u16,
        /// Parameters in order (`user`, `database`, `options`, `_pq_.*`, …).
        params: Vec<(String, String)>,
    },
    /// Anything else (the code).
    Unknown(u32),
}

impl Startup {
    /// Parse a startup packet body (after its 4-byte length).
    pub fn parse(body: &[u8]) -> Option<Startup> {
        let mut c = Cur::new(body);
        let code = c.i32()? as u32;
        Some(match code {
            SSL_REQUEST => Startup::Ssl,
            GSSENC_REQUEST => Startup::GssEnc,
            CANCEL_REQUEST => Startup::Cancel {
                pid: c.i32()? as u32,
                key: c.rest().to_vec(),
            },
            v if v >> 16 == 3 => {
                let mut params = Vec::new();
                loop {
                    let k = c.cstr()?;
                    if k.is_empty() {
                        break;
                    }
                    let v = c.cstr()?;
                    params.push((lossy(k), lossy(v)));
                }
                Startup::Message {
                    major: (v >> 16) as u16,
                    minor: (v & 0xffff) as u16,
                    params,
                }
            }
            other => Startup::Unknown(other),
        })
    }

    /// Encode a StartupMessage (length included).
    pub fn encode_message(major: u16, minor: u16, params: &[(String, String)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&((u32::from(major) << 16) | u32::from(minor)).to_be_bytes());
        for (k, v) in params {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }
}

/// A CancelRequest packet (length included).
pub fn encode_cancel(pid: u32, key: &[u8]) -> Vec<u8> {
    let mut out = ((12 + key.len()) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&CANCEL_REQUEST.to_be_bytes());
    out.extend_from_slice(&pid.to_be_bytes());
    out.extend_from_slice(key);
    out
}

/// A tagged message (tag, length, body).
pub fn encode(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(tag);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// An ErrorResponse from the proxy itself: severity (`ERROR`/`FATAL`), SQLSTATE, message.
pub fn error_response(severity: &str, code: &str, message: &str) -> Vec<u8> {
    let mut b = Vec::new();
    for (f, v) in [
        (b'S', severity),
        (b'V', severity),
        (b'C', code),
        (b'M', message),
    ] {
        b.push(f);
        b.extend_from_slice(v.as_bytes());
        b.push(0);
    }
    b.push(0);
    encode(b'E', &b)
}

/// Fields of an ErrorResponse / NoticeResponse body.
pub fn error_fields(body: &[u8]) -> ErrInfo {
    let mut e = ErrInfo::default();
    let mut c = Cur::new(body);
    let mut s_sev = None;
    while let Some(f) = c.u8() {
        if f == 0 {
            break;
        }
        let Some(v) = c.cstr() else { break };
        let v = Some(lossy(v));
        match f {
            b'S' => s_sev = v,
            b'V' => e.severity = v,
            b'C' => e.sqlstate = v,
            b'M' => e.message = v,
            b'D' => e.detail = v,
            b'H' => e.hint = v,
            b'P' => e.position = v,
            b's' => e.schema = v,
            b't' => e.table = v,
            b'c' => e.column = v,
            b'n' => e.constraint = v,
            _ => {}
        }
    }
    if e.severity.is_none() {
        e.severity = s_sev;
    }
    e
}

/// `AuthenticationXXX` (`R`): the code and the rest of the body.
pub fn auth_request(body: &[u8]) -> Option<(i32, &[u8])> {
    let mut c = Cur::new(body);
    let code = c.i32()?;
    Some((code, c.rest()))
}

/// Mechanism names of an `AuthenticationSASL` body's data (after the code).
pub fn sasl_mechanisms(data: &[u8]) -> Vec<String> {
    let mut c = Cur::new(data);
    let mut out = Vec::new();
    while let Some(m) = c.cstr() {
        if m.is_empty() {
            break;
        }
        out.push(lossy(m));
    }
    out
}

/// An `AuthenticationSASL` message (tag and length included) offering `mechs` except every
/// `-PLUS` (channel-binding) mechanism, which cannot work through a proxy that terminates
/// TLS (anchors-db §4.3). `None` when nothing would be left.
pub fn sasl_without_plus(mechs: &[String]) -> Option<Vec<u8>> {
    let keep: Vec<&String> = mechs.iter().filter(|m| !m.ends_with("-PLUS")).collect();
    if keep.is_empty() {
        return None;
    }
    let mut body = 10i32.to_be_bytes().to_vec();
    for m in keep {
        body.extend_from_slice(m.as_bytes());
        body.push(0);
    }
    body.push(0);
    Some(encode(b'R', &body))
}

/// Name of an authentication request code (SPEC §11 `method`).
pub fn auth_method(code: i32) -> &'static str {
    match code {
        0 => "trust",
        3 => "password",
        5 => "md5",
        7 | 8 => "gss",
        9 => "sspi",
        10..=12 => "scram-sha-256",
        _ => "unknown",
    }
}

/// `Parse`: statement name, query bytes, parameter type OIDs.
pub fn parse_parse(body: &[u8]) -> Option<(String, &[u8], Vec<u32>)> {
    let mut c = Cur::new(body);
    let name = lossy(c.cstr()?);
    let q = c.cstr()?;
    let n = c.i16()?.max(0) as usize;
    let mut oids = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        oids.push(c.i32()? as u32);
    }
    Some((name, q, oids))
}

/// A bound value: `None` for NULL.
pub type Value<'a> = Option<&'a [u8]>;

/// `Bind`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal.
    pub portal: String,
    /// Source statement.
    pub stmt: String,
    /// Per-parameter format: true = binary. Empty when the format codes do not match the
    /// parameter count (then values are recorded as binary).
    pub binary: Vec<bool>,
    /// Values.
    pub values: Vec<Value<'a>>,
}

/// Parse `Bind`. Format codes: none = all text, one = for all, else one per parameter
/// (PostgreSQL docs, "Bind").
pub fn parse_bind(body: &[u8]) -> Option<Bind<'_>> {
    let mut c = Cur::new(body);
    let portal = lossy(c.cstr()?);
    let stmt = lossy(c.cstr()?);
    let nf = c.i16()?.max(0) as usize;
    let mut fmts = Vec::with_capacity(nf.min(1024));
    for _ in 0..nf {
        fmts.push(c.i16()? == 1);
    }
    let np = c.i16()?.max(0) as usize;
    let mut values = Vec::with_capacity(np.min(1024));
    for _ in 0..np {
        let len = c.i32()?;
        values.push(if len < 0 {
            None
        } else {
            Some(c.take(len as usize)?)
        });
    }
    let binary = match fmts.len() {
        0 => vec![false; np],
        1 => vec![fmts[0]; np],
        n if n == np => fmts,
        _ => vec![true; np],
    };
    Some(Bind {
        portal,
        stmt,
        binary,
        values,
    })
}

/// `Execute`: portal and row limit (0 = all).
pub fn parse_execute(body: &[u8]) -> Option<(String, u32)> {
    let mut c = Cur::new(body);
    let portal = lossy(c.cstr()?);
    let max = c.i32()?.max(0) as u32;
    Some((portal, max))
}

/// `Close` / `Describe`: `S` or `P`, and the name.
pub fn parse_target(body: &[u8]) -> Option<(u8, String)> {
    let mut c = Cur::new(body);
    let k = c.u8()?;
    Some((k, lossy(c.cstr()?)))
}

/// `FunctionCall`: function OID and arguments (with their formats).
pub fn parse_function_call(body: &[u8]) -> Option<(u32, Vec<bool>, Vec<Value<'_>>)> {
    let mut c = Cur::new(body);
    let oid = c.i32()? as u32;
    let nf = c.i16()?.max(0) as usize;
    let mut fmts = Vec::with_capacity(nf.min(1024));
    for _ in 0..nf {
        fmts.push(c.i16()? == 1);
    }
    let na = c.i16()?.max(0) as usize;
    let mut vals = Vec::with_capacity(na.min(1024));
    for _ in 0..na {
        let len = c.i32()?;
        vals.push(if len < 0 {
            None
        } else {
            Some(c.take(len as usize)?)
        });
    }
    let binary = match fmts.len() {
        0 => vec![false; na],
        1 => vec![fmts[0]; na],
        n if n == na => fmts,
        _ => vec![true; na],
    };
    Some((oid, binary, vals))
}

/// Row count of a CommandComplete tag: the last word of `INSERT oid n`, `DELETE n`,
/// `UPDATE n`, `MERGE n`, `SELECT n`, `MOVE n`, `FETCH n`, `COPY n`.
pub fn tag_rows(tag: &str) -> Option<u64> {
    let mut w = tag.split(' ');
    let verb = w.next()?;
    if !matches!(
        verb,
        "INSERT" | "DELETE" | "UPDATE" | "MERGE" | "SELECT" | "MOVE" | "FETCH" | "COPY"
    ) {
        return None;
    }
    tag.rsplit(' ').next()?.parse().ok()
}

/// Column names of a RowDescription, at most `max`.
pub fn row_description(body: &[u8], max: usize) -> Vec<String> {
    let mut c = Cur::new(body);
    let n = c.i16().unwrap_or(0).max(0) as usize;
    let mut out = Vec::new();
    for _ in 0..n.min(max) {
        let Some(name) = c.cstr() else { break };
        out.push(lossy(name));
        if c.take(18).is_none() {
            break;
        }
    }
    out
}

/// `ParameterStatus`: name and value.
pub fn parameter_status(body: &[u8]) -> Option<(String, String)> {
    let mut c = Cur::new(body);
    Some((lossy(c.cstr()?), lossy(c.cstr()?)))
}

/// A NUL-terminated string body (CommandComplete tag).
pub fn cstr_body(body: &[u8]) -> String {
    let mut c = Cur::new(body);
    c.cstr().map(lossy).unwrap_or_else(|| lossy(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sasl_plus_stripped_with_length_fixed() {
        let mut data = b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0".to_vec();
        let mechs = sasl_mechanisms(&data);
        assert_eq!(mechs, ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
        let m = sasl_without_plus(&mechs).unwrap();
        assert_eq!(&m[..5], b"R\0\0\0\x17");
        assert_eq!(&m[5..], b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        data.truncate(19);
        data.push(0);
        assert!(sasl_without_plus(&sasl_mechanisms(&data)).is_none());
    }

    #[test]
    fn bind_format_codes() {
        // portal "", stmt "s", one format code (binary) for both params, one NULL.
        let mut b = b"\0s\0\0\x01\0\x01\0\x02\0\0\0\x04\0\0\0\x2a\xff\xff\xff\xff\0\0".to_vec();
        let p = parse_bind(&b).unwrap();
        assert_eq!(p.binary, [true, true]);
        assert_eq!(p.values, [Some(&b"\0\0\0\x2a"[..]), None]);
        b.truncate(10);
        assert!(parse_bind(&b).is_none());
    }

    #[test]
    fn tags_and_errors() {
        assert_eq!(tag_rows("INSERT 0 2"), Some(2));
        assert_eq!(tag_rows("SELECT 2000000"), Some(2_000_000));
        assert_eq!(tag_rows("ROLLBACK"), None);
        let e = error_fields(b"SERROR\0VERROR\0C22012\0Mdivision by zero\0P8\0\0");
        assert_eq!(e.sqlstate.as_deref(), Some("22012"));
        assert_eq!(e.position.as_deref(), Some("8"));
        let r = error_response("FATAL", "08006", "x");
        assert_eq!(error_fields(&r[5..]).severity.as_deref(), Some("FATAL"));
    }

    #[test]
    fn startup_round_trip() {
        let params = vec![("user".to_string(), "app".to_string())];
        let m = Startup::encode_message(3, 0, &params);
        assert_eq!(
            Startup::parse(&m[4..]),
            Some(Startup::Message {
                major: 3,
                minor: 0,
                params
            })
        );
        let c = encode_cancel(7, b"kkkk");
        assert_eq!(
            Startup::parse(&c[4..]),
            Some(Startup::Cancel {
                pid: 7,
                key: b"kkkk".to_vec()
            })
        );
    }
}
