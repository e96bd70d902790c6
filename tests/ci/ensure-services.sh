#!/usr/bin/env bash
# Make sure the database servers the tests need are up, and that each has a
# `test` database:
#   PostgreSQL  127.0.0.1:5432, user postgres (trust), database test
#   MariaDB     127.0.0.1:3306, user root (no password), database test
# A server that does not answer is started with the machine's own start
# command; the script then waits (bounded) and fails loudly if one stays down.
# When both already answer, nothing is started or changed.
#
# Environment overrides: SERVICE_WAIT_SECONDS (default 60), SERVICE_DB_NAME (default test).
set -euo pipefail

WAIT_SECONDS="${SERVICE_WAIT_SECONDS:-60}"
PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=postgres
MY_HOST=127.0.0.1
MY_PORT=3306
MY_USER=root
DB_NAME="${SERVICE_DB_NAME:-test}"

log() { printf 'ensure-services: %s\n' "$*"; }
die() { printf 'ensure-services: ERROR: %s\n' "$*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install the $2 client tools"
}

# --- probes ---------------------------------------------------------------

pg_up() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2
}

my_cli() {
    # mariadb/mariadb-admin on Debian 12; fall back to the mysql names.
    local tool
    for tool in "$@"; do
        if command -v "$tool" >/dev/null 2>&1; then
            echo "$tool"
            return 0
        fi
    done
    return 1
}

my_up() {
    local admin
    admin="$(my_cli mariadb-admin mysqladmin)" || return 1
    "$admin" --connect-timeout=2 -h "$MY_HOST" -P "$MY_PORT" -u"$MY_USER" ping >/dev/null 2>&1
}

# --- starters (the machine's documented start commands) -------------------

pg_start() {
    local versions
    versions="$(ls /etc/postgresql 2>/dev/null || true)"
    [ -n "$versions" ] || die "PostgreSQL is down and no cluster is configured under /etc/postgresql"
    local version
    for version in $versions; do
        log "starting PostgreSQL $version/main"
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || log "pg_ctlcluster $version main start returned $?"
    done
}

my_start() {
    [ -x /usr/sbin/mariadbd ] || die "MariaDB is down and /usr/sbin/mariadbd does not exist"
    log "starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || log "start-stop-daemon returned $?"
}

wait_for() {
    # wait_for NAME PROBE -- poll PROBE until it succeeds or the shared deadline passes.
    local name="$1" probe="$2"
    until "$probe"; do
        if [ "$SECONDS" -ge "$DEADLINE" ]; then
            return 1
        fi
        sleep 1
    done
    log "$name is up"
}

# --- databases ------------------------------------------------------------

pg_ensure_db() {
    local exists
    exists="$(psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -XtAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" \
        || die "cannot query PostgreSQL as $PG_USER on $PG_HOST:$PG_PORT"
    if [ "$exists" != "1" ]; then
        log "creating PostgreSQL database $DB_NAME"
        psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -Xqc "CREATE DATABASE \"$DB_NAME\"" \
            || die "cannot create PostgreSQL database $DB_NAME"
    fi
}

my_ensure_db() {
    local client
    client="$(my_cli mariadb mysql)" || die "neither 'mariadb' nor 'mysql' client found"
    # IF NOT EXISTS makes this a no-op when the database is there.
    "$client" --connect-timeout=5 -h "$MY_HOST" -P "$MY_PORT" -u"$MY_USER" \
        -e "CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`" 2>/dev/null \
        || die "cannot create/check MariaDB database $DB_NAME as $MY_USER on $MY_HOST:$MY_PORT"
}

# --- main -----------------------------------------------------------------

need pg_isready "PostgreSQL"
need psql "PostgreSQL"
my_cli mariadb-admin mysqladmin >/dev/null || die "neither 'mariadb-admin' nor 'mysqladmin' found; install the MariaDB client tools"

started=()
if ! pg_up; then
    pg_start
    started+=(PostgreSQL)
fi
if ! my_up; then
    my_start
    started+=(MariaDB)
fi

failed=()
DEADLINE=$((SECONDS + WAIT_SECONDS))
if [ "${#started[@]}" -gt 0 ]; then
    log "waiting up to ${WAIT_SECONDS}s for: ${started[*]}"
fi
wait_for PostgreSQL pg_up || failed+=("PostgreSQL on $PG_HOST:$PG_PORT")
wait_for MariaDB my_up || failed+=("MariaDB on $MY_HOST:$MY_PORT")
if [ "${#failed[@]}" -gt 0 ]; then
    die "still down after ${WAIT_SECONDS}s: ${failed[*]} (see /var/log/postgresql/ and the MariaDB error log)"
fi

pg_ensure_db
my_ensure_db
log "PostgreSQL $PG_HOST:$PG_PORT and MariaDB $MY_HOST:$MY_PORT are up; database '$DB_NAME' exists in both"
