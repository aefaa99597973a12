//! The player's input vocabulary: verification state per event, the verification summary of
//! a file, and side-panel rows. Filled from `sealcast_reader`'s verifying read (by the CLI's
//! adapter) and from `m`, `r`, `x` events and idle gaps; command and database events (other
//! teams) add rows of their own kinds.

/// Verification state of one event (SPEC §7), as the verifying reader gave it (its
/// `Coverage`; a read without a trust store is `Unsealed` here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verification {
    /// Not known yet: verification is still running. Never drawn as verified.
    #[default]
    Pending,
    /// Covered by the verified checkpoint with this `seq`.
    Verified {
        /// Checkpoint sequence number (SPEC §5).
        seq: u64,
    },
    /// After the last verified checkpoint, nothing failed: a crash tail, a live recording's
    /// newest part, or a file that could not be checked at all (no trust file, unreadable).
    Unsealed,
    /// At or after the first check that failed (modified, bad signature, untrusted key,
    /// truncated, a line breaking the rules), or in a file with no checkpoint at all
    /// (`FORMAT`: nothing in it was signed).
    Failed,
}

/// What verification concluded for the whole file; decides the badge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every line verified and sealed (`OK`).
    Sealed,
    /// A verified prefix, then an unsealed tail or no final checkpoint (`UNSEALED_TAIL`,
    /// `UNCLOSED`).
    Unsealed,
    /// Evidence of tampering (`MODIFIED`, `BAD_SIGNATURE`, `UNTRUSTED_KEY`, `TRUNCATED`).
    Broken,
    /// Not a sealed recording (`FORMAT`: plain asciicast, no checkpoint).
    Unsigned,
    /// Could not be checked (no trust file, unreadable receipt): the reason says why.
    Unverifiable,
}

/// The verification of one file, as the player needs it (converted from a verifying
/// `sealcast_reader::Reader` read, its events' coverage and its `Report`, by the CLI's
/// adapter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifySummary {
    /// Conclusion.
    pub outcome: Outcome,
    /// Status name as `sealcast verify` prints it (`OK`, `MODIFIED`, …).
    pub status: String,
    /// Why (empty for OK).
    pub reason: String,
    /// First principal of the trusted key that signed.
    pub signer: Option<String>,
    /// Key id (lowercase hex) that signed.
    pub key_id: Option<String>,
    /// The state of each event verification read, in runs of equal state: `(first, state)`,
    /// `first` the index of the run's first event (0-based, in file order, `b` events folded
    /// into the event they follow, as [`crate::Recording`] counts them), sorted by `first`;
    /// a run lasts until the next one's `first`, the last one until [`VerifySummary::events`].
    /// Never [`Verification::Pending`].
    pub runs: Vec<(u64, Verification)>,
    /// Number of events verification read (it stops at a line that breaks the rules; a live
    /// file may have grown since). Later events have [`VerifySummary::after_verified`].
    pub events: u64,
    /// The bytes verification vouches for: `(offset of a data frame in the compressed file,
    /// [`frame_digest`] of its decompressed content as the verifying read decoded it)` for
    /// every data frame whose lines it read as verified, sorted by offset. The player
    /// shows an event as verified only when its frame's content, decoded again for the
    /// screen, has this digest (SPEC §7.2); an event in a frame without one is never
    /// verified.
    pub frames: Vec<(u64, FrameDigest)>,
}

/// SHA-256 of a data frame's decompressed content (see [`VerifySummary::frames`]).
pub type FrameDigest = [u8; 32];

/// The [`FrameDigest`] of `content` (a data frame's decompressed bytes, SPEC §1).
pub fn frame_digest(content: &[u8]) -> FrameDigest {
    use sha2::Digest;
    sha2::Sha256::digest(content).into()
}

impl VerifySummary {
    /// A summary of a file whose events were not read (unreadable, no trust file): every
    /// event has [`VerifySummary::after_verified`].
    pub fn without_events(
        outcome: Outcome,
        status: impl Into<String>,
        reason: impl Into<String>,
    ) -> VerifySummary {
        VerifySummary {
            outcome,
            status: status.into(),
            reason: reason.into(),
            signer: None,
            key_id: None,
            runs: Vec::new(),
            events: 0,
            frames: Vec::new(),
        }
    }

    /// Append the state of the next event (event number [`VerifySummary::events`]); never
    /// [`Verification::Pending`].
    pub fn push(&mut self, state: Verification) {
        if self.runs.last().is_none_or(|r| r.1 != state) {
            self.runs.push((self.events, state));
        }
        self.events += 1;
    }

    /// The state of event `event`.
    pub fn state_of(&self, event: u64) -> Verification {
        if event >= self.events {
            return self.after_verified();
        }
        let i = self.runs.partition_point(|r| r.0 <= event);
        match i.checked_sub(1) {
            Some(i) => self.runs[i].1,
            None => self.after_verified(),
        }
    }

    /// Index of the last event that is [`Verification::Verified`], if any.
    pub fn last_verified(&self) -> Option<u64> {
        let k = self
            .runs
            .iter()
            .rposition(|r| matches!(r.1, Verification::Verified { .. }))?;
        let end = self.runs.get(k + 1).map_or(self.events, |r| r.0);
        end.checked_sub(1)
    }

    /// The state of events after the verified extent.
    pub fn after_verified(&self) -> Verification {
        match self.outcome {
            Outcome::Broken => Verification::Failed,
            _ => Verification::Unsealed,
        }
    }
}

impl Verification {
    /// The worse of two states (Failed, then Unsealed, then Pending, then Verified): a row
    /// made of several events is only as verified as the least verified of them.
    pub fn worst(self, other: Verification) -> Verification {
        fn rank(v: Verification) -> u8 {
            match v {
                Verification::Verified { .. } => 0,
                Verification::Pending => 1,
                Verification::Unsealed => 2,
                Verification::Failed => 3,
            }
        }
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// Kind of a side-panel row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanelKind {
    /// A shell command: a `c` `start` and its `end` (SPEC §2.4.1), or a process group the
    /// proc source saw outside every claim (`sealcast commands`' proc rows, SPEC §2.4.5).
    Command {
        /// The command's `id` (shell rows).
        id: Option<u64>,
        /// Working directory the shell reported.
        cwd: Option<String>,
        /// Statuses of a pipeline (`$PIPESTATUS`), empty otherwise.
        pipestatus: Vec<i32>,
        /// Where the row comes from and what the recorder saw of it, as `sealcast
        /// commands` reports it: `shell`, `shell · 3 processes`, `proc` (no claim),
        /// `partial`, `late`, `cut`.
        sources: String,
    },
    /// A database statement: a `d` `db.stmt` and its `db.result`s (SPEC §11), or a failed
    /// `db.prepare` / `db.auth`.
    Query {
        /// Connection number `c` and what `db.open` said of it (`c1 alice@app (pg main)`).
        connection: Option<String>,
        /// Rows returned or affected (the last result that has a count).
        rows: Option<u64>,
        /// SQLSTATE and message of an error, or `aborted`/`skipped`.
        error: Option<String>,
    },
    /// A disagreement between the shell and proc sources, or a limit of them (SPEC §2.4.5),
    /// as `sealcast commands` reports it.
    Disagreement,
    /// An `m` marker.
    Marker,
    /// An `r` resize.
    Resize,
    /// A gap of at least 10 s without events.
    Idle,
    /// The `x` exit status of the recorded command.
    Exit,
}

impl PanelKind {
    /// True for command and query rows (what `[`/`]` step through when there are any).
    pub fn is_command(&self) -> bool {
        matches!(self, PanelKind::Command { .. } | PanelKind::Query { .. })
    }
}

/// One side-panel row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelRow {
    /// Start, µs since the session start.
    pub t_us: u64,
    /// Duration, µs (0 for instants).
    pub dur_us: u64,
    /// Kind.
    pub kind: PanelKind,
    /// Exit status (commands, `x`); non-zero is a failure.
    pub status: Option<i32>,
    /// Command line, statement, marker label, size (`100×30`).
    pub text: String,
    /// Verification state of the events the row comes from (the worst of them).
    pub verification: Verification,
    /// Indexes of the events the row comes from (start and end of a command, statement and
    /// results): its verification is recomputed from these.
    pub events: Vec<u64>,
}

impl PanelRow {
    /// A row without status, verification pending.
    pub fn new(t_us: u64, dur_us: u64, kind: PanelKind, text: String) -> PanelRow {
        PanelRow {
            t_us,
            dur_us,
            kind,
            status: None,
            text,
            verification: Verification::Pending,
            events: Vec::new(),
        }
    }

    /// True when the row is a failure (non-zero status or a statement error).
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| s != 0)
            || matches!(&self.kind, PanelKind::Query { error: Some(e), .. } if e != "aborted" && e != "skipped")
    }
}

/// `1h2m3s`, `83.5`, `1:02:03`, `2m`: a time from the `:` prompt or `--at`, in µs.
pub fn parse_time(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let secs_f = |v: &str| -> Option<f64> {
        let x: f64 = v.parse().ok()?;
        (x.is_finite() && x >= 0.0).then_some(x)
    };
    let total = if s.contains(':') {
        let mut t = 0.0;
        for part in s.split(':') {
            t = t * 60.0 + secs_f(part)?;
        }
        t
    } else if s.chars().any(|c| matches!(c, 'h' | 'm' | 's')) {
        let mut t = 0.0;
        let mut num = String::new();
        for c in s.chars() {
            match c {
                '0'..='9' | '.' => num.push(c),
                'h' | 'm' | 's' => {
                    let v = secs_f(&num)?;
                    num.clear();
                    t += v * match c {
                        'h' => 3600.0,
                        'm' => 60.0,
                        _ => 1.0,
                    };
                }
                _ => return None,
            }
        }
        if !num.is_empty() {
            t += secs_f(&num)?;
        }
        t
    } else {
        secs_f(s)?
    };
    if total > 1.0e9 {
        return None;
    }
    Some((total * 1_000_000.0).round() as u64)
}

/// `1:02:03` or `2:03.4` for a time in µs.
pub fn fmt_time(us: u64) -> String {
    let s = us / 1_000_000;
    let tenths = (us % 1_000_000) / 100_000;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}.{tenths}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_every_form() {
        assert_eq!(parse_time("1h2m3s"), Some(3_723_000_000));
        assert_eq!(parse_time("83.5"), Some(83_500_000));
        assert_eq!(parse_time("2m"), Some(120_000_000));
        assert_eq!(parse_time("1:02:03"), Some(3_723_000_000));
        assert_eq!(parse_time("1m30"), Some(90_000_000));
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("x"), None);
        assert_eq!(parse_time(""), None);
        assert_eq!(fmt_time(83_500_000), "1:23.5");
        assert_eq!(fmt_time(3_723_000_000), "1:02:03");
    }

    /// Event states kept as runs read back per event, whatever the run boundaries; events
    /// past what verification read have the state after the verified extent.
    #[test]
    fn event_states_in_runs() {
        use Verification::*;
        let v = |seq| Verified { seq };
        let states = [v(1), v(1), v(2), Unsealed, Unsealed, Failed];
        let mut s = VerifySummary::without_events(Outcome::Broken, "MODIFIED", "x");
        assert_eq!((s.state_of(0), s.last_verified()), (Failed, None));
        for st in states {
            s.push(st);
        }
        assert_eq!(s.runs.len(), 4);
        for (i, st) in states.iter().enumerate() {
            assert_eq!(s.state_of(i as u64), *st, "{i}");
        }
        assert_eq!(s.state_of(6), Failed);
        assert_eq!(s.last_verified(), Some(2));
        s.outcome = Outcome::Unsealed;
        assert_eq!(s.state_of(99), Unsealed);
    }
}
