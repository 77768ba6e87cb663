//! The caller's terminal: the Sentry puts it in raw mode while its console
//! pumps it (its own pty does the line discipline), and moat do puts it back.

use std::io::IsTerminal;
use std::os::fd::{AsFd, OwnedFd};

use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

/// The terminal's mode as moat do found it, put back when this is dropped
/// (or earlier, by [`SavedMode::restore`], before dying by a signal).
#[derive(Debug)]
pub struct SavedMode {
    fd: OwnedFd,
    mode: Termios,
}

impl SavedMode {
    /// Saves the mode of the terminal on stdin, if stdin is one (the
    /// Sentry makes a console only when stdin and stdout are terminals; the
    /// mode is saved whenever it might be changed).
    pub fn save() -> Option<SavedMode> {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let fd = stdin.as_fd().try_clone_to_owned().ok()?;
        let mode = tcgetattr(&fd).ok()?;
        Some(SavedMode { fd, mode })
    }

    /// Puts the saved mode back, discarding input typed for the sandbox
    /// that it did not read.
    pub fn restore(&self) {
        if let Err(e) = tcsetattr(&self.fd, SetArg::TCSAFLUSH, &self.mode) {
            eprintln!("moat: cannot restore the terminal's mode (run `stty sane`): {e}");
        }
    }
}

impl Drop for SavedMode {
    fn drop(&mut self) {
        self.restore();
    }
}
