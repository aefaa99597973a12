//! Command and process events (SPEC §2.4): the data of `c` (source `shell`: what the
//! shell's hooks claim) and `p` (source `proc`: what the recorder saw in `/proc`) extension
//! events.
//!
//! The data of both is a JSON object written as a JSON *string* (like `s`, SPEC §2.3), with
//! exactly the keys of SPEC §2.4.1 / §2.4.2 in that order and optional keys omitted. The
//! serde field order of the variants below *is* the key order; `ev` comes first.

use serde::{Deserialize, Serialize};

use crate::error::ParseError;

/// Longest marker label (`m` after a command `start`), bytes before the `…` (SPEC §2.4.1).
pub const MARKER_LABEL_MAX: usize = 256;

fn is_false(b: &bool) -> bool {
    !*b
}

/// The data of a `c` event (SPEC §2.4.1). `ev` selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase")]
#[non_exhaustive]
pub enum CommandEvent {
    /// The recorder started `shell` (`bash`, `zsh`) with hooks: commands are expected to be
    /// claimed from here on. Written once, before any other `c` event.
    Hooks {
        /// Shell name.
        shell: String,
    },
    /// A command line the shell accepted and is about to run (mark `C`).
    Start {
        /// 1, 2, … in order of `start` events.
        id: u64,
        /// Source: `"shell"`.
        src: String,
        /// The command line (UTF-8, lossy).
        cmd: String,
        /// Working directory from the last `A` mark; absent before the first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        /// Only the first simple command of the line (bash without a history entry).
        #[serde(default, skip_serializing_if = "is_false")]
        partial: bool,
        /// The line was cut (hooks: 8192 characters; recorder: 32 KiB).
        #[serde(default, skip_serializing_if = "is_false")]
        trunc: bool,
        /// Claimed only after the command ran (bash: no `DEBUG` trap ran for the line, e.g.
        /// its first command was a subshell): it ran between the previous command's end and
        /// this event.
        #[serde(default, skip_serializing_if = "is_false")]
        late: bool,
    },
    /// Command `id` finished (mark `D`), or was closed without one (no `exit`).
    End {
        /// The `id` of its `start`.
        id: u64,
        /// Source: `"shell"`.
        src: String,
        /// Exit status the shell reported (`$?`); absent when it reported none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit: Option<i32>,
        /// Statuses of a pipeline of two or more commands; empty otherwise (then omitted).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pipestatus: Vec<i32>,
        /// Microseconds from the `start` event to this one.
        duration_us: u64,
    },
    /// OSC 133 sequences in one output read that did not carry the session nonce.
    Ignored {
        /// How many were ignored.
        marks: u64,
        /// Of those, how many carried a `sealcast=` nonce that did not match.
        bad_nonce: u64,
    },
}

/// The `src` value of command events written from shell hooks.
pub const SHELL_SOURCE: &str = "shell";

/// The data of a `p` event (SPEC §2.4.2). `ev` selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ProcessEvent {
    /// Observation starts. Written once, before any other `p` event.
    Watch {
        /// Pid of the recorded command (the session leader).
        root: i32,
        /// Its session id.
        sid: i32,
        /// Sampling period, µs.
        period_us: u64,
    },
    /// A process not seen before.
    Start(ProcStart),
    /// A known process (same pid and start time) shows another `argv` or `comm`.
    Exec {
        /// Process id.
        pid: i32,
        /// Real uid.
        uid: u32,
        /// Effective uid.
        euid: u32,
        /// Kernel command name (stat field 2).
        comm: String,
        /// Arguments from `/proc/<pid>/cmdline`.
        argv: Vec<String>,
        /// cmdline was longer than 4096 bytes and was cut.
        #[serde(default, skip_serializing_if = "is_false")]
        trunc: bool,
    },
    /// The process is gone (or a zombie).
    Exit {
        /// Process id.
        pid: i32,
    },
    /// The PTY's foreground process group changed.
    Fg {
        /// New foreground process group id.
        pgid: i32,
    },
    /// More processes than the recorder tracks: `untracked` new ones got no `start`.
    Overflow {
        /// Processes seen but not reported.
        untracked: u64,
    },
    /// Observation stopped; later silence of the proc source means nothing.
    Blind {
        /// Why (human readable).
        reason: String,
    },
}

/// The keys of a process `start` event (SPEC §2.4.2), in order after `ev`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcStart {
    /// Process id.
    pub pid: i32,
    /// Parent process id.
    pub ppid: i32,
    /// Process group id.
    pub pgid: i32,
    /// Session id.
    pub sid: i32,
    /// Real uid.
    pub uid: u32,
    /// Effective uid.
    pub euid: u32,
    /// How long it had been running when seen, µs (clock-tick resolution).
    pub age_us: u64,
    /// Kernel command name (stat field 2, ≤ 15 bytes).
    pub comm: String,
    /// Arguments from `/proc/<pid>/cmdline` (empty for zombies and kernel threads).
    pub argv: Vec<String>,
    /// cmdline was longer than 4096 bytes and was cut.
    #[serde(default, skip_serializing_if = "is_false")]
    pub trunc: bool,
}

/// Peek at `ev` so an unknown one is skipped rather than an error (SPEC §2.4: readers ignore
/// `ev` values they do not know).
fn ev_of(data: &str) -> Result<String, ParseError> {
    #[derive(Deserialize)]
    struct Ev {
        ev: String,
    }
    serde_json::from_str::<Ev>(data)
        .map(|e| e.ev)
        .map_err(|e| ParseError::Invalid(format!("command/process event: {e}")))
}

impl CommandEvent {
    /// The event data: a JSON object with the keys of SPEC §2.4.1 in order.
    pub fn to_json(&self) -> String {
        // Serialising strings, integers and arrays of them cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the data of a `c` event. `Ok(None)` for an `ev` this reader does not know.
    ///
    /// # Errors
    /// [`ParseError::Invalid`] when `data` is not a JSON object with a string `ev`, or a
    /// known `ev` lacks a key or has one of the wrong type.
    pub fn parse(data: &str) -> Result<Option<CommandEvent>, ParseError> {
        let ev = ev_of(data)?;
        if !matches!(ev.as_str(), "hooks" | "start" | "end" | "ignored") {
            return Ok(None);
        }
        serde_json::from_str(data)
            .map(Some)
            .map_err(|e| ParseError::Invalid(format!("c event {ev:?}: {e}")))
    }
}

impl ProcessEvent {
    /// The event data: a JSON object with the keys of SPEC §2.4.2 in order.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parse the data of a `p` event. `Ok(None)` for an `ev` this reader does not know.
    ///
    /// # Errors
    /// [`ParseError::Invalid`] when `data` is not a JSON object with a string `ev`, or a
    /// known `ev` lacks a key or has one of the wrong type.
    pub fn parse(data: &str) -> Result<Option<ProcessEvent>, ParseError> {
        let ev = ev_of(data)?;
        if !matches!(
            ev.as_str(),
            "watch" | "start" | "exec" | "exit" | "fg" | "overflow" | "blind"
        ) {
            return Ok(None);
        }
        serde_json::from_str(data)
            .map(Some)
            .map_err(|e| ParseError::Invalid(format!("p event {ev:?}: {e}")))
    }
}

/// The label of the marker written after a command `start` (SPEC §2.4.1): `cmd`, cut to at
/// most [`MARKER_LABEL_MAX`] bytes at a character boundary, with `…` appended when cut.
pub fn marker_label(cmd: &str) -> String {
    if cmd.len() <= MARKER_LABEL_MAX {
        return cmd.to_string();
    }
    let mut end = MARKER_LABEL_MAX;
    while !cmd.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &cmd[..end])
}

/// Cut `s` to at most `max` bytes at a character boundary; true when it was cut.
pub fn cut_at_char(s: &mut String, max: usize) -> bool {
    if s.len() <= max {
        return false;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_events_have_the_spec_key_order() {
        let start = CommandEvent::Start {
            id: 3,
            src: SHELL_SOURCE.into(),
            cmd: "make \"test\"".into(),
            cwd: Some("/home/alice/src".into()),
            partial: false,
            trunc: false,
            late: false,
        };
        assert_eq!(
            start.to_json(),
            r#"{"ev":"start","id":3,"src":"shell","cmd":"make \"test\"","cwd":"/home/alice/src"}"#
        );
        let end = CommandEvent::End {
            id: 3,
            src: SHELL_SOURCE.into(),
            exit: Some(2),
            pipestatus: vec![1, 2],
            duration_us: 4_100_233,
        };
        assert_eq!(
            end.to_json(),
            r#"{"ev":"end","id":3,"src":"shell","exit":2,"pipestatus":[1,2],"duration_us":4100233}"#
        );
        let open = CommandEvent::End {
            id: 4,
            src: SHELL_SOURCE.into(),
            exit: None,
            pipestatus: vec![],
            duration_us: 5,
        };
        assert_eq!(
            open.to_json(),
            r#"{"ev":"end","id":4,"src":"shell","duration_us":5}"#
        );
        let flags = CommandEvent::Start {
            id: 1,
            src: SHELL_SOURCE.into(),
            cmd: "ls".into(),
            cwd: None,
            partial: true,
            trunc: true,
            late: true,
        };
        assert_eq!(
            flags.to_json(),
            r#"{"ev":"start","id":1,"src":"shell","cmd":"ls","partial":true,"trunc":true,"late":true}"#
        );
        assert_eq!(
            CommandEvent::Hooks {
                shell: "bash".into()
            }
            .to_json(),
            r#"{"ev":"hooks","shell":"bash"}"#
        );
        assert_eq!(
            CommandEvent::Ignored {
                marks: 2,
                bad_nonce: 1
            }
            .to_json(),
            r#"{"ev":"ignored","marks":2,"bad_nonce":1}"#
        );
        for e in [start, end, open, flags] {
            assert_eq!(CommandEvent::parse(&e.to_json()).unwrap(), Some(e));
        }
    }

    #[test]
    fn process_events_have_the_spec_key_order() {
        let start = ProcessEvent::Start(ProcStart {
            pid: 1234,
            ppid: 1200,
            pgid: 1234,
            sid: 1100,
            uid: 1000,
            euid: 0,
            age_us: 30_000,
            comm: "sudo".into(),
            argv: vec!["sudo".into(), "-i".into()],
            trunc: false,
        });
        assert_eq!(
            start.to_json(),
            r#"{"ev":"start","pid":1234,"ppid":1200,"pgid":1234,"sid":1100,"uid":1000,"euid":0,"age_us":30000,"comm":"sudo","argv":["sudo","-i"]}"#
        );
        let cases = [
            (
                ProcessEvent::Watch {
                    root: 7,
                    sid: 7,
                    period_us: 250_000,
                },
                r#"{"ev":"watch","root":7,"sid":7,"period_us":250000}"#,
            ),
            (
                ProcessEvent::Exec {
                    pid: 7,
                    uid: 1,
                    euid: 1,
                    comm: "sh".into(),
                    argv: vec!["sh".into()],
                    trunc: true,
                },
                r#"{"ev":"exec","pid":7,"uid":1,"euid":1,"comm":"sh","argv":["sh"],"trunc":true}"#,
            ),
            (ProcessEvent::Exit { pid: 9 }, r#"{"ev":"exit","pid":9}"#),
            (ProcessEvent::Fg { pgid: 9 }, r#"{"ev":"fg","pgid":9}"#),
            (
                ProcessEvent::Overflow { untracked: 3 },
                r#"{"ev":"overflow","untracked":3}"#,
            ),
            (
                ProcessEvent::Blind {
                    reason: "hidepid".into(),
                },
                r#"{"ev":"blind","reason":"hidepid"}"#,
            ),
        ];
        for (e, json) in cases {
            assert_eq!(e.to_json(), json);
            assert_eq!(ProcessEvent::parse(json).unwrap(), Some(e));
        }
        assert_eq!(ProcessEvent::parse(&start.to_json()).unwrap(), Some(start));
    }

    #[test]
    fn readers_skip_unknown_ev_and_reject_malformed_data() {
        assert_eq!(
            CommandEvent::parse(r#"{"ev":"later","x":1}"#).unwrap(),
            None
        );
        assert_eq!(ProcessEvent::parse(r#"{"ev":"later"}"#).unwrap(), None);
        // Unknown keys inside a known `ev` are ignored too.
        assert_eq!(
            ProcessEvent::parse(r#"{"ev":"exit","pid":3,"new":true}"#).unwrap(),
            Some(ProcessEvent::Exit { pid: 3 })
        );
        for bad in [
            "",
            "[]",
            "{}",
            r#"{"ev":1}"#,
            r#"{"ev":"start","id":1}"#,
            r#"{"ev":"end","id":"x"}"#,
        ] {
            assert!(CommandEvent::parse(bad).is_err(), "{bad}");
        }
        assert!(ProcessEvent::parse(r#"{"ev":"start","pid":1}"#).is_err());
    }

    #[test]
    fn marker_labels_are_cut_at_a_character_boundary() {
        assert_eq!(marker_label("ls -l"), "ls -l");
        let long = "é".repeat(200); // 400 bytes
        let label = marker_label(&long);
        assert!(label.ends_with('…'));
        assert_eq!(label.len(), 256 + '…'.len_utf8());
        let mut s = "aé".to_string();
        assert!(cut_at_char(&mut s, 2));
        assert_eq!(s, "a");
        assert!(!cut_at_char(&mut s, 2));
    }
}
