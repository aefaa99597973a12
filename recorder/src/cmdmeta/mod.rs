//! Command-level metadata (SPEC §2.4): what the shell claims (`c` events, from OSC 133 marks
//! its hooks write) and what the kernel shows (`p` events, from `/proc`).
//!
//! Pure parts and thin readers, each tested on its own, and the observer that wires them
//! into the relay:
//!
//! - [`hooks`]: how to start bash or zsh with hooks ([`hooks::plan`]) and the directory
//!   their files live in ([`hooks::HookDir`]).
//! - [`osc133`]: the sans-I/O mark scanner ([`osc133::Osc133Scanner`]).
//! - [`claims`]: marks → command events ([`claims::ShellClaims`]).
//! - [`proc`]: `/proc` snapshots → process events ([`proc::ProcTable`], [`proc::ProcFs`],
//!   [`proc::ProcWatch`], [`proc::foreground_pgid`]).
//! - [`observe`]: [`observe::prepare`] before the spawn (nonce, hook directory, argv and
//!   environment), then [`observe::CommandObserver`], the session's
//!   [`crate::relay::Observer`]: the `hooks` event, the proc watch and its sampler thread,
//!   claims and `fg` from each output burst, and the last events before `x`.
//!
//! The writer writes a [`sealcast_format::CommandEvent`] as `c` plus the `m` marker after a
//! `start` (`SealedWriter::command`) and a [`sealcast_format::ProcessEvent`] as `p`
//! (`SealedWriter::process`), at the time observed (the writer's monotonic clock).

pub mod claims;
pub mod hooks;
pub mod observe;
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
