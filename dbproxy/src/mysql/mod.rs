//! MySQL / MariaDB client/server protocol, sans-I/O.
