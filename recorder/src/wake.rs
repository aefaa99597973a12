//! Waking blocked relay threads: a stop pipe that every pump polls beside its descriptor, and
//! the `poll(2)` helpers the PTY and pipes runners share.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// A one-shot stop signal: a flag plus a pipe whose read end becomes readable when the flag is
/// set, so threads blocked in `poll` wake up.
pub(crate) struct StopPipe {
    stop: AtomicBool,
    r: OwnedFd,
    w: OwnedFd,
}

impl StopPipe {
    /// A new, unset signal.
    ///
    /// # Errors
    /// If `pipe2(2)` fails.
    pub(crate) fn new() -> io::Result<StopPipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: fds is valid for two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(StopPipe {
            stop: AtomicBool::new(false),
            r,
            w,
        })
    }

    /// Set the flag and wake every poller (idempotent).
    pub(crate) fn request(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // SAFETY: writes one byte from a valid buffer to our own pipe.
            unsafe { libc::write(self.w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        }
    }

    /// True once [`StopPipe::request`] was called.
    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Outcome of [`wait_ready`].
pub(crate) enum Ready {
    /// `fd` is ready (or in an error/hangup state the next syscall will report).
    Fd,
    /// The stop pipe is readable.
    Stop,
    /// Timed out.
    Timeout,
}

fn poll2(
    fd: RawFd,
    events: libc::c_short,
    stop: &StopPipe,
    timeout_ms: i32,
) -> io::Result<[libc::pollfd; 2]> {
    let mut fds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: fds is a valid array of two pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
        if n >= 0 {
            return Ok(fds);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Wait until `fd` is ready for `events` or the stop pipe is readable, at most `timeout_ms`
/// milliseconds (-1: no limit). A failing `poll` counts as ready: waiting cannot fix it, and
/// the caller's next syscall reports the problem.
pub(crate) fn wait_ready(
    fd: RawFd,
    events: libc::c_short,
    stop: &StopPipe,
    timeout_ms: i32,
) -> Ready {
    match poll2(fd, events, stop, timeout_ms) {
        Err(_) => Ready::Fd,
        Ok(fds) if fds[1].revents != 0 => Ready::Stop,
        Ok(fds) if fds[0].revents != 0 => Ready::Fd,
        Ok(_) => Ready::Timeout,
    }
}

/// Wait until `fd` reports POLLHUP, POLLERR or POLLNVAL (true) or the stop pipe is readable
/// (false). Polls with no requested events, so only those conditions wake it; a failing
/// `poll` is not taken for a hangup.
pub(crate) fn wait_hangup(fd: RawFd, stop: &StopPipe) -> bool {
    loop {
        match poll2(fd, 0, stop, -1) {
            Err(_) => return false,
            Ok(fds) if fds[1].revents != 0 => return false,
            Ok(fds) if fds[0].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
                return true
            }
            Ok(_) => {}
        }
    }
}

/// Put `fd` into non-blocking mode.
///
/// # Errors
/// If `fcntl(2)` fails.
pub(crate) fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl with integer arguments on a descriptor the caller owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// What [`read_ready`] got.
pub(crate) enum Got {
    /// This many bytes (> 0) at the start of the buffer.
    Data(usize),
    /// End of input or a read error: the stream is done.
    End,
    /// The pumps must stop (the stop pipe woke the thread).
    Stop,
}

/// Wait until `fd` (the descriptor of `from`, non-blocking) is readable, then read into `buf`.
/// Interrupted and would-block reads wait again.
pub(crate) fn read_ready(
    fd: RawFd,
    from: &mut impl io::Read,
    buf: &mut [u8],
    stop: &StopPipe,
) -> Got {
    loop {
        if matches!(wait_ready(fd, libc::POLLIN, stop, -1), Ready::Stop) || stop.stopping() {
            return Got::Stop;
        }
        match from.read(buf) {
            Ok(0) => return Got::End,
            Ok(n) => return Got::Data(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => return Got::End,
        }
    }
}
