//! Drivers for the fuzz targets (`fuzz/fuzz_targets/db_pg.rs`, `db_mysql.rs`) and the stable
//! no-panic test: arbitrary bytes through both directions of a connection, split at
//! arbitrary points. The property is "never panics, always terminates".

use crate::config::ParamPolicy;
use crate::event::{ConnCtx, Now};

/// Split `data` into (direction, chunk) steps: each step's first byte picks the direction
/// (low bit) and the chunk length (the rest, 0–127).
fn steps(data: &[u8]) -> Vec<(bool, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let ctl = data[i];
        i += 1;
        let n = usize::from(ctl >> 1).min(data.len() - i);
        out.push((ctl & 1 == 0, &data[i..i + n]));
        i += n;
    }
    out
}

fn ctx(proto: &'static str) -> ConnCtx {
    ConnCtx {
        c: 1,
        proto,
        params: ParamPolicy::Full,
        sql_max: 4096,
    }
}

/// PostgreSQL: startup parsers on the raw input, then the framers and [`crate::pg::conn::Conn`].
pub fn pg(data: &[u8]) {
    use crate::pg::{conn::Conn, frame::Framer, msg};
    let _ = msg::Startup::parse(data);
    let _ = msg::error_fields(data);
    let _ = msg::parse_bind(data);
    let _ = msg::sasl_without_plus(&msg::sasl_mechanisms(data));
    let _ = crate::sql::redact_passwords(data, crate::sql::Dialect::Postgres);
    let mut conn = Conn::new(ctx("pg"));
    let mut c = Framer::new(crate::pg::CLIENT_KEEP, 256);
    let mut s = Framer::new(crate::pg::SERVER_KEEP, 256);
    let mut evs = Vec::new();
    for (client, chunk) in steps(data) {
        if client {
            let _ = c.feed(chunk, &mut |p| {
                conn.client(p, Now::default(), &mut evs);
            });
        } else {
            let _ = s.feed(chunk, &mut |p| conn.server(p, Now::default(), &mut evs));
        }
        evs.clear();
    }
    conn.abort_pending(Now::default(), &mut evs);
}

/// MySQL: handshake parsers on the raw input, then the framers and
/// [`crate::mysql::conn::Conn`].
pub fn mysql(data: &[u8]) {
    use crate::mysql::{conn::Conn, frame::Framer, msg};
    if let Some(g) = msg::Greeting::parse(data) {
        let _ = g.clear_caps(data, msg::SSL);
    }
    let _ = msg::Response::parse(data);
    let _ = msg::err_packet(data);
    let _ = msg::ok_packet(data);
    let _ = crate::sql::redact_passwords(data, crate::sql::Dialect::Mysql);
    let caps = if data.first().is_some_and(|b| b & 1 == 1) {
        msg::DEPRECATE_EOF
    } else {
        0
    };
    let mut conn = Conn::new(ctx("mysql"), caps | msg::PROTOCOL_41, None);
    let mut c = Framer::new(256);
    let mut s = Framer::new(256);
    let mut evs = Vec::new();
    for (client, chunk) in steps(data) {
        if client {
            c.feed(chunk, &mut |p| {
                conn.client(p, Now::default(), &mut evs);
            });
        } else {
            s.feed(chunk, &mut |p| conn.server(p, Now::default(), &mut evs));
        }
        evs.clear();
    }
    conn.abort_pending(Now::default(), &mut evs);
}
