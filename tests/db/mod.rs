//! Real database servers for the database-proxy tests: PostgreSQL 15 and MariaDB 10.11 on
//! loopback, each started once per test binary (and killed by pid at exit, even after a
//! failed test), plus the `sealcast db-proxy` process. Included by `tests/db_*.rs` with
//! `mod db;`.
#![allow(dead_code)]

pub mod harness;
