//! `sealcast db-proxy --target NAME --listen PATH`: the database recording proxy as a
//! standalone process (operators, tests). Every client connection on the Unix socket is
//! recorded into its own sealed recording `<dir>/<session>.cast.zst` (+ seal receipt), with
//! `d` events (SPEC §11). The relay itself is [`sealcast_dbproxy::relay`].
//!
//! Exit code: 0 after SIGTERM/SIGINT; 3 for usage errors (bad config, unknown target, user
//! not allowed); 4 for I/O errors (socket, key).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use sealcast_dbproxy::access::User;
use sealcast_dbproxy::config::DbConfig;
use sealcast_dbproxy::relay::{self, Opened, Proxy};
use sealcast_dbproxy::{SealedSink, SinkError};
use sealcast_format::{host_id, names, Header, SealMeta, SessionInfo};
use sealcast_recorder::{
    archive, sys, CheckpointPolicy, Clock, SealedWriter, SyncedFile, SystemClock,
};
use sealcast_signer::SigningKey;

use super::UsageError;

/// Where the targets are read when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "/etc/sealcast/sealcast.toml";

#[derive(Debug, clap::Args)]
pub struct DbProxyArgs {
    /// Settings file with the `[db.<name>]` tables (default /etc/sealcast/sealcast.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The target: NAME of a `[db.NAME]` table.
    #[arg(long, value_name = "NAME")]
    pub target: String,
    /// Unix socket to listen on (created; must not exist). For psql use
    /// DIR/.s.PGSQL.PORT and connect with `-h DIR -p PORT`; for mariadb `--socket=PATH`.
    /// Put it in a directory only the session user can reach.
    #[arg(long, value_name = "PATH")]
    pub listen: PathBuf,
    /// Directory for the recordings (default: the local archive under the XDG data dir).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Signing key (PKCS#8 PEM/DER).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Host id stored in the recordings (default: the system host name).
    #[arg(long)]
    pub host_id: Option<String>,
    /// The session user: the only uid allowed on the socket (default: the invoking user).
    /// Must be allowed by the target's allowed_users / allowed_groups.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Seconds between time-based checkpoints.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub checkpoint_secs: u64,
    /// Event bytes between size-based checkpoints.
    #[arg(long, default_value_t = 65536, value_name = "BYTES")]
    pub checkpoint_bytes: u64,
}

type Sink = SealedSink<SyncedFile, SystemClock>;
/// The recording of one connection once it is opened: its sink and path.
type Slot = Arc<Mutex<Option<(Arc<Sink>, PathBuf)>>>;

struct Recorder {
    dir: PathBuf,
    key: Vec<u8>,
    host: String,
    user: String,
    target: String,
    policy: CheckpointPolicy,
}

impl Recorder {
    /// A new recording for one connection.
    fn open(&self) -> Result<(Arc<Sink>, PathBuf, String), SinkError> {
        let io = |e: String| SinkError::Io(std::io::Error::other(e));
        let key = SigningKey::from_file_bytes(&self.key).map_err(|e| io(e.to_string()))?;
        let session = sealcast_signer::new_session_id().map_err(|e| io(e.to_string()))?;
        let path = self.dir.join(names::recording_name(&session));
        let file = archive::create_recording(&path)?;
        let clock = SystemClock::new();
        let start_us = clock.wall_us();
        let header = Header {
            timestamp: Some((start_us / 1_000_000) as i64),
            command: Some(format!("sealcast db-proxy --target {}", self.target)),
            ..Header::sealed(SealMeta::new(
                session.clone(),
                self.host.clone(),
                self.user.clone(),
                start_us,
                format!("sealcast {}", env!("CARGO_PKG_VERSION")),
                key.id().to_string(),
            ))
        };
        let info = SessionInfo {
            shape: Some("db".into()),
            ..SessionInfo::default()
        };
        let w = SealedWriter::with_session(
            SyncedFile::new(file)?,
            key,
            &header,
            &info,
            clock,
            self.policy,
        )?;
        Ok((Arc::new(SealedSink::new(w)), path, session))
    }
}

/// Run the proxy until SIGTERM or SIGINT.
///
/// # Errors
/// [`UsageError`] for configuration problems, I/O errors otherwise.
pub fn run(a: DbProxyArgs) -> Result<u8> {
    let cfg_path = a
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let cfg =
        DbConfig::load(&cfg_path).map_err(|e| UsageError(format!("configuration error: {e}")))?;
    let target = cfg
        .target(&a.target, &cfg_path)
        .map_err(|e| UsageError(e.to_string()))?
        .clone();
    let user = match &a.user {
        Some(u) => {
            User::lookup(u).ok_or_else(|| UsageError(format!("--user {u}: no such user")))?
        }
        None => User::current()
            .ok_or_else(|| UsageError("the invoking user has no passwd entry".into()))?,
    };
    if !target.allows(&user) {
        return Err(UsageError(format!(
            "user {} may not use [db.{}] (allowed_users / allowed_groups in {})",
            user.name,
            a.target,
            cfg_path.display()
        ))
        .into());
    }
    if a.checkpoint_secs == 0 || a.checkpoint_bytes == 0 {
        return Err(
            UsageError("--checkpoint-secs and --checkpoint-bytes must be positive".into()).into(),
        );
    }
    let key = fs::read(&a.key).with_context(|| format!("reading {}", a.key.display()))?;
    SigningKey::from_file_bytes(&key).with_context(|| format!("loading {}", a.key.display()))?;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => crate::paths::archive()?,
    };
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let host = host_id::sanitize(a.host_id.as_deref().unwrap_or(&sys::hostname()));
    if host.is_empty() {
        return Err(UsageError("--host-id must not be empty".into()).into());
    }
    let proxy = Arc::new(
        Proxy::new(&a.target, target, user.uid)
            .map_err(|e| UsageError(format!("[db.{}]: {e}", a.target)))?,
    );
    let rec = Arc::new(Recorder {
        dir,
        key,
        host,
        user: user.name.clone(),
        target: a.target.clone(),
        policy: CheckpointPolicy {
            interval_us: a.checkpoint_secs.saturating_mul(1_000_000),
            max_bytes: a.checkpoint_bytes,
            ..CheckpointPolicy::default()
        },
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(proxy, rec, &a.listen, user.uid))
}

async fn serve(proxy: Arc<Proxy>, rec: Arc<Recorder>, listen: &Path, uid: u32) -> Result<u8> {
    use tokio::signal::unix::{signal, SignalKind};
    let listener = tokio::net::UnixListener::bind(listen)
        .with_context(|| format!("listening on {}", listen.display()))?;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        fs::set_permissions(listen, fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(listen, Some(uid), None)
            .with_context(|| format!("chown {}", listen.display()))?;
    } else {
        // Not root: the socket cannot be given to the user; SO_PEERCRED still admits only them.
        fs::set_permissions(listen, fs::Permissions::from_mode(0o666))?;
    }
    eprintln!(
        "sealcast db-proxy: [db.{}] listening on {}",
        proxy.name,
        listen.display()
    );
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            acc = listener.accept() => {
                let (stream, _) = match acc {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("sealcast db-proxy: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                tasks.spawn(connection(proxy.clone(), rec.clone(), stream, rx.clone()));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    let _ = tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    let _ = fs::remove_file(listen);
    Ok(0)
}

async fn connection(
    proxy: Arc<Proxy>,
    rec: Arc<Recorder>,
    stream: tokio::net::UnixStream,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let slot: Slot = Arc::new(Mutex::new(None));
    let opener = {
        let (slot, rec) = (slot.clone(), rec.clone());
        Box::new(move || {
            let (sink, path, session_id) = rec.open()?;
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some((sink.clone(), path));
            Ok(Opened {
                sink,
                c: 1,
                session_id,
            })
        })
    };
    let ticker = {
        let slot = slot.clone();
        async move {
            let mut iv = tokio::time::interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                let s = slot
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .as_ref()
                    .map(|(s, _)| s.clone());
                if let Some(s) = s {
                    let _ = s.tick();
                }
            }
        }
    };
    let outcome = tokio::select! {
        o = relay::handle(proxy, stream, opener, shutdown) => o,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    let Some((sink, path)) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    match sink.finish() {
        Ok((_, note)) => {
            if let Err(e) = archive::write_receipt(&path, &note) {
                eprintln!("sealcast db-proxy: {}: seal receipt: {e}", path.display());
            }
            eprintln!(
                "sealcast db-proxy: {} closed ({}{})",
                path.display(),
                outcome.reason,
                outcome.error.map(|e| format!(": {e}")).unwrap_or_default()
            );
        }
        Err(e) => eprintln!(
            "sealcast db-proxy: {}: recording failed: {e}",
            path.display()
        ),
    }
}
