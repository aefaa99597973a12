//! The shell source (SPEC §2.4.1): OSC 133 marks in the PTY output → `c` events.
//!
//! [`ShellClaims`] owns an [`Osc133Scanner`] and the little state the events need: the next
//! command id, the open command and its start time, the last working directory. It is fed
//! every output read with the recorder's monotonic time and appends the events to write.

use sealcast_format::{cut_at_char, CommandEvent, SHELL_SOURCE};

use super::osc133::{MarkKind, Osc133Scanner};
use super::Nonce;

/// Longest `cmd` written, bytes (SPEC §2.4.1); longer lines are cut and get `trunc`.
pub const CMD_MAX: usize = 32 * 1024;
/// Longest `cwd` written, bytes.
pub const CWD_MAX: usize = 4096;

/// Turns one session's marks into command events. See the module documentation.
#[derive(Debug)]
pub struct ShellClaims {
    scanner: Osc133Scanner,
    next_id: u64,
    /// The open command: id and start time (µs).
    open: Option<(u64, u64)>,
    cwd: Option<String>,
}

impl ShellClaims {
    /// Claims of a shell started with hooks carrying `nonce`.
    pub fn new(nonce: &Nonce) -> ShellClaims {
        ShellClaims {
            scanner: Osc133Scanner::new(nonce.as_str()),
            next_id: 1,
            open: None,
            cwd: None,
        }
    }

    /// The `hooks` event to write once, before the shell starts (SPEC §2.4.1).
    pub fn hooks_event(shell: &str) -> CommandEvent {
        CommandEvent::Hooks {
            shell: shell.to_string(),
        }
    }

    /// Scan output read at `t_us` (monotonic µs, the writer's clock) and append the command
    /// events it implies to `out`, in order; then an `ignored` event if marks without the
    /// nonce were in it.
    pub fn on_output(&mut self, t_us: u64, bytes: &[u8], out: &mut Vec<CommandEvent>) {
        for mark in self.scanner.feed(bytes) {
            match mark.kind {
                MarkKind::PromptStart { cwd } => {
                    self.close(t_us, None, Vec::new(), out);
                    if let Some(mut c) = cwd {
                        cut_at_char(&mut c, CWD_MAX);
                        self.cwd = Some(c);
                    }
                }
                MarkKind::PromptEnd => self.close(t_us, None, Vec::new(), out),
                MarkKind::CommandStart {
                    mut cmd,
                    partial,
                    trunc,
                    late,
                } => {
                    self.close(t_us, None, Vec::new(), out);
                    let cut = cut_at_char(&mut cmd, CMD_MAX);
                    let id = self.next_id;
                    self.next_id += 1;
                    self.open = Some((id, t_us));
                    out.push(CommandEvent::Start {
                        id,
                        src: SHELL_SOURCE.into(),
                        cmd,
                        cwd: self.cwd.clone(),
                        partial,
                        trunc: trunc || cut,
                        late,
                    });
                }
                MarkKind::CommandEnd { exit, pipestatus } => {
                    self.close(t_us, exit, pipestatus, out);
                }
            }
        }
        let ignored = self.scanner.take_ignored();
        if ignored.marks > 0 {
            out.push(CommandEvent::Ignored {
                marks: ignored.marks,
                bad_nonce: ignored.bad_nonce,
            });
        }
    }

    /// The session ends at `t_us`: close the open command (without an exit status).
    pub fn finish(&mut self, t_us: u64, out: &mut Vec<CommandEvent>) {
        self.close(t_us, None, Vec::new(), out);
    }

    /// The id of the open command, if any.
    pub fn open_command(&self) -> Option<u64> {
        self.open.map(|(id, _)| id)
    }

    fn close(
        &mut self,
        t_us: u64,
        exit: Option<i32>,
        pipestatus: Vec<i32>,
        out: &mut Vec<CommandEvent>,
    ) {
        if let Some((id, start)) = self.open.take() {
            out.push(CommandEvent::End {
                id,
                src: SHELL_SOURCE.into(),
                exit,
                pipestatus: if pipestatus.len() >= 2 {
                    pipestatus
                } else {
                    Vec::new()
                },
                duration_us: t_us.saturating_sub(start),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nonce() -> Nonce {
        Nonce::from_hex("00112233445566778899aabbccddeeff").unwrap()
    }

    fn mark(letter: &str, params: &[&str]) -> Vec<u8> {
        let mut s = format!("\x1b]133;{letter}");
        for p in params {
            s.push(';');
            s.push_str(p);
        }
        s.push_str(";sealcast=00112233445566778899aabbccddeeff\x07");
        s.into_bytes()
    }

    fn start(id: u64, cmd: &str, cwd: Option<&str>) -> CommandEvent {
        CommandEvent::Start {
            id,
            src: SHELL_SOURCE.into(),
            cmd: cmd.into(),
            cwd: cwd.map(String::from),
            partial: false,
            trunc: false,
            late: false,
        }
    }

    fn end(id: u64, exit: Option<i32>, pipestatus: Vec<i32>, d: u64) -> CommandEvent {
        CommandEvent::End {
            id,
            src: SHELL_SOURCE.into(),
            exit,
            pipestatus,
            duration_us: d,
        }
    }

    #[test]
    fn a_prompt_cycle_becomes_start_and_end() {
        let mut c = ShellClaims::new(&nonce());
        let mut out = Vec::new();
        c.on_output(10, &mark("A", &["cwd=/home/a"]), &mut out);
        c.on_output(11, &mark("B", &[]), &mut out);
        assert!(out.is_empty());
        c.on_output(100, &mark("C", &["cmd=false | true"]), &mut out);
        assert_eq!(c.open_command(), Some(1));
        let mut d = mark("D", &["0", "pipestatus=1,0"]);
        d.extend_from_slice(&mark("A", &["cwd=/tmp"]));
        c.on_output(250, &d, &mut out);
        // A one-command pipeline has no pipestatus.
        c.on_output(300, &mark("C", &["cmd=ls"]), &mut out);
        c.on_output(301, &mark("D", &["0", "pipestatus=0"]), &mut out);
        assert_eq!(
            out,
            [
                start(1, "false | true", Some("/home/a")),
                end(1, Some(0), vec![1, 0], 150),
                start(2, "ls", Some("/tmp")),
                end(2, Some(0), vec![], 1),
            ]
        );
    }

    #[test]
    fn commands_without_d_are_closed_without_exit() {
        let mut c = ShellClaims::new(&nonce());
        let mut out = Vec::new();
        // C, then a prompt without D (PROMPT_COMMAND unset): closed at B.
        c.on_output(1, &mark("C", &["cmd=unset PROMPT_COMMAND"]), &mut out);
        c.on_output(5, &mark("B", &[]), &mut out);
        // C then C: the first is closed by the second.
        c.on_output(6, &mark("C", &["cmd=a"]), &mut out);
        c.on_output(9, &mark("C", &["cmd=b", "partial=1"]), &mut out);
        // D with no open command (first prompt, empty line) is ignored.
        c.on_output(10, &mark("D", &["0"]), &mut out);
        c.on_output(11, &mark("D", &["0"]), &mut out);
        c.on_output(12, &mark("C", &["cmd=exit"]), &mut out);
        c.finish(20, &mut out);
        c.finish(21, &mut out);
        let mut b = start(3, "b", None);
        if let CommandEvent::Start { partial, .. } = &mut b {
            *partial = true;
        }
        assert_eq!(
            out,
            [
                start(1, "unset PROMPT_COMMAND", None),
                end(1, None, vec![], 4),
                start(2, "a", None),
                end(2, None, vec![], 3),
                b,
                end(3, Some(0), vec![], 1),
                start(4, "exit", None),
                end(4, None, vec![], 8),
            ]
        );
    }

    #[test]
    fn forged_marks_become_one_ignored_event_per_read() {
        let mut c = ShellClaims::new(&nonce());
        let mut out = Vec::new();
        let mut s = b"\x1b]133;C;cmd=forged\x07".to_vec();
        s.extend_from_slice(b"\x1b]133;D;0;sealcast=ffffffffffffffffffffffffffffffff\x07");
        s.extend_from_slice(&mark("C", &["cmd=real"]));
        c.on_output(1, &s, &mut out);
        c.on_output(2, b"plain output", &mut out);
        assert_eq!(
            out,
            [
                start(1, "real", None),
                CommandEvent::Ignored {
                    marks: 2,
                    bad_nonce: 1
                }
            ]
        );
    }

    #[test]
    fn long_lines_are_cut() {
        let mut c = ShellClaims::new(&nonce());
        let mut out = Vec::new();
        let long = "é".repeat(20_000); // 40 000 bytes: above CMD_MAX, below MAX_OSC_PAYLOAD
        c.on_output(1, &mark("C", &[&format!("cmd={long}")]), &mut out);
        let CommandEvent::Start { cmd, trunc, .. } = &out[0] else {
            panic!("{out:?}")
        };
        assert!(*trunc);
        assert!(cmd.len() <= CMD_MAX && cmd.len() >= CMD_MAX - 1);
    }
}
