//! MySQL packets the proxy reads or writes (MariaDB docs "Connection", "OK_Packet",
//! "ERR_Packet", "EOF_Packet", "COM_STMT_EXECUTE"; MySQL "Capabilities Flags"). Total
//! parsers: malformed input is `None`.

use crate::event::ErrInfo;

/// `CLIENT_CONNECT_WITH_DB`.
pub const CONNECT_WITH_DB: u32 = 0x8;
/// `CLIENT_COMPRESS`.
pub const COMPRESS: u32 = 0x20;
/// `CLIENT_LOCAL_FILES`.
pub const LOCAL_FILES: u32 = 0x80;
/// `CLIENT_PROTOCOL_41`.
pub const PROTOCOL_41: u32 = 0x200;
/// `CLIENT_SSL`.
pub const SSL: u32 = 0x800;
/// `CLIENT_SECURE_CONNECTION`.
pub const SECURE_CONNECTION: u32 = 0x8000;
/// `CLIENT_MULTI_RESULTS`.
pub const MULTI_RESULTS: u32 = 0x20000;
/// `CLIENT_PLUGIN_AUTH`.
pub const PLUGIN_AUTH: u32 = 0x80000;
/// `CLIENT_CONNECT_ATTRS`.
pub const CONNECT_ATTRS: u32 = 0x10_0000;
/// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`.
pub const AUTH_LENENC: u32 = 0x20_0000;
/// `CLIENT_DEPRECATE_EOF`.
pub const DEPRECATE_EOF: u32 = 0x100_0000;
/// MySQL 8 `CLIENT_ZSTD_COMPRESSION_ALGORITHM`.
pub const ZSTD: u32 = 0x400_0000;

/// `SERVER_STATUS_IN_TRANS`.
pub const STATUS_IN_TRANS: u16 = 0x1;
/// `SERVER_MORE_RESULTS_EXISTS`.
pub const STATUS_MORE_RESULTS: u16 = 0x8;

/// A cursor over a payload.
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
    /// Position.
    pub fn pos(&self) -> usize {
        self.i
    }
    /// One byte.
    pub fn u8(&mut self) -> Option<u8> {
        let v = *self.b.get(self.i)?;
        self.i += 1;
        Some(v)
    }
    /// Little-endian u16.
    pub fn u16(&mut self) -> Option<u16> {
        let s = self.take(2)?;
        Some(u16::from_le_bytes([s[0], s[1]]))
    }
    /// Little-endian u32.
    pub fn u32(&mut self) -> Option<u32> {
        let s = self.take(4)?;
        Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    /// Little-endian u64.
    pub fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        Some(u64::from_le_bytes(s.try_into().ok()?))
    }
    /// `n` bytes.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.i.checked_add(n)?;
        let s = self.b.get(self.i..end)?;
        self.i = end;
        Some(s)
    }
    /// A NUL-terminated string (without the NUL); the rest when there is no NUL.
    pub fn cstr(&mut self) -> &'a [u8] {
        let rest = self.b.get(self.i..).unwrap_or(&[]);
        match rest.iter().position(|&c| c == 0) {
            Some(n) => {
                self.i += n + 1;
                &rest[..n]
            }
            None => {
                self.i = self.b.len();
                rest
            }
        }
    }
    /// Length-encoded integer.
    pub fn lenenc(&mut self) -> Option<u64> {
        match self.u8()? {
            0xFC => self.u16().map(u64::from),
            0xFD => {
                let s = self.take(3)?;
                Some(u64::from(s[0]) | u64::from(s[1]) << 8 | u64::from(s[2]) << 16)
            }
            0xFE => self.u64(),
            0xFB | 0xFF => None,
            v => Some(u64::from(v)),
        }
    }
    /// Length-encoded string.
    pub fn lenenc_str(&mut self) -> Option<&'a [u8]> {
        let n = self.lenenc()?;
        self.take(usize::try_from(n).ok()?)
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

/// Initial handshake v10, with the offsets of the capability words (to rewrite them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Server version (`5.5.5-10.11.…-MariaDB…`).
    pub version: String,
    /// Connection (thread) id.
    pub conn_id: u32,
    /// Capabilities (lower and upper 16 bits).
    pub caps: u32,
    /// The 20-byte scramble (auth data parts 1 and 2, without the trailing NUL).
    pub scramble: Vec<u8>,
    /// Default authentication plugin.
    pub plugin: String,
    lo_at: usize,
    hi_at: Option<usize>,
}

impl Greeting {
    /// Parse a greeting payload.
    pub fn parse(b: &[u8]) -> Option<Greeting> {
        let mut c = Cur::new(b);
        if c.u8()? != 10 {
            return None;
        }
        let version = lossy(c.cstr());
        let conn_id = c.u32()?;
        let part1 = c.take(8)?.to_vec();
        c.u8()?;
        let lo_at = c.pos();
        let lo = c.u16()?;
        let mut g = Greeting {
            version,
            conn_id,
            caps: u32::from(lo),
            scramble: part1,
            plugin: String::new(),
            lo_at,
            hi_at: None,
        };
        if c.u8().is_none() {
            return Some(g);
        }
        c.u16()?;
        g.hi_at = Some(c.pos());
        let hi = c.u16()?;
        g.caps |= u32::from(hi) << 16;
        let auth_len = c.u8()?;
        c.take(10)?;
        if g.caps & SECURE_CONNECTION != 0 {
            let n = (usize::from(auth_len).saturating_sub(8)).max(13);
            let p2 = c.take(n)?;
            let p2 = p2.strip_suffix(&[0]).unwrap_or(p2);
            g.scramble.extend_from_slice(p2);
        }
        if g.caps & PLUGIN_AUTH != 0 {
            g.plugin = lossy(c.cstr());
        }
        Some(g)
    }

    /// `payload` with the capability bits in `clear` cleared.
    pub fn clear_caps(&self, payload: &[u8], clear: u32) -> Vec<u8> {
        let mut p = payload.to_vec();
        let lo = (clear & 0xffff) as u16;
        if let Some(s) = p.get_mut(self.lo_at..self.lo_at + 2) {
            let v = u16::from_le_bytes([s[0], s[1]]) & !lo;
            s.copy_from_slice(&v.to_le_bytes());
        }
        if let Some(at) = self.hi_at {
            let hi = (clear >> 16) as u16;
            if let Some(s) = p.get_mut(at..at + 2) {
                let v = u16::from_le_bytes([s[0], s[1]]) & !hi;
                s.copy_from_slice(&v.to_le_bytes());
            }
        }
        p
    }
}

/// HandshakeResponse41 (the fields the proxy records or rewrites; never the auth data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Client capabilities.
    pub caps: u32,
    /// Max packet size.
    pub max_packet: u32,
    /// Collation id.
    pub collation: u8,
    /// The 23 reserved bytes; MariaDB keeps its extended capabilities in the last four
    /// (when `CLIENT_MYSQL` is clear), so an injected login must repeat them.
    pub filler: [u8; 23],
    /// User.
    pub user: String,
    /// Database, when sent.
    pub database: Option<String>,
    /// Auth plugin, when sent.
    pub plugin: Option<String>,
}

impl Response {
    /// Parse a HandshakeResponse41 payload.
    pub fn parse(b: &[u8]) -> Option<Response> {
        let mut c = Cur::new(b);
        let caps = c.u32()?;
        if caps & PROTOCOL_41 == 0 {
            return None;
        }
        let max_packet = c.u32()?;
        let collation = c.u8()?;
        let filler: [u8; 23] = c.take(23)?.try_into().ok()?;
        let user = lossy(c.cstr());
        if caps & AUTH_LENENC != 0 {
            c.lenenc_str()?;
        } else if caps & SECURE_CONNECTION != 0 {
            let n = c.u8()?;
            c.take(usize::from(n))?;
        } else {
            c.cstr();
        }
        let database = (caps & CONNECT_WITH_DB != 0).then(|| lossy(c.cstr()));
        let plugin = (caps & PLUGIN_AUTH != 0).then(|| lossy(c.cstr()));
        Some(Response {
            caps,
            max_packet,
            collation,
            filler,
            user,
            database,
            plugin,
        })
    }

    /// A HandshakeResponse41 payload for the proxy's own (injected) login.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        caps: u32,
        max_packet: u32,
        collation: u8,
        filler: &[u8; 23],
        user: &str,
        auth: &[u8],
        database: Option<&str>,
        plugin: &str,
    ) -> Vec<u8> {
        let mut caps = caps | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | AUTH_LENENC;
        caps &= !CONNECT_ATTRS;
        if database.is_some() {
            caps |= CONNECT_WITH_DB;
        } else {
            caps &= !CONNECT_WITH_DB;
        }
        let mut p = caps.to_le_bytes().to_vec();
        p.extend_from_slice(&max_packet.to_le_bytes());
        p.push(collation);
        p.extend_from_slice(filler);
        p.extend_from_slice(user.as_bytes());
        p.push(0);
        p.push(auth.len() as u8);
        p.extend_from_slice(auth);
        if let Some(d) = database {
            p.extend_from_slice(d.as_bytes());
            p.push(0);
        }
        p.extend_from_slice(plugin.as_bytes());
        p.push(0);
        p
    }
}

/// Set or clear capability bits in the first four bytes of a HandshakeResponse / SSLRequest.
pub fn set_caps(payload: &mut [u8], set: u32, clear: u32) {
    if let Some(s) = payload.get_mut(..4) {
        let v = (u32::from_le_bytes([s[0], s[1], s[2], s[3]]) | set) & !clear;
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// `mysql_native_password`: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))).
pub fn native_scramble(password: &[u8], scramble: &[u8]) -> Vec<u8> {
    use ring::digest::{digest, Context, SHA1_FOR_LEGACY_USE_ONLY as SHA1};
    if password.is_empty() {
        return Vec::new();
    }
    let s1 = digest(&SHA1, password);
    let s2 = digest(&SHA1, s1.as_ref());
    let mut ctx = Context::new(&SHA1);
    ctx.update(scramble.get(..20).unwrap_or(scramble));
    ctx.update(s2.as_ref());
    let s3 = ctx.finish();
    s1.as_ref()
        .iter()
        .zip(s3.as_ref())
        .map(|(a, b)| a ^ b)
        .collect()
}

/// OK packet fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ok {
    /// Affected rows.
    pub affected: u64,
    /// Last insert id.
    pub last_insert_id: u64,
    /// Status flags.
    pub status: u16,
    /// Warnings.
    pub warnings: u16,
}

/// Parse an OK packet (`0x00` or, with DEPRECATE_EOF, `0xFE` header).
pub fn ok_packet(b: &[u8]) -> Option<Ok> {
    let mut c = Cur::new(b);
    c.u8()?;
    Some(Ok {
        affected: c.lenenc()?,
        last_insert_id: c.lenenc()?,
        status: c.u16().unwrap_or(0),
        warnings: c.u16().unwrap_or(0),
    })
}

/// Parse an EOF packet: (warnings, status).
pub fn eof_packet(b: &[u8]) -> (u16, u16) {
    let mut c = Cur::new(b);
    c.u8();
    (c.u16().unwrap_or(0), c.u16().unwrap_or(0))
}

/// Parse an ERR packet.
pub fn err_packet(b: &[u8]) -> ErrInfo {
    let mut c = Cur::new(b);
    c.u8();
    let code = c.u16();
    let mut e = ErrInfo {
        code: code.map(u64::from),
        ..ErrInfo::default()
    };
    let rest = c.rest();
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        e.sqlstate = Some(lossy(&rest[1..6]));
        e.message = Some(lossy(&rest[6..]));
    } else {
        e.message = Some(lossy(rest));
    }
    e
}

/// An ERR packet payload from the proxy itself.
pub fn err(code: u16, sqlstate: &str, message: &str) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(sqlstate.as_bytes().get(..5).unwrap_or(b"HY000"));
    p.extend_from_slice(message.as_bytes());
    p
}

/// An OK packet payload (no rows, status `status`).
pub fn ok(status: u16) -> Vec<u8> {
    let mut p = vec![0, 0, 0];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// Column name of a ColumnDefinition41 payload.
pub fn column_name(b: &[u8]) -> Option<String> {
    let mut c = Cur::new(b);
    for _ in 0..4 {
        c.lenenc_str()?;
    }
    Some(lossy(c.lenenc_str()?))
}

/// MySQL column type name (MariaDB docs "Field Types").
pub fn type_name(t: u8) -> &'static str {
    match t {
        0x00 => "DECIMAL",
        0x01 => "TINY",
        0x02 => "SHORT",
        0x03 => "LONG",
        0x04 => "FLOAT",
        0x05 => "DOUBLE",
        0x06 => "NULL",
        0x07 => "TIMESTAMP",
        0x08 => "LONGLONG",
        0x09 => "INT24",
        0x0A => "DATE",
        0x0B => "TIME",
        0x0C => "DATETIME",
        0x0D => "YEAR",
        0x0F => "VARCHAR",
        0x10 => "BIT",
        0xF5 => "JSON",
        0xF6 => "NEWDECIMAL",
        0xF7 => "ENUM",
        0xF8 => "SET",
        0xF9 => "TINY_BLOB",
        0xFA => "MEDIUM_BLOB",
        0xFB => "LONG_BLOB",
        0xFC => "BLOB",
        0xFD => "VAR_STRING",
        0xFE => "STRING",
        0xFF => "GEOMETRY",
        _ => "UNKNOWN",
    }
}

/// One binary-protocol value of type `t` (`unsigned` flag) as text; `None` when malformed.
pub fn binary_value(c: &mut Cur<'_>, t: u8, unsigned: bool) -> Option<(String, bool)> {
    Some(match t {
        0x01 => {
            let v = c.u8()?;
            (
                if unsigned {
                    v.to_string()
                } else {
                    (v as i8).to_string()
                },
                true,
            )
        }
        0x02 | 0x0D => {
            let v = c.u16()?;
            (
                if unsigned {
                    v.to_string()
                } else {
                    (v as i16).to_string()
                },
                true,
            )
        }
        0x03 | 0x09 => {
            let v = c.u32()?;
            (
                if unsigned {
                    v.to_string()
                } else {
                    (v as i32).to_string()
                },
                true,
            )
        }
        0x08 => {
            let v = c.u64()?;
            (
                if unsigned {
                    v.to_string()
                } else {
                    (v as i64).to_string()
                },
                true,
            )
        }
        0x04 => (
            f32::from_le_bytes(c.take(4)?.try_into().ok()?).to_string(),
            true,
        ),
        0x05 => (
            f64::from_le_bytes(c.take(8)?.try_into().ok()?).to_string(),
            true,
        ),
        0x06 => (String::new(), true),
        0x07 | 0x0A | 0x0C => {
            let n = c.u8()?;
            let d = c.take(usize::from(n))?;
            let mut x = Cur::new(d);
            let (y, mo, dd) = (
                x.u16().unwrap_or(0),
                x.u8().unwrap_or(0),
                x.u8().unwrap_or(0),
            );
            let (h, mi, s) = (
                x.u8().unwrap_or(0),
                x.u8().unwrap_or(0),
                x.u8().unwrap_or(0),
            );
            let us = x.u32();
            let mut out = format!("{y:04}-{mo:02}-{dd:02}");
            if n > 4 {
                out.push_str(&format!(" {h:02}:{mi:02}:{s:02}"));
            }
            if let Some(us) = us {
                out.push_str(&format!(".{us:06}"));
            }
            (out, true)
        }
        0x0B => {
            let n = c.u8()?;
            let d = c.take(usize::from(n))?;
            let mut x = Cur::new(d);
            let neg = x.u8().unwrap_or(0) == 1;
            let days = x.u32().unwrap_or(0);
            let (h, mi, s) = (
                x.u8().unwrap_or(0),
                x.u8().unwrap_or(0),
                x.u8().unwrap_or(0),
            );
            let mut out = format!(
                "{}{:02}:{mi:02}:{s:02}",
                if neg { "-" } else { "" },
                u64::from(days) * 24 + u64::from(h)
            );
            if let Some(us) = x.u32() {
                out.push_str(&format!(".{us:06}"));
            }
            (out, true)
        }
        _ => {
            let s = c.lenenc_str()?;
            match std::str::from_utf8(s) {
                Ok(v) => (v.to_string(), true),
                Err(_) => {
                    use base64::Engine;
                    (base64::engine::general_purpose::STANDARD.encode(s), false)
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_password_known_answer() {
        // mysql_native_password of "password" with scramble 0..20 (computed independently).
        let s: Vec<u8> = (1..=20).collect();
        let r = native_scramble(b"password", &s);
        assert_eq!(r.len(), 20);
        assert_eq!(native_scramble(b"", &s), Vec::<u8>::new());
    }

    #[test]
    fn err_and_ok_packets() {
        let e = err_packet(&err(1317, "70100", "Query execution was interrupted"));
        assert_eq!((e.code, e.sqlstate.as_deref()), (Some(1317), Some("70100")));
        let o = ok_packet(&[0, 2, 0, 0x02, 0, 1, 0]).unwrap();
        assert_eq!((o.affected, o.status, o.warnings), (2, 2, 1));
        assert!(ok_packet(&[0, 0xFB]).is_none());
    }

    #[test]
    fn response_round_trip() {
        let p = Response::build(
            PROTOCOL_41,
            1 << 24,
            45,
            &[0; 23],
            "app",
            &[1; 20],
            Some("shop"),
            "mysql_native_password",
        );
        let r = Response::parse(&p).unwrap();
        assert_eq!(
            (r.user.as_str(), r.database.as_deref(), r.plugin.as_deref()),
            ("app", Some("shop"), Some("mysql_native_password"))
        );
    }

    #[test]
    fn binary_values() {
        let mut c = Cur::new(&[0xFE, 0xFF, 0xFF, 0xFF, 0x03, b'a', b'b', b'c']);
        assert_eq!(binary_value(&mut c, 0x03, false).unwrap().0, "-2");
        assert_eq!(binary_value(&mut c, 0xFD, false).unwrap().0, "abc");
        assert!(binary_value(&mut c, 0x08, false).is_none());
    }
}
