//! The tokio relay: one task pair per client connection, bounded buffers (one 64 KiB read
//! per direction in flight: a side that does not read stops the other from reading), the
//! sans-I/O state machines in between, and the [`EventSink`] written **before** a chunk that
//! completes a statement is forwarded (write-ahead). A failed write refuses the statement
//! (SQLSTATE 08006 / MySQL ERR 2013-style packet) and closes the connection.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::watch;

use crate::config::{Credentials, Protocol, Secret, Target, TlsMode};
use crate::event::{self, ConnCtx, ErrInfo, Now, Obj};
use crate::pg::conn::{ClientNote, Conn};
use crate::pg::frame::Framer;
use crate::pg::msg::{self, Startup};
use crate::sink::{EventSink, SinkError};
use crate::tls::{self, TlsInfo};

/// Bytes read per direction at a time.
pub const CHUNK: usize = 64 * 1024;
/// Largest startup or authentication message accepted.
pub(crate) const AUTH_MAX: usize = 64 * 1024;
/// Largest kept client message (statement text, Bind); longer ones stream through.
pub(crate) const CLIENT_CAP: usize = 1 << 20;
/// Largest kept server message.
pub(crate) const SERVER_CAP: usize = 1 << 20;

/// Why a connection could not be relayed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// Socket I/O.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// TLS setup or handshake.
    #[error("TLS: {0}")]
    Tls(String),
    /// The recording failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The upstream refused something the target requires.
    #[error("upstream: {0}")]
    Upstream(String),
}

/// Where a connection's events go, opened when the connection first has something to record
/// (a forwarded cancel request records into the connection it cancels instead).
pub struct Opened {
    /// The recording.
    pub sink: Arc<dyn EventSink>,
    /// Connection number in it.
    pub c: u64,
    /// Its session id (for `application_name`).
    pub session_id: String,
}

/// Opens the recording of one connection.
pub type Opener = Box<dyn FnOnce() -> Result<Opened, SinkError> + Send>;

struct CancelEntry {
    key: Vec<u8>,
    sink: Arc<dyn EventSink>,
    c: u64,
    conn: Arc<Mutex<Conn>>,
}

/// One target as the relay uses it: settings, TLS client configuration, injected secret,
/// the uid allowed on the socket, and the cancel keys of this proxy's connections.
pub struct Proxy {
    /// Target name (`[db.<name>]`).
    pub name: String,
    /// Its settings.
    pub target: Target,
    pub(crate) tls: Option<Arc<rustls::ClientConfig>>,
    pub(crate) secret: Option<Secret>,
    /// The only uid allowed to connect (`SO_PEERCRED`).
    pub allowed_uid: u32,
    cancels: Mutex<HashMap<u32, CancelEntry>>,
    origin: Instant,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Proxy {
    /// Prepare a target: loads the CA bundle (unless `tls = "disable"`) and the injected
    /// credentials (with `credentials = "injected"`).
    ///
    /// # Errors
    /// [`RelayError::Tls`] for the CA file; [`RelayError::Upstream`] for the credentials file.
    pub fn new(name: &str, target: Target, allowed_uid: u32) -> Result<Proxy, RelayError> {
        let tls = match target.tls {
            TlsMode::VerifyFull => Some(tls::client_config(target.ca_file())?),
            TlsMode::Disable => None,
        };
        let secret = match (target.credentials, &target.credentials_file) {
            (Credentials::Injected, Some(p)) => {
                Some(Secret::load(p).map_err(|e| RelayError::Upstream(e.to_string()))?)
            }
            _ => None,
        };
        Ok(Proxy {
            name: name.to_string(),
            target,
            tls,
            secret,
            allowed_uid,
            cancels: Mutex::new(HashMap::new()),
            origin: Instant::now(),
        })
    }

    pub(crate) fn now(&self) -> Now {
        Now::system(self.origin)
    }

    pub(crate) fn ctx(&self, c: u64) -> ConnCtx {
        ConnCtx {
            c,
            proto: self.target.protocol.tag(),
            params: self.target.params,
            sql_max: self.target.sql_max,
        }
    }

    /// Open the upstream connection: TCP, then (PostgreSQL) SSLRequest and `'S'`, or
    /// (MySQL) nothing yet. Returns the stream and the address connected to.
    pub(crate) async fn tcp(&self) -> Result<(TcpStream, String), RelayError> {
        let t = &self.target;
        let d = Duration::from_secs(t.connect_timeout_secs.max(1));
        let s = tokio::time::timeout(d, TcpStream::connect((t.host.as_str(), t.port())))
            .await
            .map_err(|_| {
                RelayError::Upstream(format!("connect to {}:{} timed out", t.host, t.port()))
            })??;
        s.set_nodelay(true)?;
        let addr = s.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        Ok((s, addr))
    }

    async fn pg_upstream(&self) -> Result<(Box<dyn Stream>, String, Option<TlsInfo>), RelayError> {
        let (mut s, addr) = self.tcp().await?;
        let Some(cfg) = &self.tls else {
            return Ok((Box::new(s), addr, None));
        };
        let mut req = 8u32.to_be_bytes().to_vec();
        req.extend_from_slice(&msg::SSL_REQUEST.to_be_bytes());
        s.write_all(&req).await?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await?;
        match b[0] {
            // Exactly one byte was read: anything the server sent after 'S' is TLS input,
            // never plaintext we would trust (CVE-2021-23222).
            b'S' => {}
            b'N' => {
                return Err(RelayError::Upstream(
                    "server refused TLS (answered 'N' to SSLRequest)".into(),
                ))
            }
            o => {
                return Err(RelayError::Upstream(format!(
                    "unexpected answer 0x{o:02x} to SSLRequest"
                )))
            }
        }
        let d = Duration::from_secs(self.target.connect_timeout_secs.max(1));
        let (tls, info) =
            tokio::time::timeout(d, tls::connect(cfg.clone(), self.target.server_name(), s))
                .await
                .map_err(|_| RelayError::Tls("handshake timed out".into()))??;
        Ok((Box::new(tls), addr, Some(info)))
    }
}

/// An upstream byte stream (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Peer facts of a client connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// uid from `SO_PEERCRED`.
    pub uid: u32,
    /// pid from `SO_PEERCRED`, when known.
    pub pid: Option<i32>,
}

pub(crate) fn client_obj(peer: Peer) -> Obj {
    let mut o = Obj::new();
    o.str("transport", "unix")
        .u64("peer_uid", u64::from(peer.uid));
    if let Some(p) = peer.pid {
        o.u64("peer_pid", p.max(0) as u64);
    }
    o
}

/// Record one event list, in order, write-ahead (before forwarding what they describe).
pub(crate) fn record(sink: &dyn EventSink, evs: &mut Vec<String>) -> Result<(), SinkError> {
    for e in evs.drain(..) {
        sink.record(&e)?;
    }
    Ok(())
}

/// Record outcome events, in order ([`EventSink::note`]).
pub(crate) fn note(sink: &dyn EventSink, evs: &mut Vec<String>) -> Result<(), SinkError> {
    for e in evs.drain(..) {
        sink.note(&e)?;
    }
    Ok(())
}

/// How a connection ended (`db.close` `reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `terminate`, `client_eof`, `server_eof`, `error`, `session_end`, `refused`,
    /// `cancel`, `auth_failed`.
    pub reason: &'static str,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// Whether this connection opened a recording (false for a forwarded cancel request).
    pub recorded: bool,
}

/// Serve one client connection of `proxy` until it ends. Never panics on input; every
/// outcome is also recorded (`db.close`).
pub async fn handle(
    proxy: Arc<Proxy>,
    client: UnixStream,
    open: Opener,
    shutdown: watch::Receiver<bool>,
) -> Outcome {
    let peer = match client.peer_cred() {
        Ok(c) => Peer {
            uid: c.uid(),
            pid: c.pid(),
        },
        Err(e) => {
            return Outcome {
                reason: "error",
                error: Some(format!("SO_PEERCRED: {e}")),
                recorded: false,
            };
        }
    };
    if peer.uid != proxy.allowed_uid {
        // Refused before reading a byte; the attempt is recorded.
        let msg = format!(
            "peer uid {} is not the session user (uid {})",
            peer.uid, proxy.allowed_uid
        );
        return match open() {
            Ok(o) => {
                let mut e = event::start(
                    "db.refused",
                    o.c,
                    proxy.target.protocol.tag(),
                    proxy.now().wall_us,
                );
                e.obj("client", client_obj(peer))
                    .str("target", &proxy.name)
                    .str("reason", &msg);
                let _ = o.sink.record(&e.finish());
                Outcome {
                    reason: "refused",
                    error: Some(msg),
                    recorded: true,
                }
            }
            Err(e) => Outcome {
                reason: "refused",
                error: Some(format!("{msg}; recording failed: {e}")),
                recorded: false,
            },
        };
    }
    match proxy.target.protocol {
        Protocol::Postgres => pg_handle(proxy, client, peer, open, shutdown).await,
        Protocol::Mysql => crate::mysql::relay::handle(proxy, client, peer, open, shutdown).await,
    }
}

async fn read_startup(c: &mut UnixStream) -> Result<Vec<u8>, RelayError> {
    let mut len = [0u8; 4];
    c.read_exact(&mut len).await?;
    if len[0] == 0x16 {
        return Err(RelayError::Protocol(
            "direct TLS (first byte 0x16) is not accepted on the socket".into(),
        ));
    }
    let n = u32::from_be_bytes(len) as usize;
    if !(8..=AUTH_MAX).contains(&n) {
        return Err(RelayError::Protocol(format!("startup packet length {n}")));
    }
    let mut body = vec![0u8; n - 4];
    c.read_exact(&mut body).await?;
    Ok(body)
}

/// Read one tagged message (authentication phase), at most `AUTH_MAX` bytes.
async fn read_msg<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> Result<(u8, Vec<u8>), RelayError> {
    let mut h = [0u8; 5];
    r.read_exact(&mut h).await?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    if !(4..=AUTH_MAX).contains(&len) {
        return Err(RelayError::Protocol(format!(
            "message '{}' length {len} in the authentication phase",
            char::from(h[0]).escape_default()
        )));
    }
    let mut body = vec![0u8; len - 4];
    r.read_exact(&mut body).await?;
    Ok((h[0], body))
}

fn app_name(client_app: &str, session: &str) -> String {
    let tag = format!("sealcast:{session}");
    let room = 63usize.saturating_sub(tag.len() + 1);
    let mut app: &str = client_app.trim();
    if app.len() > room {
        let mut cut = room;
        while !app.is_char_boundary(cut) {
            cut -= 1;
        }
        app = &app[..cut];
    }
    if app.is_empty() {
        tag
    } else {
        format!("{app} {tag}")
    }
}

/// Startup parameters recorded in `db.open` (others are counted, not recorded).
const STARTUP_RECORDED: &[&str] = &[
    "user",
    "database",
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "options",
    "replication",
];

async fn pg_handle(
    proxy: Arc<Proxy>,
    mut client: UnixStream,
    peer: Peer,
    open: Opener,
    shutdown: watch::Receiver<bool>,
) -> Outcome {
    let mut ssl_req = false;
    let mut gss_req = false;
    // Startup packets: SSLRequest / GSSENCRequest are answered 'N' (the socket is private;
    // an encrypted client leg could not be recorded), CancelRequest is handled apart.
    let startup = loop {
        let body = match read_startup(&mut client).await {
            Ok(b) => b,
            Err(e) => {
                let err = e.to_string();
                if let Ok(o) = open() {
                    let mut ev = event::start("db.proto_error", o.c, "pg", proxy.now().wall_us);
                    ev.str("dir", "c2s").str("detail", &err);
                    let _ = o.sink.record(&ev.finish());
                    let mut ev = event::start("db.close", o.c, "pg", proxy.now().wall_us);
                    ev.str("reason", "error")
                        .obj("err", ErrInfo::msg(&err).obj());
                    let _ = o.sink.record(&ev.finish());
                    return Outcome {
                        reason: "error",
                        error: Some(err),
                        recorded: true,
                    };
                }
                return Outcome {
                    reason: "error",
                    error: Some(err),
                    recorded: false,
                };
            }
        };
        match Startup::parse(&body) {
            Some(Startup::Ssl) => {
                ssl_req = true;
                if client.write_all(b"N").await.is_err() {
                    return Outcome {
                        reason: "client_eof",
                        error: None,
                        recorded: false,
                    };
                }
            }
            Some(Startup::GssEnc) => {
                gss_req = true;
                if client.write_all(b"N").await.is_err() {
                    return Outcome {
                        reason: "client_eof",
                        error: None,
                        recorded: false,
                    };
                }
            }
            Some(Startup::Cancel { pid, key }) => {
                return pg_cancel(&proxy, pid, &key, peer, open).await
            }
            Some(Startup::Message {
                major,
                minor,
                params,
            }) => break (major, minor, params),
            other => {
                let err = format!("unsupported startup packet {other:?}");
                let _ = client
                    .write_all(&msg::error_response("FATAL", "08P01", &err))
                    .await;
                return Outcome {
                    reason: "error",
                    error: Some(err),
                    recorded: false,
                };
            }
        }
    };
    let opened = match open() {
        Ok(o) => o,
        Err(e) => {
            let m = format!("sealcast: recording unavailable ({e}); connection refused");
            let _ = client
                .write_all(&msg::error_response("FATAL", "08006", &m))
                .await;
            return Outcome {
                reason: "error",
                error: Some(m),
                recorded: false,
            };
        }
    };
    let sink = opened.sink.clone();
    let c = opened.c;
    let t_open = proxy.now();
    let (major, minor, params) = startup;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut start = Obj::new();
    for k in STARTUP_RECORDED {
        if let Some(v) = get(k) {
            start.str(k, &v);
        }
    }
    start.str("protocol", &format!("{major}.{minor}"));
    let n_other = params
        .iter()
        .filter(|(k, _)| !STARTUP_RECORDED.contains(&k.as_str()))
        .count();
    if n_other > 0 {
        start.u64("params_other", n_other as u64);
    }
    let fail = |reason: &'static str, err: String| Outcome {
        reason,
        error: Some(err),
        recorded: true,
    };
    let close_ev = |reason: &str, err: Option<&str>, extra: Option<(&Conn, u64)>| {
        let mut ev = event::start("db.close", c, "pg", proxy.now().wall_us);
        ev.str("reason", reason);
        if let Some(e) = err {
            ev.obj("err", ErrInfo::msg(e).obj());
        }
        if let Some((conn, t0)) = extra {
            ev.u64("stmts", conn.stats.stmts)
                .u64("errors", conn.stats.errors)
                .u64("bytes_c2s", conn.stats.bytes_c2s)
                .u64("bytes_s2c", conn.stats.bytes_s2c)
                .u64("dur_us", proxy.now().mono_us.saturating_sub(t0));
        }
        ev.finish()
    };

    let injected = proxy.target.credentials == Credentials::Injected;
    if get("replication").is_some_and(|v| v != "false" && v != "off" && v != "0" && v != "no") {
        let m = "sealcast: replication connections are refused";
        let mut ev = event::start("db.open", c, "pg", t_open.wall_us);
        ev.obj("client", client_obj(peer))
            .str("target", &proxy.name)
            .obj("startup", start.clone())
            .str(
                "auth_mode",
                if injected { "injected" } else { "passthrough" },
            );
        let _ = sink.record(&ev.finish());
        let mut ev = event::start("db.auth", c, "pg", proxy.now().wall_us);
        ev.str("method", "none").bool("ok", false).obj(
            "err",
            ErrInfo {
                sqlstate: Some("28000".into()),
                message: Some(m.into()),
                ..ErrInfo::default()
            }
            .obj(),
        );
        let _ = sink.record(&ev.finish());
        let _ = sink.record(&close_ev("refused", Some(m), None));
        let _ = client
            .write_all(&msg::error_response("FATAL", "28000", m))
            .await;
        return fail("refused", m.into());
    }

    // Upstream.
    let up = proxy.pg_upstream().await;
    let mut ev = event::start("db.open", c, "pg", t_open.wall_us);
    ev.obj("client", client_obj(peer))
        .str("target", &proxy.name);
    let mut upo = Obj::new();
    upo.str("host", &proxy.target.host)
        .u64("port", u64::from(proxy.target.port()));
    match &up {
        Ok((_, addr, tls)) => {
            upo.str("addr", addr);
            match tls {
                Some(t) => upo.obj("tls", t.obj()),
                None => upo.bool("tls", false),
            };
        }
        Err(e) => {
            upo.str("error", &e.to_string());
        }
    }
    ev.obj("upstream", upo).obj("startup", start).str(
        "auth_mode",
        if injected { "injected" } else { "passthrough" },
    );
    ev.flag("client_tls_requested", ssl_req)
        .flag("gss_requested", gss_req);
    ev.u64(
        "connect_us",
        proxy.now().mono_us.saturating_sub(t_open.mono_us),
    );
    if let Err(e) = sink.record(&ev.finish()) {
        let m = format!("sealcast: recording failed ({e}); connection refused");
        let _ = client
            .write_all(&msg::error_response("FATAL", "08006", &m))
            .await;
        return fail("error", m);
    }
    let (mut upstream, _, _) = match up {
        Ok(u) => u,
        Err(e) => {
            let m = format!("sealcast: cannot reach the database: {e}");
            let _ = sink.record(&close_ev("error", Some(&m), None));
            let _ = client
                .write_all(&msg::error_response("FATAL", "08001", &m))
                .await;
            return fail("error", m);
        }
    };

    // Startup upstream: application_name carries the session id; injected credentials
    // replace user (and database).
    let mut fwd: Vec<(String, String)> = Vec::new();
    for (k, v) in &params {
        if k == "application_name" {
            continue;
        }
        if injected && (k == "user" || k == "database") {
            continue;
        }
        fwd.push((k.clone(), v.clone()));
    }
    if let Some(s) = &proxy.secret {
        fwd.insert(0, ("user".into(), s.user.clone()));
        let db = s
            .database
            .clone()
            .or_else(|| proxy.target.database.clone())
            .or_else(|| get("database"));
        if let Some(db) = db {
            fwd.insert(1, ("database".into(), db));
        }
    } else if let Some(db) = &proxy.target.database {
        fwd.retain(|(k, _)| k != "database");
        fwd.push(("database".into(), db.clone()));
    }
    fwd.push((
        "application_name".into(),
        app_name(
            &get("application_name").unwrap_or_default(),
            &opened.session_id,
        ),
    ));
    let t_auth = proxy.now();
    let auth = async {
        upstream
            .write_all(&Startup::encode_message(major, minor, &fwd))
            .await?;
        if injected {
            pg_auth_injected(&proxy, &mut client, &mut *upstream).await
        } else {
            pg_auth_passthrough(&mut client, &mut *upstream).await
        }
    }
    .await;
    let mut ev = event::start("db.auth", c, "pg", proxy.now().wall_us);
    let (method, stripped, result) = match auth {
        Ok(a) => (a.method, a.stripped_plus, Ok(a)),
        Err(AuthFail {
            method,
            stripped_plus,
            err,
            fatal,
        }) => (method, stripped_plus, Err((err, fatal))),
    };
    ev.str("method", method)
        .bool("ok", result.is_ok())
        .flag("stripped_plus", stripped);
    if injected {
        if let Some(s) = &proxy.secret {
            ev.str("db_user", &s.user);
        }
    }
    let auth_ok = match result {
        Ok(a) => a,
        Err((err, fatal)) => {
            ev.obj("err", err.obj());
            ev.u64("dur_us", proxy.now().mono_us.saturating_sub(t_auth.mono_us));
            let _ = sink.record(&ev.finish());
            let m = err.message.clone().unwrap_or_default();
            let _ = sink.record(&close_ev("auth_failed", Some(&m), None));
            if let Some(f) = fatal {
                let _ = client.write_all(&f).await;
            }
            return fail("auth_failed", m);
        }
    };
    let mut so = Obj::new();
    so.opt_str("version", auth_ok.server_version.as_deref())
        .opt_u64("backend_pid", auth_ok.pid.map(u64::from));
    ev.obj("server", so)
        .u64("dur_us", proxy.now().mono_us.saturating_sub(t_auth.mono_us));
    if let Err(e) = sink.record(&ev.finish()) {
        let m = format!("sealcast: recording failed ({e}); connection closed");
        let _ = client
            .write_all(&msg::error_response("FATAL", "08006", &m))
            .await;
        return fail("error", m);
    }
    // Hand the client what the server said after AuthenticationOk (its ParameterStatus,
    // BackendKeyData and ReadyForQuery), then relay.
    if client.write_all(&auth_ok.to_client).await.is_err() {
        let _ = sink.record(&close_ev("client_eof", None, None));
        return Outcome {
            reason: "client_eof",
            error: None,
            recorded: true,
        };
    }
    let conn = Arc::new(Mutex::new(Conn::new(proxy.ctx(c))));
    if let (Some(pid), Some(key)) = (auth_ok.pid, auth_ok.key.clone()) {
        proxy
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                pid,
                CancelEntry {
                    key,
                    sink: sink.clone(),
                    c,
                    conn: conn.clone(),
                },
            );
    }
    let (reason, err) = pump(
        proxy.clone(),
        client,
        upstream,
        conn.clone(),
        sink.clone(),
        shutdown,
    )
    .await;
    if let Some(pid) = auth_ok.pid {
        proxy
            .cancels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&pid);
    }
    let mut evs = Vec::new();
    let line = {
        let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
        g.abort_pending(proxy.now(), &mut evs);
        let fatal = g.fatal.as_ref().and_then(|f| f.message.clone());
        close_ev(
            reason,
            err.as_deref().or(fatal.as_deref()),
            Some((&g, t_open.mono_us)),
        )
    };
    evs.push(line);
    let _ = record(&*sink, &mut evs);
    Outcome {
        reason,
        error: err,
        recorded: true,
    }
}

struct AuthOk {
    method: &'static str,
    stripped_plus: bool,
    server_version: Option<String>,
    pid: Option<u32>,
    key: Option<Vec<u8>>,
    to_client: Vec<u8>,
}

struct AuthFail {
    method: &'static str,
    stripped_plus: bool,
    err: ErrInfo,
    /// What to send the client (an ErrorResponse), when not already sent.
    fatal: Option<Vec<u8>>,
}

impl From<RelayError> for AuthFail {
    fn from(e: RelayError) -> AuthFail {
        AuthFail {
            method: "unknown",
            stripped_plus: false,
            err: ErrInfo::msg(e.to_string()),
            fatal: Some(msg::error_response(
                "FATAL",
                "08006",
                &format!("sealcast: {e}"),
            )),
        }
    }
}

impl From<io::Error> for AuthFail {
    fn from(e: io::Error) -> AuthFail {
        RelayError::Io(e).into()
    }
}

/// After AuthenticationOk: ParameterStatus, BackendKeyData, NoticeResponse until
/// ReadyForQuery; collected for the client.
async fn pg_after_auth(up: &mut (dyn Stream + '_), mut a: AuthOk) -> Result<AuthOk, AuthFail> {
    loop {
        let (tag, body) = read_msg(up).await?;
        a.to_client.extend_from_slice(&msg::encode(tag, &body));
        match tag {
            b'S' => {
                if let Some((k, v)) = msg::parameter_status(&body) {
                    if k == "server_version" {
                        a.server_version = Some(v);
                    }
                }
            }
            b'K' => {
                let mut cur = msg::Cur::new(&body);
                a.pid = cur.i32().map(|p| p as u32);
                a.key = Some(cur.rest().to_vec());
            }
            b'Z' => return Ok(a),
            b'E' => {
                return Err(AuthFail {
                    method: a.method,
                    stripped_plus: a.stripped_plus,
                    err: msg::error_fields(&body),
                    fatal: Some(msg::encode(tag, &body)),
                });
            }
            _ => {}
        }
    }
}

async fn pg_auth_passthrough(
    client: &mut UnixStream,
    up: &mut (dyn Stream + '_),
) -> Result<AuthOk, AuthFail> {
    let mut method = "unknown";
    let mut stripped = false;
    loop {
        let (tag, body) = read_msg(up).await.map_err(|e| AuthFail {
            method,
            ..AuthFail::from(e)
        })?;
        match tag {
            b'R' => {
                let Some((code, data)) = msg::auth_request(&body) else {
                    return Err(AuthFail {
                        method,
                        ..RelayError::Protocol("malformed authentication request".into()).into()
                    });
                };
                if code == 0 {
                    client.write_all(&msg::encode(b'R', &body)).await?;
                    let a = AuthOk {
                        method,
                        stripped_plus: stripped,
                        server_version: None,
                        pid: None,
                        key: None,
                        to_client: Vec::new(),
                    };
                    return pg_after_auth(up, a).await;
                }
                if !matches!(code, 11 | 12) {
                    method = msg::auth_method(code);
                }
                let out = match code {
                    10 => {
                        let mechs = msg::sasl_mechanisms(data);
                        stripped = mechs.iter().any(|m| m.ends_with("-PLUS"));
                        match msg::sasl_without_plus(&mechs) {
                            Some(m) => m,
                            None => {
                                let m = "sealcast: the server offers only channel-bound SCRAM (-PLUS), which cannot pass a recording proxy";
                                return Err(AuthFail {
                                    method,
                                    stripped_plus: stripped,
                                    err: ErrInfo::msg(m),
                                    fatal: Some(msg::error_response("FATAL", "28000", m)),
                                });
                            }
                        }
                    }
                    3 | 5 | 11 | 12 => msg::encode(b'R', &body),
                    _ => {
                        let m = format!(
                            "sealcast: authentication method {} is not supported through the proxy",
                            msg::auth_method(code)
                        );
                        return Err(AuthFail {
                            method,
                            stripped_plus: stripped,
                            fatal: Some(msg::error_response("FATAL", "28000", &m)),
                            err: ErrInfo::msg(m),
                        });
                    }
                };
                client.write_all(&out).await?;
                if code != 12 {
                    // The client's answer ('p'): relayed, never recorded.
                    let (t, b) = read_msg(client).await.map_err(|e| AuthFail {
                        method,
                        stripped_plus: stripped,
                        ..AuthFail::from(e)
                    })?;
                    if t != b'p' {
                        return Err(AuthFail {
                            method,
                            stripped_plus: stripped,
                            ..RelayError::Protocol(format!(
                                "client sent '{}' during authentication",
                                char::from(t).escape_default()
                            ))
                            .into()
                        });
                    }
                    up.write_all(&msg::encode(t, &b)).await?;
                }
            }
            b'E' => {
                client.write_all(&msg::encode(tag, &body)).await?;
                return Err(AuthFail {
                    method,
                    stripped_plus: stripped,
                    err: msg::error_fields(&body),
                    fatal: None,
                });
            }
            b'v' | b'N' => client.write_all(&msg::encode(tag, &body)).await?,
            t => {
                return Err(AuthFail {
                    method,
                    stripped_plus: stripped,
                    ..RelayError::Protocol(format!(
                        "server sent '{}' during authentication",
                        char::from(t).escape_default()
                    ))
                    .into()
                });
            }
        }
    }
}

fn password_msg(data: &[u8]) -> Vec<u8> {
    msg::encode(b'p', data)
}

async fn pg_auth_injected(
    proxy: &Proxy,
    client: &mut UnixStream,
    up: &mut (dyn Stream + '_),
) -> Result<AuthOk, AuthFail> {
    let Some(secret) = &proxy.secret else {
        return Err(RelayError::Upstream("no injected credentials".into()).into());
    };
    let pw = secret.password.as_bytes();
    let mut method = "unknown";
    let mut scram: Option<ScramSha256> = None;
    loop {
        let (tag, body) = read_msg(up).await.map_err(|e| AuthFail {
            method,
            ..AuthFail::from(e)
        })?;
        match tag {
            b'R' => {
                let Some((code, data)) = msg::auth_request(&body) else {
                    return Err(AuthFail {
                        method,
                        ..RelayError::Protocol("malformed authentication request".into()).into()
                    });
                };
                if !matches!(code, 0 | 11 | 12) {
                    method = msg::auth_method(code);
                }
                match code {
                    0 => {
                        // The client never authenticated to us: tell it "ok" now.
                        client
                            .write_all(&msg::encode(b'R', &0i32.to_be_bytes()))
                            .await?;
                        let a = AuthOk {
                            method,
                            stripped_plus: false,
                            server_version: None,
                            pid: None,
                            key: None,
                            to_client: Vec::new(),
                        };
                        return pg_after_auth(up, a).await;
                    }
                    3 => {
                        let mut d = pw.to_vec();
                        d.push(0);
                        up.write_all(&password_msg(&d)).await?;
                    }
                    5 => {
                        let salt: [u8; 4] = data
                            .get(..4)
                            .and_then(|s| s.try_into().ok())
                            .unwrap_or_default();
                        let mut d = postgres_protocol::authentication::md5_hash(
                            secret.user.as_bytes(),
                            pw,
                            salt,
                        )
                        .into_bytes();
                        d.push(0);
                        up.write_all(&password_msg(&d)).await?;
                    }
                    10 => {
                        if !msg::sasl_mechanisms(data)
                            .iter()
                            .any(|m| m == "SCRAM-SHA-256")
                        {
                            return Err(AuthFail {
                                method,
                                ..RelayError::Upstream("server offers no SCRAM-SHA-256".into())
                                    .into()
                            });
                        }
                        let s = ScramSha256::new(pw, ChannelBinding::unsupported());
                        let mut d = b"SCRAM-SHA-256\0".to_vec();
                        d.extend_from_slice(&(s.message().len() as i32).to_be_bytes());
                        d.extend_from_slice(s.message());
                        up.write_all(&password_msg(&d)).await?;
                        scram = Some(s);
                    }
                    11 => {
                        let Some(s) = scram.as_mut() else {
                            return Err(AuthFail {
                                method,
                                ..RelayError::Protocol("SASLContinue before SASL".into()).into()
                            });
                        };
                        s.update(data).map_err(|e| AuthFail {
                            method,
                            ..RelayError::Upstream(format!("SCRAM: {e}")).into()
                        })?;
                        up.write_all(&password_msg(s.message())).await?;
                    }
                    12 => {
                        let Some(mut s) = scram.take() else {
                            return Err(AuthFail {
                                method,
                                ..RelayError::Protocol("SASLFinal before SASL".into()).into()
                            });
                        };
                        s.finish(data).map_err(|e| AuthFail {
                            method,
                            ..RelayError::Upstream(format!("SCRAM server signature: {e}")).into()
                        })?;
                    }
                    _ => {
                        return Err(AuthFail {
                            method,
                            ..RelayError::Upstream(format!(
                                "method {} cannot be injected",
                                msg::auth_method(code)
                            ))
                            .into()
                        });
                    }
                }
            }
            b'E' => {
                let err = msg::error_fields(&body);
                let m = format!(
                    "sealcast: the proxy's login to the database failed: {}",
                    err.message.clone().unwrap_or_default()
                );
                return Err(AuthFail {
                    method,
                    stripped_plus: false,
                    err,
                    fatal: Some(msg::error_response("FATAL", "28000", &m)),
                });
            }
            b'v' | b'N' => {}
            t => {
                return Err(AuthFail {
                    method,
                    ..RelayError::Protocol(format!(
                        "server sent '{}' during authentication",
                        char::from(t).escape_default()
                    ))
                    .into()
                });
            }
        }
    }
}

/// A forwarded or refused CancelRequest.
async fn pg_cancel(proxy: &Proxy, pid: u32, key: &[u8], peer: Peer, open: Opener) -> Outcome {
    let entry = {
        let g = proxy.cancels.lock().unwrap_or_else(|p| p.into_inner());
        g.get(&pid)
            .filter(|e| e.key == key)
            .map(|e| (e.sink.clone(), e.c, e.conn.clone()))
    };
    let now = proxy.now();
    match entry {
        Some((sink, c, conn)) => {
            let target_q = conn.lock().unwrap_or_else(|p| p.into_inner()).running_q();
            let sent = async {
                let (mut up, _, _) = proxy.pg_upstream().await?;
                up.write_all(&msg::encode_cancel(pid, key)).await?;
                let mut b = [0u8; 1];
                let _ = tokio::time::timeout(Duration::from_secs(5), up.read(&mut b)).await;
                Ok::<(), RelayError>(())
            }
            .await;
            let mut ev = event::start("db.cancel", c, "pg", now.wall_us);
            ev.obj("client", client_obj(peer))
                .u64("target_pid", u64::from(pid))
                .u64("target_c", c)
                .opt_u64("target_q", target_q)
                .bool("forwarded", sent.is_ok());
            if let Err(e) = &sent {
                ev.str("reason", &e.to_string());
            }
            let _ = sink.record(&ev.finish());
            Outcome {
                reason: "cancel",
                error: sent.err().map(|e| e.to_string()),
                recorded: false,
            }
        }
        None => {
            let reason = "no connection of this proxy has that backend pid and key";
            match open() {
                Ok(o) => {
                    let mut ev = event::start("db.cancel", o.c, "pg", now.wall_us);
                    ev.obj("client", client_obj(peer))
                        .u64("target_pid", u64::from(pid))
                        .bool("forwarded", false)
                        .str("reason", reason);
                    let _ = o.sink.record(&ev.finish());
                    Outcome {
                        reason: "cancel",
                        error: Some(reason.into()),
                        recorded: true,
                    }
                }
                Err(_) => Outcome {
                    reason: "cancel",
                    error: Some(reason.into()),
                    recorded: false,
                },
            }
        }
    }
}

/// Resolves once the shutdown flag is set (never, if its sender is gone without setting it).
/// How a connection's relay ends: the first of its two directions to finish (client →
/// server `c2s`, server → client `s2c`), each giving the `db.close` reason and detail (SPEC
/// §11), or `session_end` when `shutdown` is set. After the client's Terminate (`terminate`)
/// the server closes at once, so it gets up to 5 s to finish; otherwise (client gone,
/// recording failed) the upstream is dropped now and pending results are aborted.
pub async fn first_end(
    c2s: impl std::future::Future<Output = (&'static str, Option<String>)>,
    s2c: impl std::future::Future<Output = (&'static str, Option<String>)>,
    shutdown: &mut watch::Receiver<bool>,
) -> (&'static str, Option<String>) {
    tokio::pin!(c2s);
    tokio::pin!(s2c);
    tokio::select! {
        r = &mut s2c => r,
        r = &mut c2s => {
            if r.0 == "terminate" {
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut s2c).await;
            }
            r
        }
        _ = stopped(shutdown) => ("session_end", None),
    }
}

pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    loop {
        let set = *rx.borrow_and_update();
        if set {
            return;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The query phase: both directions until one ends. Returns `db.close`'s reason and error.
async fn pump(
    proxy: Arc<Proxy>,
    client: UnixStream,
    upstream: Box<dyn Stream>,
    conn: Arc<Mutex<Conn>>,
    sink: Arc<dyn EventSink>,
    mut shutdown: watch::Receiver<bool>,
) -> (&'static str, Option<String>) {
    let (mut cr, cw) = client.into_split();
    let cw = Arc::new(tokio::sync::Mutex::new(cw));
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let refuse = |e: &SinkError| {
        msg::error_response(
            "FATAL",
            "08006",
            &format!("sealcast: recording failed ({e}); statement not executed, connection closed"),
        )
    };

    let c2s = {
        let (conn, sink, cw, proxy) = (conn.clone(), sink.clone(), cw.clone(), proxy.clone());
        async move {
            let mut fr = Framer::new(crate::pg::CLIENT_KEEP, CLIENT_CAP);
            let mut buf = vec![0u8; CHUNK];
            let mut evs = Vec::new();
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) => return ("client_eof", None),
                    Ok(n) => n,
                    Err(e) => return ("error", Some(format!("client: {e}"))),
                };
                let now = proxy.now();
                let mut term = false;
                let fed = {
                    let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
                    fr.feed(&buf[..n], &mut |p| {
                        if g.client(p, now, &mut evs) == Some(ClientNote::Terminate) {
                            term = true;
                        }
                    })
                };
                if let Err(e) = fed {
                    // Client messages we cannot frame cannot be recorded: fail closed.
                    let d = e.to_string();
                    conn.lock().unwrap_or_else(|p| p.into_inner()).proto_error(
                        now,
                        "c2s",
                        Some(e.tag),
                        Some(u64::from(e.len)),
                        &d,
                        &mut evs,
                    );
                    let _ = record(&*sink, &mut evs);
                    let _ = cw
                        .lock()
                        .await
                        .write_all(&msg::error_response(
                            "FATAL",
                            "08P01",
                            &format!("sealcast: {d}"),
                        ))
                        .await;
                    return ("error", Some(d));
                }
                // Write-ahead: the events of every statement this chunk completes are in the
                // recording before a byte of the chunk goes upstream.
                if let Err(e) = record(&*sink, &mut evs) {
                    let _ = cw.lock().await.write_all(&refuse(&e)).await;
                    return ("error", Some(e.to_string()));
                }
                if let Err(e) = uw.write_all(&buf[..n]).await {
                    return ("error", Some(format!("upstream: {e}")));
                }
                if term {
                    let _ = uw.shutdown().await;
                    return ("terminate", None);
                }
            }
        }
    };
    let s2c = {
        let (conn, sink, cw, proxy) = (conn.clone(), sink.clone(), cw.clone(), proxy.clone());
        async move {
            let mut fr = Framer::new(crate::pg::SERVER_KEEP, SERVER_CAP);
            let mut buf = vec![0u8; CHUNK];
            let mut evs = Vec::new();
            let mut broken = false;
            loop {
                let n = match ur.read(&mut buf).await {
                    Ok(0) => return ("server_eof", None),
                    Ok(n) => n,
                    Err(e) => return ("error", Some(format!("upstream: {e}"))),
                };
                let now = proxy.now();
                if !broken {
                    let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = fr.feed(&buf[..n], &mut |p| g.server(p, now, &mut evs)) {
                        // The server side stops being followed; statements are still recorded.
                        broken = true;
                        g.degrade(now, &e.to_string(), &mut evs);
                    }
                }
                if let Err(e) = note(&*sink, &mut evs) {
                    let _ = cw.lock().await.write_all(&refuse(&e)).await;
                    return ("error", Some(e.to_string()));
                }
                if let Err(e) = cw.lock().await.write_all(&buf[..n]).await {
                    return ("error", Some(format!("client: {e}")));
                }
            }
        }
    };
    first_end(c2s, s2c, &mut shutdown).await
}
