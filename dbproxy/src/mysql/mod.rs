//! MySQL / MariaDB client/server protocol 4.1, sans-I/O: [`frame`] splits packets (sequence
//! ids, 16 MiB continuation), [`msg`] parses handshake, OK/ERR/EOF and commands,
//! [`conn::Conn`] turns a connection's commands and responses into `d` events (SPEC §11).
//! [`relay`] is the tokio side.

pub mod conn;
pub mod frame;
pub mod msg;
pub mod relay;
