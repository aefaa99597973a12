//! PostgreSQL frontend/backend protocol 3.0, sans-I/O: [`frame`] splits messages, [`msg`]
//! parses the ones the proxy reads, [`conn::Conn`] turns a connection's messages into `d`
//! events (SPEC §11) with a correlation queue for pipelined extended-query batches.

pub mod conn;
pub mod frame;
pub mod msg;

/// Message tags the client side keeps whole (parsed): Query, Parse, Bind, Execute,
/// FunctionCall, Close, Describe, CopyFail.
pub const CLIENT_KEEP: &[u8] = b"QPBEFCDf";
/// Message tags the server side keeps whole: everything but DataRow and CopyData.
pub const SERVER_KEEP: &[u8] = b"RSKZTCEN123ntsGHWVAvIc";
