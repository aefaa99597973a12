#!/usr/bin/env bash
# Database-proxy benchmark (bench/RESULTS-db.md): one PostgreSQL 15 and one MariaDB 10.11 on
# loopback with TLS, and side by side in one run:
#   direct      the client talks TLS to the server itself
#   pgbouncer   PgBouncer (session pooling, TLS upstream, verify-full): a C proxy that records
#               nothing, the relay speed to beat
#   sealcast    `sealcast db-proxy` (TLS upstream, verify-full) recording every statement
# Measures pgbench -S -M prepared TPS with 1 and 8 clients, a 2 M-row SELECT and a ~300 MB
# COPY … TO STDOUT (wall time, proxy peak RSS), and a MariaDB SELECT loop (mariadb-slap).
#
# Needs root (servers run as postgres / mysql). Environment:
#   BENCH_SECS=10        seconds per pgbench run
#   SEALCAST_BIN=PATH    use this binary instead of `cargo build --release`
set -euo pipefail
export LC_ALL=C
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
SECS=${BENCH_SECS:-10}
PGBIN=/usr/lib/postgresql/15/bin
if [ -z "${SEALCAST_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet --locked --bin sealcast)
    SEALCAST_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcast
fi

W=$(mktemp -d /tmp/sealcast-db-bench.XXXXXX)
chmod 755 "$W"
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$W/pg/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -m immediate stop >/dev/null 2>&1 || true
    sleep 0.5
    rm -rf "$W"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
peak_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
now() { date +%s.%N; }

# --- PKI (throwaway CA, server certificate for 127.0.0.1) ---------------------------------
mkdir -p "$W/pki"
( cd "$W/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext -out server.crt 2>/dev/null
  chmod 644 server.key )

# --- PostgreSQL 15 ---------------------------------------------------------------------------
PGPORT=$(port)
mkdir -p "$W/pg"
cp "$W/pki/server.crt" "$W/pki/server.key" "$W/pg/"
chown -R postgres: "$W/pg"; chmod 600 "$W/pg/server.key"
echo bench-pw > "$W/pg/pw"; chown postgres: "$W/pg/pw"
runuser -u postgres -- "$PGBIN/initdb" -A scram-sha-256 --auth-local=trust -U postgres --pwfile="$W/pg/pw" -D "$W/pg/data" --no-sync >/dev/null
cat >> "$W/pg/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$W/pg'
ssl = on
ssl_cert_file = '$W/pg/server.crt'
ssl_key_file = '$W/pg/server.key'
fsync = off
synchronous_commit = off
max_connections = 50
shared_buffers = 128MB
CONF
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$W/pg/data" -l "$W/pg/log" -w start >/dev/null
psql -X -q -h "$W/pg" -p "$PGPORT" -U postgres -c "CREATE ROLE bench LOGIN PASSWORD 'bench-pw'" -c "CREATE DATABASE bench OWNER bench"
PGPASSWORD=bench-pw pgbench -q -i -s 10 -h "$W/pg" -p "$PGPORT" -U bench bench >/dev/null 2>&1

# --- PgBouncer ----------------------------------------------------------------------------------
mkdir -p "$W/bouncer"
BPORT=6432
cat > "$W/bouncer/pgbouncer.ini" <<CONF
[databases]
bench = host=127.0.0.1 port=$PGPORT dbname=bench
[pgbouncer]
listen_addr =
listen_port = $BPORT
unix_socket_dir = $W/bouncer
auth_type = scram-sha-256
auth_file = $W/bouncer/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 20
server_tls_sslmode = verify-full
server_tls_ca_file = $W/pki/ca.pem
logfile = $W/bouncer/log
pidfile = $W/bouncer/pid
CONF
echo '"bench" "bench-pw"' > "$W/bouncer/userlist.txt"
chown -R postgres: "$W/bouncer"
runuser -u postgres -- pgbouncer -d "$W/bouncer/pgbouncer.ini"
for _ in $(seq 100); do [ -S "$W/bouncer/.s.PGSQL.$BPORT" ] && break; sleep 0.1; done
PIDS+=("$(cat "$W/bouncer/pid")")

# --- sealcast db-proxy --------------------------------------------------------------------
mkdir -p "$W/sc/sock" "$W/sc/spool"; chmod 700 "$W/sc/sock"
"$SEALCAST_BIN" keygen --out "$W/sc/key" --comment bench@sealcast >/dev/null
cat > "$W/sc/sealcast.toml" <<CONF
[db.pg]
protocol = "postgres"
host = "127.0.0.1"
port = $PGPORT
ca_file = "$W/pki/ca.pem"
CONF
"$SEALCAST_BIN" db-proxy --config "$W/sc/sealcast.toml" --target pg --listen "$W/sc/sock/.s.PGSQL.5432" \
    --dir "$W/sc/spool" --key "$W/sc/key/signing.key" --host-id bench 2>"$W/sc/log" &
SC_PID=$!; PIDS+=("$SC_PID")
for _ in $(seq 100); do [ -S "$W/sc/sock/.s.PGSQL.5432" ] && break; sleep 0.1; done

export PGPASSWORD=bench-pw
DIRECT=(-h 127.0.0.1 -p "$PGPORT")
BOUNCER=(-h "$W/bouncer" -p "$BPORT")
SEALCAST=(-h "$W/sc/sock" -p 5432)
export PGSSLROOTCERT="$W/pki/ca.pem"

tps() { # name clients args...
    local c=$1; shift
    PGSSLMODE=$SSLMODE pgbench -n -S -M prepared -c "$c" -j "$([ "$c" -gt 1 ] && echo 2 || echo 1)" -T "$SECS" "$@" -U bench bench 2>/dev/null \
        | awk '/^tps/ {printf "%.0f", $3; exit}'
}
run_tps() { # clients
    local c=$1
    SSLMODE=verify-full; D=$(tps "$c" "${DIRECT[@]}")
    SSLMODE=disable; B=$(tps "$c" "${BOUNCER[@]}")
    SSLMODE=disable; S=$(tps "$c" "${SEALCAST[@]}")
    echo "$D $B $S"
}
read -r D1 B1 S1 < <(run_tps 1)
read -r D8 B8 S8 < <(run_tps 8)

wall() { # sslmode args... -> seconds
    local m=$1; shift
    local t0; t0=$(now)
    PGSSLMODE=$m "$@" >/dev/null
    python3 -c "print(f'{$(now) - $t0:.2f}')"
}
SEL="SELECT g, repeat('x', 100) FROM generate_series(1, 2000000) g"
COPYQ="COPY (SELECT g, repeat('x', 140) FROM generate_series(1, 2000000) g) TO STDOUT"
SEL_D=$(wall verify-full psql -X -q -o /dev/null "${DIRECT[@]}" -U bench -d bench -c "$SEL")
SEL_B=$(wall disable psql -X -q -o /dev/null "${BOUNCER[@]}" -U bench -d bench -c "$SEL")
SEL_S=$(wall disable psql -X -q -o /dev/null "${SEALCAST[@]}" -U bench -d bench -c "$SEL")
COPY_BYTES=$(PGSSLMODE=verify-full psql -X -q "${DIRECT[@]}" -U bench -d bench -c "$COPYQ" | wc -c)
COPY_D=$(wall verify-full psql -X -q -o /dev/null "${DIRECT[@]}" -U bench -d bench -c "$COPYQ")
COPY_B=$(wall disable psql -X -q -o /dev/null "${BOUNCER[@]}" -U bench -d bench -c "$COPYQ")
COPY_S=$(wall disable psql -X -q -o /dev/null "${SEALCAST[@]}" -U bench -d bench -c "$COPYQ")
SC_RSS=$(( $(peak_kib "$SC_PID") / 1024 ))
B_RSS=$(( $(peak_kib "$(cat "$W/bouncer/pid")") / 1024 ))
SPOOL_KB=$(du -sk "$W/sc/spool" | awk '{print $1}')

# --- MariaDB ----------------------------------------------------------------------------------
MPORT=$(port)
mkdir -p "$W/my"; cp "$W/pki/server.crt" "$W/pki/server.key" "$W/pki/ca.pem" "$W/my/"; chown -R mysql: "$W/my"
mariadb-install-db --no-defaults --user=mysql --datadir="$W/my/data" --auth-root-authentication-method=normal --skip-test-db >/dev/null 2>&1
/usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$W/my/data" --bind-address=127.0.0.1 --port="$MPORT" \
    --socket="$W/my/sock" --pid-file="$W/my/pid" --ssl-ca="$W/my/ca.pem" --ssl-cert="$W/my/server.crt" \
    --ssl-key="$W/my/server.key" --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M 2>"$W/my/err" &
PIDS+=("$!")
for _ in $(seq 300); do mariadb --no-defaults --socket="$W/my/sock" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
mariadb --no-defaults --socket="$W/my/sock" -uroot -e "CREATE USER 'bench'@'127.0.0.1' IDENTIFIED BY 'bench-pw'; GRANT ALL ON *.* TO 'bench'@'127.0.0.1'; CREATE DATABASE bench"
cat >> "$W/sc/sealcast.toml" <<CONF
[db.my]
protocol = "mysql"
host = "127.0.0.1"
port = $MPORT
ca_file = "$W/pki/ca.pem"
CONF
"$SEALCAST_BIN" db-proxy --config "$W/sc/sealcast.toml" --target my --listen "$W/sc/sock/mysqld.sock" \
    --dir "$W/sc/spool" --key "$W/sc/key/signing.key" --host-id bench 2>"$W/sc/mylog" &
MY_PID=$!; PIDS+=("$MY_PID")
for _ in $(seq 100); do [ -S "$W/sc/sock/mysqld.sock" ] && break; sleep 0.1; done
N_Q=${BENCH_MY_QUERIES:-20000}
slap() { # concurrency args...
    local c=$1; shift
    mariadb-slap --no-defaults "$@" -ubench -pbench-pw --concurrency="$c" --iterations=1 \
        --number-of-queries="$N_Q" --query="SELECT 1" --create-schema=bench 2>/dev/null \
        | awk '/Average number of seconds/ {print $(NF-1)}'
}
MY_D1=$(slap 1 --host=127.0.0.1 --port="$MPORT" --ssl-ca="$W/pki/ca.pem" --ssl-verify-server-cert)
MY_S1=$(slap 1 --socket="$W/sc/sock/mysqld.sock")
MY_D8=$(slap 8 --host=127.0.0.1 --port="$MPORT" --ssl-ca="$W/pki/ca.pem" --ssl-verify-server-cert)
MY_S8=$(slap 8 --socket="$W/sc/sock/mysqld.sock")
MY_RSS=$(( $(peak_kib "$MY_PID") / 1024 ))

ratio() { python3 -c "a,b=$1,$2; print(f'{a/b:.2f}' if b else 'n/a')"; }
qps() { python3 -c "print(f'{$N_Q/$1:.0f}' if $1 else 'n/a')"; }
{
echo "# Database proxy benchmark"
echo
echo "\`bench/db.sh\` on $(nproc) cores ($(date -u +%Y-%m-%d), PostgreSQL $(psql -V | awk '{print $3}'), PgBouncer $(pgbouncer --version | awk 'NR==1{print $2}'), MariaDB $(mariadbd --version | awk '{print $3}'));"
echo "every upstream leg TLS with verify-full, client legs on Unix sockets (direct: TLS over loopback TCP)."
echo
echo "| measurement | direct | PgBouncer | sealcast (recording) | sealcast / PgBouncer | sealcast / direct |"
echo "|---|---|---|---|---|---|"
echo "| pgbench -S -M prepared, 1 client (TPS) | $D1 | $B1 | $S1 | $(ratio "$S1" "$B1") | $(ratio "$S1" "$D1") |"
echo "| pgbench -S -M prepared, 8 clients (TPS) | $D8 | $B8 | $S8 | $(ratio "$S8" "$B8") | $(ratio "$S8" "$D8") |"
echo "| 2 M-row SELECT through psql (s) | $SEL_D | $SEL_B | $SEL_S | $(ratio "$SEL_S" "$SEL_B") | $(ratio "$SEL_S" "$SEL_D") |"
echo "| COPY … TO STDOUT, $((COPY_BYTES / 1000000)) MB (s) | $COPY_D | $COPY_B | $COPY_S | $(ratio "$COPY_S" "$COPY_B") | $(ratio "$COPY_S" "$COPY_D") |"
echo "| proxy peak RSS over all PostgreSQL runs (MiB) | – | $B_RSS | $SC_RSS | | |"
echo
echo "| MariaDB \`SELECT 1\` × $N_Q (mariadb-slap, queries/s) | direct | sealcast | sealcast / direct |"
echo "|---|---|---|---|"
echo "| 1 connection | $(qps "$MY_D1") | $(qps "$MY_S1") | $(ratio "$MY_D1" "$MY_S1") |"
echo "| 8 connections | $(qps "$MY_D8") | $(qps "$MY_S8") | $(ratio "$MY_D8" "$MY_S8") |"
echo "| proxy peak RSS (MiB) | – | $MY_RSS | |"
echo
echo "Recordings written by the sealcast runs: $(ls "$W/sc/spool" | grep -c 'cast.zst$') files, ${SPOOL_KB} KiB in all."
} | tee "$BENCH_DIR/RESULTS-db.md.new"
mv "$BENCH_DIR/RESULTS-db.md.new" "$BENCH_DIR/RESULTS-db.md"
