//! Database sessions through the bastion (format-spec/SPEC.md §10.3): the recording proxy of
//! [`sealcast_dbproxy`] started by sealcast-shell inside the session's own recording.
//!
//! - **`ssh bastion db <target>`** ([`crate::classify::Shape::Db`]): one target's proxy, and
//!   the target's client (`psql`, `mariadb`) run by argv in the recorded PTY (or over pipes
//!   without `-t`) pointed at the proxy's socket.
//! - **Every shell session** (interactive, `ssh -T`, `ssh host cmd`): a proxy for every target
//!   the user may use, and `PGSERVICEFILE` / `MYSQL_HOME` pointing at generated option files
//!   so that `psql service=<target>` and `mariadb --defaults-group-suffix=_<target>` reach the
//!   target through it.
//!
//! **Who runs what.** The proxies run **in the recorder process** (sealcast-shell, after it
//! dropped to the service user), on one thread with a current-thread tokio runtime started by
//! [`ProxyObserver`] when the session's writer loop starts. Every connection writes its `d`
//! events through the session's [`sealcast_recorder::relay::EventSender`]
//! ([`SenderSink`]: write-ahead, fail-closed), so they interleave with the
//! PTY output in the one recording.
//!
//! **Privileges.** [`prepare`] runs before the child is started, with the effective uid of the
//! service user: it reads each injected credentials file there ([`Proxy::new`], which refuses a
//! file not owned by the service user or root, or readable by group or others), so the secret
//! lives only in the recorder's memory (non-dumpable after the drop, SPEC §10). Then, with the
//! effective uid switched to the user ([`Privileges::as_user`]), it creates the socket
//! directory `/tmp/sealcast-db-<session>` (mode 0700, owned by the user: nobody else can
//! reach the sockets), binds one socket per target in `<dir>/<target>/` and writes the option
//! files; the listening descriptors stay with the recorder. Each connection's `SO_PEERCRED`
//! uid must still be the user's; another uid is refused and recorded (`db.refused`).

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sealcast_config::db::{Protocol, Target};
use sealcast_config::Config;
use sealcast_dbproxy::access::{Allows, User as DbUser};
use sealcast_dbproxy::relay::{self, Opened, Proxy};
use sealcast_dbproxy::{EventSink, SinkError};
use sealcast_recorder::relay::{ObserveCtx, Observer, Stream};
use tokio::sync::watch;

use crate::privs::Privileges;

/// How long the proxies get at the end of the session to close their connections (each
/// records `db.close` `session_end`) before the recorder stops waiting (it waits at most
/// [`sealcast_recorder::relay::OBSERVER_STOP_GRACE`] anyway).
pub const CLOSE_GRACE: Duration = Duration::from_millis(1500);

/// Why a database session or proxy could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// No `[db.<target>]` the user may use (unknown and forbidden look the same to the user).
    #[error("no database target {target} that {user} may use")]
    NotAllowed {
        /// The name asked for.
        target: String,
        /// The session user.
        user: String,
    },
    /// The target's settings could not be loaded (CA file, credentials file).
    #[error("[db.{target}]: {reason}")]
    Target {
        /// The target.
        target: String,
        /// What failed.
        reason: String,
    },
    /// Creating the socket directory, a socket or an option file.
    #[error("{}: {source}", path.display())]
    Setup {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
}

/// One target's proxy, listening.
#[derive(Debug)]
pub struct Listening {
    /// Target name.
    pub name: String,
    /// The proxy (settings, TLS client configuration, injected secret).
    pub proxy: Arc<Proxy>,
    /// The socket, bound and listening (accepted from once the session starts).
    pub listener: UnixListener,
    /// Its path: `<dir>/<name>/.s.PGSQL.5432` or `<dir>/<name>/mysqld.sock`.
    pub socket: PathBuf,
}

/// The proxies of one session, before it starts.
#[derive(Debug, Default)]
pub struct DbSessions {
    /// The session id (`application_name` upstream carries it).
    pub session: String,
    /// `/tmp/sealcast-db-<session>` (owned by the user, mode 0700).
    pub dir: Option<PathBuf>,
    /// The targets, listening.
    pub targets: Vec<Listening>,
    /// Targets the user may use that could not be set up (name, reason); the session goes on
    /// without them.
    pub failed: Vec<(String, String)>,
}

/// The socket file name of a protocol inside `<dir>/<target>/`: `.s.PGSQL.5432` (what libpq
/// opens for `host=<dir>/<target> port=5432`) or `mysqld.sock`.
pub fn socket_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Postgres => ".s.PGSQL.5432",
        Protocol::Mysql => "mysqld.sock",
    }
}

/// The targets of `cfg` that `user` may use, by name.
pub fn allowed_targets<'a>(cfg: &'a Config, user: &DbUser) -> Vec<(&'a str, &'a Target)> {
    cfg.db
        .iter()
        .filter(|(_, t)| t.allows(user))
        .map(|(n, t)| (n.as_str(), t))
        .collect()
}

/// Set up the proxies of `targets` for a session (see the module documentation for the
/// privileges). A target whose settings cannot be loaded is put in [`DbSessions::failed`].
///
/// # Errors
/// [`DbError::Setup`] when the directory, a socket or an option file cannot be created.
pub fn prepare(
    targets: &[(&str, &Target)],
    session: &str,
    uid: u32,
    privs: &Privileges,
) -> Result<DbSessions, DbError> {
    let mut out = DbSessions {
        session: session.to_string(),
        ..DbSessions::default()
    };
    let mut ready = Vec::new();
    for (name, t) in targets {
        // As the service user: the credentials file is readable by it alone.
        match Proxy::new(name, (*t).clone(), uid) {
            Ok(p) => ready.push((name.to_string(), Arc::new(p))),
            Err(e) => out.failed.push((name.to_string(), e.to_string())),
        }
    }
    if ready.is_empty() {
        return Ok(out);
    }
    let dir = PathBuf::from(format!("/tmp/sealcast-db-{session}"));
    let setup = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Setup { path, source }
    };
    let targets = privs
        .as_user(|| {
            sweep_stale(uid);
            // mkdir fails if anything exists there: nobody else's directory is ever used.
            fs::DirBuilder::new().mode(0o700).create(&dir)?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
            let mut service = String::from(
                "# Written by sealcast-shell for this session: every target reaches the\n\
                 # database only through the session's recording proxy.\n",
            );
            let mut mycnf = service.clone();
            let mut v = Vec::new();
            for (name, proxy) in &ready {
                let sub = dir.join(name);
                fs::DirBuilder::new().mode(0o700).create(&sub)?;
                let socket = sub.join(socket_name(proxy.target.protocol));
                let listener = UnixListener::bind(&socket)?;
                match proxy.target.protocol {
                    Protocol::Postgres => {
                        service.push_str(&format!("[{name}]\nhost={}\nport=5432\n", sub.display()));
                        if let Some(d) = &proxy.target.database {
                            service.push_str(&format!("dbname={d}\n"));
                        }
                    }
                    Protocol::Mysql => {
                        mycnf.push_str(&format!("[client_{name}]\nsocket={}\n", socket.display()));
                        if let Some(d) = &proxy.target.database {
                            mycnf.push_str(&format!("database={d}\n"));
                        }
                    }
                }
                v.push(Listening {
                    name: name.clone(),
                    proxy: proxy.clone(),
                    listener,
                    socket,
                });
            }
            fs::write(dir.join("pg_service.conf"), service)?;
            fs::write(dir.join("my.cnf"), mycnf)?;
            Ok(v)
        })
        .map_err(setup(&dir))?;
    out.dir = Some(dir);
    out.targets = targets;
    Ok(out)
}

/// A socket directory whose set-up is not complete (no `my.cnf` yet) is swept only once it
/// is this old: the session making it may not have bound its sockets yet (two sessions of
/// one user starting together would otherwise remove each other's fresh directory), while
/// a set-up cut short by a crash still goes eventually.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(60);

/// Remove this user's socket directories of sessions that no longer run: a
/// `/tmp/sealcast-db-*` directory (not a symbolic link) owned by `uid` in which no socket is
/// listening any more (`/proc/net/unix` lists the path of every bound socket; a live
/// session's listeners are there), and whose set-up was complete (`my.cnf`, written after
/// every socket is bound) or is older than [`SWEEP_MIN_AGE`]. Runs with the user's
/// effective uid (the directories are theirs); errors are ignored.
fn sweep_stale(uid: u32) {
    sweep_stale_in(Path::new("/tmp"), uid, std::time::SystemTime::now());
}

/// [`sweep_stale`] in `root`, with the age measured at `now`.
fn sweep_stale_in(root: &Path, uid: u32, now: std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let live: Vec<PathBuf> = fs::read_to_string("/proc/net/unix")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(7).map(PathBuf::from))
        .collect();
    let Ok(rd) = fs::read_dir(root) else { return };
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().starts_with("sealcast-db-") {
            continue;
        }
        let path = e.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        // Unknown age (a clock before the directory's time): young.
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= SWEEP_MIN_AGE);
        let set_up = || fs::symlink_metadata(path.join("my.cnf")).is_ok();
        if !meta.is_dir()
            || meta.uid() != uid
            || !(old || set_up())
            || live.iter().any(|p| p.starts_with(&path))
        {
            continue;
        }
        let _ = fs::remove_dir_all(&path);
    }
}

impl DbSessions {
    /// The client environment of a shell session: `PGSERVICEFILE=<dir>/pg_service.conf`
    /// (a `[<target>]` service per PostgreSQL target: `psql service=<target>`) and
    /// `MYSQL_HOME=<dir>` (its `my.cnf` has a `[client_<target>]` group per MySQL target:
    /// `mariadb --defaults-group-suffix=_<target>`), and `SEALCAST_DB_DIR=<dir>`. Empty when
    /// no proxy runs.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        vec![
            (
                "PGSERVICEFILE".into(),
                dir.join("pg_service.conf").into_os_string(),
            ),
            ("MYSQL_HOME".into(), dir.clone().into_os_string()),
            ("SEALCAST_DB_DIR".into(), dir.clone().into_os_string()),
        ]
    }

    /// The argv (after the program) of a `db <target>` session's client: `-h <dir>/<target>
    /// -p 5432` for psql, `--socket=<socket>` for mariadb. Nothing else: the user's own
    /// option files apply as usual, and the proxy decides the login (injected) and database.
    pub fn client_args(&self) -> Vec<OsString> {
        let Some(t) = self.targets.first() else {
            return Vec::new();
        };
        match t.proxy.target.protocol {
            Protocol::Postgres => {
                let dir = t.socket.parent().unwrap_or(Path::new("/nonexistent"));
                vec!["-h".into(), dir.into(), "-p".into(), "5432".into()]
            }
            Protocol::Mysql => {
                let mut s = OsString::from("--socket=");
                s.push(&t.socket);
                vec![s]
            }
        }
    }
}

/// The session's observer with the proxies: delegates everything to `inner` (the command
/// observer) and, at the start of the writer loop, starts the proxies' thread with the
/// session's [`sealcast_recorder::relay::EventSender`]; at the end it closes every
/// connection (`db.close` `session_end`) and reports stopped once they are closed.
pub struct ProxyObserver {
    inner: Box<dyn Observer>,
    targets: Vec<Listening>,
    session: String,
    shutdown: Option<watch::Sender<bool>>,
    done: Arc<AtomicBool>,
}

impl ProxyObserver {
    /// Wrap `inner`.
    pub fn new(inner: Box<dyn Observer>, db: DbSessions) -> ProxyObserver {
        ProxyObserver {
            inner,
            targets: db.targets,
            session: db.session,
            shutdown: None,
            done: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Observer for ProxyObserver {
    fn start(&mut self, ctx: &mut ObserveCtx<'_>) {
        self.inner.start(ctx);
        let targets = std::mem::take(&mut self.targets);
        if targets.is_empty() {
            return;
        }
        let sink: Arc<dyn EventSink> = Arc::new(SenderSink::new(ctx.sender()));
        let (tx, rx) = watch::channel(false);
        self.shutdown = Some(tx);
        self.done.store(false, Ordering::SeqCst);
        let done = self.done.clone();
        let session = self.session.clone();
        let spawned = std::thread::Builder::new()
            .name("sealcast-dbproxy".into())
            .spawn(move || {
                serve(targets, sink, session, rx);
                done.store(true, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            // The listeners were moved into the closure and are closed: clients get
            // "connection refused", nothing runs unrecorded.
            tracing::error!(target: crate::log::AUDIT, "database proxies not started: {e}");
            self.done.store(true, Ordering::SeqCst);
        }
    }
    fn on_output(&mut self, stream: Stream, bytes: &[u8], ctx: &mut ObserveCtx<'_>) {
        self.inner.on_output(stream, bytes, ctx);
    }
    fn on_tick(&mut self, ctx: &mut ObserveCtx<'_>) {
        self.inner.on_tick(ctx);
    }
    fn stop(&mut self) {
        self.inner.stop();
        if let Some(tx) = &self.shutdown {
            let _ = tx.send(true);
        }
    }
    fn stopped(&self) -> bool {
        self.inner.stopped() && self.done.load(Ordering::SeqCst)
    }
    fn finish(&mut self, ctx: &mut ObserveCtx<'_>) {
        self.inner.finish(ctx);
    }
}

/// The proxies' thread: accept on every socket until shutdown, each connection relayed by
/// [`relay::handle`] into `sink` with its own connection number `c` (from 1, across targets).
fn serve(
    targets: Vec<Listening>,
    sink: Arc<dyn EventSink>,
    session: String,
    shutdown: watch::Receiver<bool>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(target: crate::log::AUDIT, "database proxies not started: {e}");
            return;
        }
    };
    let counter = Arc::new(AtomicU64::new(0));
    rt.block_on(async move {
        let mut loops = tokio::task::JoinSet::new();
        for t in targets {
            let listener = match t
                .listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixListener::from_std(t.listener))
            {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(target: crate::log::AUDIT, target_name = %t.name,
                                    "database proxy not started: {e}");
                    continue;
                }
            };
            loops.spawn(accept_loop(
                t.proxy,
                listener,
                sink.clone(),
                session.clone(),
                counter.clone(),
                shutdown.clone(),
            ));
        }
        while loops.join_next().await.is_some() {}
    });
}

async fn accept_loop(
    proxy: Arc<Proxy>,
    listener: tokio::net::UnixListener,
    sink: Arc<dyn EventSink>,
    session: String,
    counter: Arc<AtomicU64>,
    shutdown: watch::Receiver<bool>,
) {
    let mut conns = tokio::task::JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            acc = listener.accept() => match acc {
                Ok((stream, _)) => {
                    let (sink, session, counter) = (sink.clone(), session.clone(), counter.clone());
                    let open: relay::Opener = Box::new(move || {
                        Ok(Opened {
                            sink,
                            c: counter.fetch_add(1, Ordering::SeqCst) + 1,
                            session_id: session,
                        })
                    });
                    conns.spawn(relay::handle(proxy.clone(), stream, open, shutdown.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            _ = relay::stopped(&mut stop) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// [`EventSink`] over a session's [`sealcast_recorder::relay::EventSender`]: how a proxy
/// started by sealcast-shell writes into the same recording as the session's PTY or pipes
/// (SPEC §11, "Header"). Both [`EventSink::record`] and [`EventSink::note`] wait for the
/// writer ([`sealcast_recorder::relay::EventSender::submit_and_wait`]: the event is chained
/// and its compressed bytes are handed to the file before the call returns), so a statement
/// is never forwarded, and a result never relayed, before it is in the recording; the
/// writer's latched error fails every later call (fail-closed). It lives here, not in
/// dbproxy, so that dbproxy links the writer alone (no recorder, no PTY code).
#[derive(Debug, Clone)]
pub struct SenderSink {
    tx: sealcast_recorder::relay::EventSender,
}

impl SenderSink {
    /// Wrap a session's sender.
    pub fn new(tx: sealcast_recorder::relay::EventSender) -> SenderSink {
        SenderSink { tx }
    }
}

impl EventSink for SenderSink {
    fn record(&self, json: &str) -> Result<(), SinkError> {
        use sealcast_recorder::relay::{Event, SubmitError};
        match self.tx.submit_and_wait(Event::Database(json.to_string())) {
            Ok(()) => Ok(()),
            Err(SubmitError::Recording { kind }) => Err(SinkError::Io(std::io::Error::new(
                kind,
                "the session's recording failed",
            ))),
            Err(_) => Err(SinkError::Closed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    /// A directory of a session still setting up (no `my.cnf`, no socket yet) is kept (the
    /// race of two sessions of one user starting at once), and swept once old; an ended
    /// session's (set up, nothing listening) is swept at once; one with a listening socket
    /// is kept at any age; another user's too.
    #[test]
    fn sweep_keeps_directories_being_set_up_and_live_ones() {
        let root = tempfile::tempdir().unwrap();
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        let setting_up = root.path().join("sealcast-db-setting-up");
        let ended = root.path().join("sealcast-db-ended");
        let live = root.path().join("sealcast-db-live");
        let other = root.path().join("not-ours");
        for d in [&setting_up, &ended, &live, &other] {
            fs::create_dir(d).unwrap();
        }
        for d in [&ended, &live] {
            fs::write(d.join("my.cnf"), "").unwrap();
        }
        let _listener = UnixListener::bind(live.join("sock")).unwrap();
        let now = SystemTime::now();
        sweep_stale_in(root.path(), uid, now);
        assert!(setting_up.exists(), "a directory being set up was swept");
        assert!(!ended.exists(), "an ended session's directory was kept");
        assert!(live.exists(), "a live session's directory was swept");
        sweep_stale_in(root.path(), uid, now + SWEEP_MIN_AGE);
        assert!(!setting_up.exists(), "a set-up cut short was kept");
        assert!(live.exists(), "a live session's directory was swept");
        assert!(other.exists());
        sweep_stale_in(root.path(), uid + 1, now + SWEEP_MIN_AGE * 10);
        assert!(live.exists());
    }
}
