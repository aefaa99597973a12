//! The terminal guard: raw mode, the alternate screen and a hidden cursor while the player
//! runs, all restored when the guard drops, when the program panics (a panic hook), and when
//! SIGTERM, SIGHUP or SIGINT arrives (a flag the event loop checks, so the loop exits through
//! the guard's `Drop`).

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use crossterm::cursor::{Hide, Show};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use crossterm::ExecutableCommand;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static HOOK: Once = Once::new();

/// Put the terminal back: leave the alternate screen, show the cursor, leave raw mode.
/// Idempotent; does nothing unless a guard set the terminal up.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = io::stdout();
        let _ = out.execute(LeaveAlternateScreen);
        let _ = out.execute(Show);
        let _ = disable_raw_mode();
        let _ = out.flush();
    }
}

/// Holds the terminal in player mode (see the module docs). A second SIGTERM/SIGHUP/SIGINT
/// while the first is handled ends the process at once (exit 1).
#[derive(Debug)]
pub struct TerminalGuard {
    stop: Arc<AtomicBool>,
}

impl TerminalGuard {
    /// Enter raw mode and the alternate screen, hide the cursor, install the panic hook and
    /// the signal flags.
    ///
    /// # Errors
    /// When the terminal cannot be set up (what was set up is undone).
    pub fn new() -> io::Result<TerminalGuard> {
        HOOK.call_once(|| {
            let prev = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                restore();
                prev(info);
            }));
        });
        let stop = Arc::new(AtomicBool::new(false));
        for sig in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            // A second signal while the first is still being handled ends the process.
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&stop))?;
            signal_hook::flag::register(sig, Arc::clone(&stop))?;
        }
        enable_raw_mode()?;
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = (|| {
            let mut out = io::stdout();
            out.execute(EnterAlternateScreen)?;
            out.execute(Hide)?;
            Ok(())
        })();
        if let Err(e) = setup {
            restore();
            return Err(e);
        }
        Ok(TerminalGuard { stop })
    }

    /// True once SIGTERM, SIGHUP or SIGINT arrived: the loop should end.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}
