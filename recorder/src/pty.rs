//! PTY capture (portable-pty): spawn the session in a new PTY and relay it through a SealedWriter.
