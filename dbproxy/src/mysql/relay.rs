//! The tokio side for MySQL / MariaDB targets: handshake (plaintext client leg, TLS
//! upstream with the sequence-id shift of anchors-db §5.2, capability rewrite), pass-through
//! or injected authentication, then the command phase through [`super::conn::Conn`] with
//! write-ahead recording as for PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::watch;

use super::conn::{ClientNote, Conn};
use super::frame::{packet, Framer};
use super::msg::{self, Greeting, Response};
use crate::config::Credentials;
use crate::event::{self, ErrInfo, Obj};
use crate::relay::{
    client_obj, first_end, note, record, Opener, Outcome, Peer, Proxy, RelayError, Stream,
    AUTH_MAX, CHUNK, CLIENT_CAP, SERVER_CAP,
};
use crate::sink::{EventSink, SinkError};
use crate::tls;

async fn read_packet<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
) -> Result<(u8, Vec<u8>), RelayError> {
    let mut h = [0u8; 4];
    r.read_exact(&mut h).await?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    if len > AUTH_MAX {
        return Err(RelayError::Protocol(format!(
            "handshake packet of {len} bytes"
        )));
    }
    let mut b = vec![0u8; len];
    r.read_exact(&mut b).await?;
    Ok((h[3], b))
}

struct Auth {
    method: String,
    ok: bool,
    err: Option<ErrInfo>,
}

/// Serve one MySQL client connection (after the peer check).
pub async fn handle(
    proxy: Arc<Proxy>,
    mut client: UnixStream,
    peer: Peer,
    open: Opener,
    shutdown: watch::Receiver<bool>,
) -> Outcome {
    let opened = match open() {
        Ok(o) => o,
        Err(e) => {
            let m = format!("sealcast: recording unavailable ({e}); connection refused");
            let _ = client
                .write_all(&packet(0, &msg::err(1105, "08S01", &m)))
                .await;
            return Outcome {
                reason: "error",
                error: Some(m),
                recorded: false,
            };
        }
    };
    let (sink, c) = (opened.sink.clone(), opened.c);
    let t_open = proxy.now();
    let injected = proxy.target.credentials == Credentials::Injected;
    let close_ev = |reason: &str, err: Option<&str>, extra: Option<(&Conn, u64)>| {
        let mut ev = event::start("db.close", c, "mysql", proxy.now().wall_us);
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
    let mut upo = Obj::new();
    upo.str("host", &proxy.target.host)
        .u64("port", u64::from(proxy.target.port()));
    let open_ev = |upo: Obj, startup: Obj, server: Obj| {
        let mut ev = event::start("db.open", c, "mysql", t_open.wall_us);
        ev.obj("client", client_obj(peer))
            .str("target", &proxy.name)
            .obj("upstream", upo)
            .obj("startup", startup)
            .obj("server", server);
        ev.str(
            "auth_mode",
            if injected { "injected" } else { "passthrough" },
        );
        ev.u64(
            "connect_us",
            proxy.now().mono_us.saturating_sub(t_open.mono_us),
        );
        ev.finish()
    };

    // The server speaks first.
    let setup = async {
        let (mut tcp, addr) = proxy.tcp().await?;
        let (_, greet) = read_packet(&mut tcp).await?;
        Ok::<_, RelayError>((tcp, addr, greet))
    }
    .await;
    let (tcp, addr, greet) = match setup {
        Ok(x) => x,
        Err(e) => {
            upo.str("error", &e.to_string());
            let _ = sink.record(&open_ev(upo, Obj::new(), Obj::new()));
            let m = format!("sealcast: cannot reach the database: {e}");
            let _ = sink.record(&close_ev("error", Some(&m), None));
            let _ = client
                .write_all(&packet(0, &msg::err(2003, "08S01", &m)))
                .await;
            return Outcome {
                reason: "error",
                error: Some(m),
                recorded: true,
            };
        }
    };
    upo.str("addr", &addr);
    if greet.first() == Some(&0xFF) {
        // e.g. "Host … is not allowed to connect": relayed and recorded.
        let e = msg::err_packet(&greet);
        let _ = sink.record(&open_ev(upo, Obj::new(), Obj::new()));
        let mut ev = event::start("db.auth", c, "mysql", proxy.now().wall_us);
        ev.str("method", "none")
            .bool("ok", false)
            .obj("err", e.obj());
        let _ = sink.record(&ev.finish());
        let m = e.message.unwrap_or_default();
        let _ = sink.record(&close_ev("auth_failed", Some(&m), None));
        let _ = client.write_all(&packet(0, &greet)).await;
        return Outcome {
            reason: "auth_failed",
            error: Some(m),
            recorded: true,
        };
    }
    let Some(g) = Greeting::parse(&greet) else {
        let m = "sealcast: the server's greeting is not a protocol 10 handshake".to_string();
        let _ = sink.record(&open_ev(upo, Obj::new(), Obj::new()));
        let _ = sink.record(&close_ev("error", Some(&m), None));
        let _ = client
            .write_all(&packet(0, &msg::err(1105, "08S01", &m)))
            .await;
        return Outcome {
            reason: "error",
            error: Some(m),
            recorded: true,
        };
    };
    let mut server = Obj::new();
    server
        .str("version", &g.version)
        .u64("connection_id", u64::from(g.conn_id));
    let tls_on = proxy.tls.is_some();
    if tls_on && g.caps & msg::SSL == 0 {
        let m = "sealcast: the server does not offer TLS, which the target requires".to_string();
        let _ = sink.record(&open_ev(upo, Obj::new(), server));
        let _ = sink.record(&close_ev("error", Some(&m), None));
        let _ = client
            .write_all(&packet(0, &msg::err(1105, "08S01", &m)))
            .await;
        return Outcome {
            reason: "error",
            error: Some(m),
            recorded: true,
        };
    }
    // What the client is offered: no TLS (the socket is private), no compression (nothing
    // would be readable), no LOCAL INFILE unless the target allows it.
    let mut clear = msg::SSL | msg::COMPRESS | msg::ZSTD;
    if !proxy.target.allow_local_infile {
        clear |= msg::LOCAL_FILES;
    }
    if client
        .write_all(&packet(0, &g.clear_caps(&greet, clear)))
        .await
        .is_err()
    {
        let _ = sink.record(&open_ev(upo, Obj::new(), server));
        let _ = sink.record(&close_ev("client_eof", None, None));
        return Outcome {
            reason: "client_eof",
            error: None,
            recorded: true,
        };
    }
    let resp = match read_packet(&mut client).await {
        Ok((_, r)) => r,
        Err(e) => {
            let _ = sink.record(&open_ev(upo, Obj::new(), server));
            let _ = sink.record(&close_ev("client_eof", Some(&e.to_string()), None));
            return Outcome {
                reason: "client_eof",
                error: Some(e.to_string()),
                recorded: true,
            };
        }
    };
    let Some(r) = Response::parse(&resp) else {
        let m = "sealcast: not a protocol 4.1 handshake response".to_string();
        let _ = sink.record(&open_ev(upo, Obj::new(), server));
        let _ = sink.record(&close_ev("error", Some(&m), None));
        let _ = client
            .write_all(&packet(2, &msg::err(1105, "08S01", &m)))
            .await;
        return Outcome {
            reason: "error",
            error: Some(m),
            recorded: true,
        };
    };
    let mut startup = Obj::new();
    startup
        .str("user", &r.user)
        .opt_str("database", r.database.as_deref())
        .str("client_caps", &format!("0x{:08x}", r.caps))
        .u64("collation", u64::from(r.collation));
    let caps = (r.caps & !clear) & g.caps;
    let database = match &proxy.secret {
        Some(s) => s
            .database
            .clone()
            .or_else(|| proxy.target.database.clone())
            .or(r.database.clone()),
        None => r.database.clone(),
    };
    // The response upstream: the client's own (pass-through) or the proxy's (injected).
    let mut up_resp = match &proxy.secret {
        Some(s) => Response::build(
            caps,
            r.max_packet,
            r.collation,
            &r.filler,
            &s.user,
            &msg::native_scramble(s.password.as_bytes(), &g.scramble),
            database.as_deref(),
            "mysql_native_password",
        ),
        None => resp.clone(),
    };
    msg::set_caps(
        &mut up_resp,
        if tls_on { msg::SSL } else { 0 },
        clear & !msg::SSL,
    );
    let t_auth = proxy.now();
    let (mut upstream, shift): (Box<dyn Stream>, u8) = if let Some(cfg) = &proxy.tls {
        let mut tcp = tcp;
        let step = async {
            tcp.write_all(&packet(1, up_resp.get(..32).unwrap_or(&up_resp)))
                .await?;
            let d = Duration::from_secs(proxy.target.connect_timeout_secs.max(1));
            let (t, info) = tokio::time::timeout(
                d,
                tls::connect(cfg.clone(), proxy.target.server_name(), tcp),
            )
            .await
            .map_err(|_| RelayError::Tls("handshake timed out".into()))??;
            Ok::<_, RelayError>((t, info))
        }
        .await;
        match step {
            Ok((t, info)) => {
                upo.obj("tls", info.obj());
                (Box::new(t), 1)
            }
            Err(e) => {
                upo.str("error", &e.to_string());
                let _ = sink.record(&open_ev(upo, startup, server));
                let m = format!("sealcast: cannot reach the database: {e}");
                let _ = sink.record(&close_ev("error", Some(&m), None));
                let _ = client
                    .write_all(&packet(2, &msg::err(2026, "08S01", &m)))
                    .await;
                return Outcome {
                    reason: "error",
                    error: Some(m),
                    recorded: true,
                };
            }
        }
    } else {
        upo.bool("tls", false);
        (Box::new(tcp), 0)
    };
    if let Err(e) = sink.record(&open_ev(upo, startup, server)) {
        let m = format!("sealcast: recording failed ({e}); connection refused");
        let _ = client
            .write_all(&packet(2, &msg::err(1105, "08S01", &m)))
            .await;
        return Outcome {
            reason: "error",
            error: Some(m),
            recorded: true,
        };
    }
    let auth = async {
        upstream.write_all(&packet(1 + shift, &up_resp)).await?;
        let mut a = Auth {
            method: if injected {
                "mysql_native_password".into()
            } else {
                r.plugin.clone().unwrap_or_else(|| g.plugin.clone())
            },
            ok: false,
            err: None,
        };
        loop {
            let (seq, p) = read_packet(&mut *upstream).await?;
            let to_client = if injected { 2 } else { seq.wrapping_sub(shift) };
            match p.first().copied().unwrap_or(0) {
                0x00 => {
                    client.write_all(&packet(to_client, &p)).await?;
                    a.ok = true;
                    return Ok::<Auth, RelayError>(a);
                }
                0xFF => {
                    let e = msg::err_packet(&p);
                    let m = if injected {
                        msg::err(
                            e.code.unwrap_or(1045) as u16,
                            "28000",
                            &format!(
                                "sealcast: the proxy's login to the database failed: {}",
                                e.message.clone().unwrap_or_default()
                            ),
                        )
                    } else {
                        p.clone()
                    };
                    client.write_all(&packet(to_client, &m)).await?;
                    a.err = Some(e);
                    return Ok(a);
                }
                0xFE if injected => {
                    let mut cur = msg::Cur::new(&p[1..]);
                    let plugin = String::from_utf8_lossy(cur.cstr()).into_owned();
                    let data = cur.rest();
                    let data = data.strip_suffix(&[0]).unwrap_or(data);
                    if plugin != "mysql_native_password" {
                        return Err(RelayError::Upstream(format!(
                            "the server wants {plugin}, which the proxy cannot inject"
                        )));
                    }
                    let pw = proxy
                        .secret
                        .as_ref()
                        .map(|s| s.password.clone())
                        .unwrap_or_default();
                    upstream
                        .write_all(&packet(
                            seq.wrapping_add(1),
                            &msg::native_scramble(pw.as_bytes(), data),
                        ))
                        .await?;
                }
                0x01 if injected => {
                    if p.get(1) == Some(&3) {
                        continue;
                    }
                    return Err(RelayError::Upstream(
                        "caching_sha2 full authentication cannot be injected".into(),
                    ));
                }
                first => {
                    if first == 0xFE {
                        let mut cur = msg::Cur::new(&p[1..]);
                        a.method = String::from_utf8_lossy(cur.cstr()).into_owned();
                    }
                    client.write_all(&packet(to_client, &p)).await?;
                    if first == 0x01 && p.get(1) == Some(&3) {
                        continue; // caching_sha2 fast path: the OK follows
                    }
                    // The client's answer: relayed, never recorded.
                    let (cseq, cp) = read_packet(&mut client).await?;
                    upstream
                        .write_all(&packet(cseq.wrapping_add(shift), &cp))
                        .await?;
                }
            }
        }
    }
    .await;
    let mut ev = event::start("db.auth", c, "mysql", proxy.now().wall_us);
    let a = match auth {
        Ok(a) => a,
        Err(e) => Auth {
            method: "unknown".into(),
            ok: false,
            err: Some(ErrInfo::msg(e.to_string())),
        },
    };
    ev.str("method", &a.method).bool("ok", a.ok);
    if let Some(s) = &proxy.secret {
        ev.str("db_user", &s.user);
    }
    if let Some(e) = &a.err {
        ev.obj("err", e.obj());
    }
    ev.u64("dur_us", proxy.now().mono_us.saturating_sub(t_auth.mono_us));
    let rec = sink.record(&ev.finish());
    if !a.ok {
        let m = a.err.and_then(|e| e.message).unwrap_or_default();
        let _ = sink.record(&close_ev("auth_failed", Some(&m), None));
        if injected {
            let _ = client
                .write_all(&packet(
                    2,
                    &msg::err(1045, "28000", &format!("sealcast: {m}")),
                ))
                .await;
        }
        return Outcome {
            reason: "auth_failed",
            error: Some(m),
            recorded: true,
        };
    }
    if let Err(e) = rec {
        let m = format!("sealcast: recording failed ({e}); connection closed");
        return Outcome {
            reason: "error",
            error: Some(m),
            recorded: true,
        };
    }
    let conn = Arc::new(Mutex::new(Conn::new(proxy.ctx(c), caps, database)));
    let (reason, err) = pump(
        proxy.clone(),
        client,
        upstream,
        conn.clone(),
        sink.clone(),
        shutdown,
    )
    .await;
    let mut evs = Vec::new();
    let line = {
        let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
        g.abort_pending(proxy.now(), &mut evs);
        close_ev(reason, err.as_deref(), Some((&g, t_open.mono_us)))
    };
    evs.push(line);
    let _ = record(&*sink, &mut evs);
    Outcome {
        reason,
        error: err,
        recorded: true,
    }
}

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
    let refuse = |seq: u8, m: &str| packet(seq.wrapping_add(1), &msg::err(1105, "08S01", m));
    let c2s = {
        let (conn, sink, cw, proxy) = (conn.clone(), sink.clone(), cw.clone(), proxy.clone());
        async move {
            let mut fr = Framer::new(CLIENT_CAP);
            let mut buf = vec![0u8; CHUNK];
            let mut evs = Vec::new();
            loop {
                let n = match cr.read(&mut buf).await {
                    Ok(0) => return ("client_eof", None),
                    Ok(n) => n,
                    Err(e) => return ("error", Some(format!("client: {e}"))),
                };
                let now = proxy.now();
                let mut note = None;
                let seq = {
                    let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
                    fr.feed(&buf[..n], &mut |p| {
                        if let Some(x) = g.client(p, now, &mut evs) {
                            note.get_or_insert(x);
                        }
                    });
                    g.last_seq
                };
                // Write-ahead: recorded before a byte of the chunk goes upstream.
                if let Err(e) = record(&*sink, &mut evs) {
                    let m = format!("sealcast: recording failed ({e}); statement not executed, connection closed");
                    let _ = cw.lock().await.write_all(&refuse(seq, &m)).await;
                    return ("error", Some(e.to_string()));
                }
                match note {
                    Some(ClientNote::Refuse(m)) => {
                        let _ = cw
                            .lock()
                            .await
                            .write_all(&refuse(seq, &format!("sealcast: {m}")))
                            .await;
                        return ("refused", Some(m));
                    }
                    Some(ClientNote::Quit) => {
                        let _ = uw.write_all(&buf[..n]).await;
                        let _ = uw.shutdown().await;
                        return ("terminate", None);
                    }
                    None => {}
                }
                if let Err(e) = uw.write_all(&buf[..n]).await {
                    return ("error", Some(format!("upstream: {e}")));
                }
            }
        }
    };
    let s2c = {
        let (conn, sink, cw, proxy) = (conn.clone(), sink.clone(), cw.clone(), proxy.clone());
        async move {
            let mut fr = Framer::new(SERVER_CAP);
            let mut buf = vec![0u8; CHUNK];
            let mut evs = Vec::new();
            loop {
                let n = match ur.read(&mut buf).await {
                    Ok(0) => return ("server_eof", None),
                    Ok(n) => n,
                    Err(e) => return ("error", Some(format!("upstream: {e}"))),
                };
                let now = proxy.now();
                let seq = {
                    let mut g = conn.lock().unwrap_or_else(|p| p.into_inner());
                    fr.feed(&buf[..n], &mut |p| g.server(p, now, &mut evs));
                    g.last_seq
                };
                if let Err(e) = note(&*sink, &mut evs) {
                    let m: SinkError = e;
                    let _ = cw
                        .lock()
                        .await
                        .write_all(&refuse(
                            seq,
                            &format!("sealcast: recording failed ({m}); connection closed"),
                        ))
                        .await;
                    return ("error", Some(m.to_string()));
                }
                if let Err(e) = cw.lock().await.write_all(&buf[..n]).await {
                    return ("error", Some(format!("client: {e}")));
                }
            }
        }
    };
    first_end(c2s, s2c, &mut shutdown).await
}
