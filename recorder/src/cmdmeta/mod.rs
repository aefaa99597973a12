//! Command-level metadata (SPEC §2.4): what the shell claims (`c` events, from OSC 133 marks
//! its hooks write) and what the kernel shows (`p` events, from `/proc`).
//!
//! Pure parts and thin readers, each tested on its own; the relay wires them:
//!
//! - [`hooks`]: how to start bash or zsh with hooks ([`hooks::plan`]) and the directory
//!   their files live in ([`hooks::HookDir`]).
//! - [`osc133`]: the sans-I/O mark scanner ([`osc133::Osc133Scanner`]).
//! - [`claims`]: marks → command events ([`claims::ShellClaims`]).
//! - [`proc`]: `/proc` snapshots → process events ([`proc::ProcTable`], [`proc::ProcFs`],
//!   [`proc::ProcWatch`], [`proc::foreground_pgid`]).
//!
//! # Wiring (the seam for the relay)
//!
//! Before spawning an interactive shell: `let nonce = Nonce::generate()?`; when
//! `ShellKind::of(shell)` is `Some(kind)`, `let dir = HookDir::create(base,
//! &hooks::files(kind))?` (kept until the session ends; `base` per [`hooks`]) and
//! `hooks::plan(shell, mode, &nonce, dir.path(), user_zdotdir)` give the argv and the
//! environment to spawn with. After the header: write `ShellClaims::hooks_event(kind.name())`
//! (only when hooks were planned) and, once the child exists,
//! `ProcWatch::start(child_pid, t, &mut events)`.
//!
//! On every output read (PTY: the bytes as read, before or after relaying, unchanged):
//! `claims.on_output(t, bytes, &mut c_events)` and, for a PTY,
//! `watch.on_output(foreground_pgid(master), &mut p_events)`; write them after the read's
//! `o` events. Samples: `watch.on_tick(t, &mut p_events)` whenever
//! `t >= watch.next_due_us()` — best from a sampler thread with its own timer that sends the
//! events to the writer loop (a `/proc` read can block on a process stuck in the kernel, and
//! the relay must not), else from a relay tick at most [`proc::PERIOD_US`] apart. At the end,
//! before `x`: `claims.finish(t, …)` and one last `watch.sample(…)`. The writer writes a
//! [`sealcast_format::CommandEvent`] as `c` plus the `m` marker after a `start`
//! (`SealedWriter::command`) and a [`sealcast_format::ProcessEvent`] as `p`
//! (`SealedWriter::process`), at the time observed (`t` is the writer's monotonic clock).

pub mod claims;
pub mod hooks;
pub mod osc133;
pub mod proc;

use std::io;

/// A session's nonce (SPEC §2.4.3): 32 lowercase hex digits, 128 random bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

impl Nonce {
    /// A new random nonce (`getrandom(2)`).
    ///
    /// # Errors
    /// The kernel's error when no random bytes can be had.
    pub fn generate() -> io::Result<Nonce> {
        let mut b = [0u8; 16];
        let mut filled = 0;
        while filled < b.len() {
            // SAFETY: the pointer and length describe the unfilled part of `b`.
            let n =
                unsafe { libc::getrandom(b[filled..].as_mut_ptr().cast(), b.len() - filled, 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            filled += n as usize;
        }
        Ok(Nonce(b.iter().map(|x| format!("{x:02x}")).collect()))
    }

    /// A nonce from its text: exactly 32 lowercase hex digits, else `None`.
    pub fn from_hex(s: &str) -> Option<Nonce> {
        (s.len() == 32 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Nonce(s.to_string()))
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_random_hex() {
        let a = Nonce::generate().unwrap();
        let b = Nonce::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(Nonce::from_hex(a.as_str()), Some(a));
        for bad in [
            "",
            "00112233445566778899AABBCCDDEEFF",
            "0011223344556677",
            "zz112233445566778899aabbccddeeff",
        ] {
            assert_eq!(Nonce::from_hex(bad), None, "{bad}");
        }
    }
}
