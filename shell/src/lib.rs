//! `sealcast-shell`: what sshd runs on a bastion, so that every SSH session is recorded as a
//! sealed recording (format-spec/SPEC.md §2.3) that the recorded user cannot undo.
//!
//! # Deployment
//!
//! Installed (by `sealcast install-bastion`) owned by the dedicated system user `sealcast`,
//! mode 4755, and used both as sshd's `ForceCommand` (sshd_config(5)) and as the recorded
//! users' login shell (`usermod -s`, or `install-bastion --users/--group`): with ForceCommand
//! alone, sshd runs `<login shell> -c <ForceCommand>`, and a bash login shell reads the user's
//! `~/.bashrc` first, which could `exec` something else or run anything unrecorded. As the
//! login shell, sealcast-shell is the first thing sshd runs. It therefore refuses a session
//! whose user's passwd login shell is not this binary (same file), unless the configuration
//! says `allow_foreign_login_shell = true` (unsafe; SPEC §10.2).
//!
//! # What it does
//!
//! 1. Reads only `/etc/sealcast/sealcast.toml` (through [`sealcast_config`], the one schema
//!    of that file; `--config FILE` only for a file that root or `sealcast` owns in
//!    directories nobody else can write, [`sealcast_config::load_trusted`]).
//! 2. Classifies the session from `argv` and sshd's environment ([`classify`]): interactive,
//!    `ssh host cmd`, `ssh -t host cmd`, `ssh -T host`, or an scp / sftp / rsync transfer.
//! 3. Detects a session already recorded by an ancestor sealcast-shell ([`nested`]) and then
//!    just runs the command.
//! 4. Creates `<spool_dir>/<session-id>.cast.zst` (mode 0640) and writes its header and
//!    checkpoint 0 **before** the session starts. When that fails and `fail_closed` is on
//!    (the default), prints `sealcast: recording unavailable (<reason>); session refused` and
//!    exits 1 without starting anything.
//! 5. Runs the configured `shell` as the user, with a rebuilt environment ([`mod@env`]) in the
//!    user's home: in a new PTY for interactive and `-t` sessions
//!    ([`sealcast_recorder::pty`]), over pipes otherwise ([`sealcast_recorder::pipes`]:
//!    stdout as `o`, stderr as `e` events). A file transfer — exactly `scp -t`/`-f`,
//!    `rsync --server` or an sftp server with the options their clients send
//!    ([`classify::transfer`], SPEC §10.1) — runs its configured program directly instead,
//!    without a shell and without `HOME`; anything else is an ordinary command, recorded in
//!    full. File transfers follow `transfer_policy`:
//!    `metadata` records only an `s` summary (bytes each way, duration), `full` everything,
//!    `deny` refuses with `sealcast: file transfer (<kind>) is not allowed on this host`,
//!    exit 1, and still records the attempt.
//! 6. Database sessions ([`db`], SPEC §10.3): `db <target>` runs the target's client (psql,
//!    mariadb) by argv against a recording proxy inside this process; every shell session gets
//!    such a proxy for each target its user may use (`psql service=<target>`). Their `d` events
//!    go into the session's recording. Any other command whose first word is `db` is refused
//!    (`sealcast: db session refused: <reason>`, exit 1) and the attempt recorded.
//! 7. Closes the recording with the exit status (`x`) and a final checkpoint — also on client
//!    disconnect (`SIGHUP`), `SIGTERM` or when the shell dies — writes the seal receipt, and
//!    exits with the session's status.
//!
//! There are no hotkeys or escape sequences: nothing the user types reaches sealcast-shell.
//!
//! # Privilege model: set-uid to `sealcast`
//!
//! The binary is **set-uid** to the dedicated user `sealcast`, which owns the signing key
//! (mode 0600 or 0400) and the spool directory. At start the process has real uid = the user
//! and effective = saved uid = `sealcast` ([`privs`]). It reads the configuration and key and
//! creates the recording as `sealcast`. The child is started so that **in the child, before
//! `exec`**, it calls `setresuid(user, user, user)` (checked with `getresuid`), dropping the
//! saved `sealcast` id; group ids were never changed by the set-uid `exec`, so they already
//! are the user's, supplementary groups included. Then **the recorder** calls
//! `setresuid(sealcast, sealcast, sealcast)` and `prctl(PR_SET_DUMPABLE, 0)`: from then on
//! the user can neither signal it (`kill(2)` needs the sender's real or effective uid to
//! match the target's real or saved uid) nor `ptrace` it or read its memory, and cannot read,
//! change or remove the key or the recordings.
//!
//! Why not set-gid to a `sealcast` group: a set-gid program keeps the user's real **and
//! effective uid**, so the user could still signal (`SIGKILL`, `SIGSTOP`) and — `ptrace`
//! permission being uid-based once a process is dumpable again — interfere with the
//! recorder, and the files it creates would be owned by the user, who could then change
//! their mode, or truncate or remove them where the directory allows. Set-uid to a user with
//! no other purpose gives the recorder an identity the recorded user cannot act as.
//!
//! The PTY of a session is created with the user's effective uid, so the user owns their
//! terminal device as with plain sshd. sshd's own terminal (the recorder's stdin) is put in
//! exclusive mode (`TIOCEXCL`) for the session, so the session's processes cannot open it by
//! name and write to the client past the recording.
//!
//! When the binary is **not** set-uid (real uid = effective uid: tests as root, a developer's
//! run), every id change is skipped and an info line says so.
//!
//! Order matters: the child, forked and switched to the user, **waits before `exec`** until
//! the recorder has made that last `setresuid` (a gate of two pipes,
//! [`sealcast_recorder::spawn::ForkHook`]), so no code of the user runs while the recorder
//! could still be signalled by the user — without the gate a command such as
//! `kill -STOP $PPID` could win the race. The remaining window is from the `exec` of
//! sealcast-shell to that point (milliseconds, before the session starts), in which only the
//! user's *other* processes could send it `SIGKILL` or `SIGSTOP`; the recording then holds the
//! header and checkpoint 0 (status `UNCLOSED`). `SIGHUP`, `SIGTERM` and `SIGINT` are caught
//! from the start and close the recording normally.
//!
//! Having given up the user's id, the recorder can no longer signal the session's processes
//! itself, yet it must hang them up (`SIGHUP`, then `SIGKILL`) when the client goes away or the
//! recording fails. Before the drop it therefore starts a small helper as the user
//! ([`sealcast_recorder::spawn::GroupSignaller`]: `/bin/sh` reading `<signal> <pgid>` lines
//! from a pipe) that sends those signals for it. The user can kill the helper; that only
//! removes the hangup of processes the user could keep alive anyway (`nohup`), never the
//! closing of the recording.
//!
//! # Exit codes and messages (stderr, one line each)
//!
//! | exit | when | message |
//! |---|---|---|
//! | the session's status | the session ran: the command's exit code, `128 + N` for signal N (the recorder's signal when it ended the session first) | — |
//! | 1 | configuration unusable | `sealcast: configuration error: <file>[:<line>]: <detail>` |
//! | 1 | `--config` not trusted | `sealcast: refusing --config <file>: <reason>` |
//! | 1 | the user's login shell is not this sealcast-shell, `allow_foreign_login_shell = false` | `sealcast: session refused: the login shell of <user> is <shell>, not sealcast-shell (<path>); this setup cannot be recorded` |
//! | 1 | recording cannot be created, `fail_closed = true` | `sealcast: recording unavailable (<reason>); session refused` |
//! | 1 | a `db` command refused (not exactly `db <target>`, a target the user may not use or that cannot be loaded; recorded) | `sealcast: db session refused: <reason>` |
//! | 1 | transfer under `deny` | `sealcast: file transfer (scp\|sftp\|rsync) is not allowed on this host` |
//! | 1 | recording failed mid-session, `fail_closed = true` (session hung up) | `sealcast: recording failed (<reason>); session ended` |
//! | 1 | shell / transfer program cannot be started, or the transfer program is not trusted (recorded with `x` = 1) | `sealcast: cannot start <program>: <error>` |
//! | 1 | bad command line, no passwd entry | `sealcast: <detail>` |
//!
//! With `fail_closed = false` the session runs anyway, after
//! `sealcast: warning: recording unavailable (<reason>); session NOT recorded` or, mid-session,
//! `sealcast: warning: recording failed (<reason>); the session continues UNRECORDED`.
//! `--check-config` checks the configuration, the key, the spool directory and that each
//! transfer program (`scp_path`, `rsync_path`, `sftp_server`) passes the trusted-path check a
//! transfer gets before it runs (one that is not installed is a warning), and loads each
//! `[db.*]` target (its `client` is an executable file; CA file; injected credentials file
//! owned by the service user or root, mode 0600); it prints
//! `sealcast-shell: configuration OK (...)` and exits 0, or 1 with a `configuration error`
//! line.

pub mod classify;
pub mod db;
pub mod env;
pub mod log;
pub mod nested;
pub mod privs;
mod session;

pub use session::EXIT_FAILURE;

/// Run sealcast-shell: `argv` and the environment as the process received them. Returns the
/// exit code (see the table above).
pub fn main(
    argv: Vec<std::ffi::OsString>,
    env: Vec<(std::ffi::OsString, std::ffi::OsString)>,
) -> u8 {
    session::run(argv, env)
}
