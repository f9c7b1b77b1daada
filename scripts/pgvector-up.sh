#!/usr/bin/env bash
# pgvector-up.sh — bring up a throw-away PostgreSQL 15 + pgvector test cluster.
#
# Usage:
#   scripts/pgvector-up.sh          # ensure pgvector is installed, cluster running,
#                                   # db + extension present; print the DSN on stdout
#   scripts/pgvector-up.sh stop     # stop the test cluster (pg_ctl stop -m fast)
#   scripts/pgvector-up.sh status   # report whether the test cluster is running
#
# Environment:
#   PICARD_PG_DIR         data directory          (default /tmp/picard-pg)
#   PICARD_PG_PORT        TCP port on 127.0.0.1   (default 55432)
#   PICARD_PGVECTOR_SUITE Debian suite to take the pgvector source from (default trixie)
#
# Must run as root (it may apt-get install build deps and `make install` into the
# PostgreSQL 15 tree). The server itself always runs as the `postgres` user.
# The unix socket lives in "<data dir>.sock" (a sibling of the data dir); the
# server log is "<data dir>.log".
#
# Only the DSN is written to stdout; everything else goes to stderr.
# TEST-ONLY cluster: trust authentication, fsync off.

set -Eeuo pipefail

# Keep the real stdout on fd 3 for the final DSN; everything else -> stderr.
exec 3>&1 1>&2

PROG=pgvector-up
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$PROG" "$*" >&2; exit 1; }
trap 'rc=$?; printf "%s: ERROR: command failed (exit %s) at line %s: %s\n" "$PROG" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

PGBIN=/usr/lib/postgresql/15/bin
PG_CONFIG=$PGBIN/pg_config
PGDATA=${PICARD_PG_DIR:-/tmp/picard-pg}
PGPORT=${PICARD_PG_PORT:-55432}
SUITE=${PICARD_PGVECTOR_SUITE:-trixie}
DBNAME=picard_test
PGUSER_OS=postgres

PGDATA=${PGDATA%/}
[[ -n "$PGDATA" && "$PGDATA" == /* ]] || die "PICARD_PG_DIR must be an absolute path (got '${PICARD_PG_DIR:-}')"
[[ "$PGPORT" =~ ^[0-9]+$ ]] && (( PGPORT > 0 && PGPORT < 65536 )) || die "PICARD_PG_PORT must be a port number (got '$PGPORT')"
SOCKDIR="${PGDATA}.sock"
LOGFILE="${PGDATA}.log"
LOCKFILE="${PGDATA}.lock"
DSN="postgres://postgres@127.0.0.1:${PGPORT}/${DBNAME}?sslmode=disable"

[[ $EUID -eq 0 ]] || die "must be run as root (installs packages / extension files; the server itself runs as '$PGUSER_OS')"
[[ -x $PGBIN/postgres && -x $PG_CONFIG ]] || die "PostgreSQL 15 not found in $PGBIN (is postgresql-15 installed?)"
id -u "$PGUSER_OS" >/dev/null 2>&1 || die "system user '$PGUSER_OS' does not exist"

# Run as the postgres user. fds 3 (caller's stdout) and 9 (lock) are closed so a
# postmaster started through here cannot inherit them: otherwise `DSN=$(...)`
# would never see EOF and the lock would stay held for the server's lifetime.
as_pg() { ( cd / && runuser -u "$PGUSER_OS" -- "$@" 3>&- 9>&- ); }
pg_running() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; }
port_ready() { "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" -t 2 >/dev/null 2>&1; }
psql_q() { PGOPTIONS="-c client_min_messages=warning" "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres "$@"; }

# Serialise concurrent invocations (several engineers/tests may call this at once).
mkdir -p "$(dirname "$PGDATA")"
exec 9>"$LOCKFILE"
flock -w 300 9 || die "timed out waiting for lock $LOCKFILE"

# ---------------------------------------------------------------- stop / status
case "${1:-up}" in
  up|start) ;;
  stop)
    if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then
      log "stopping cluster in $PGDATA"
      as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >&2
    else
      log "cluster in $PGDATA is not running"
    fi
    exit 0 ;;
  status)
    if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then
      log "cluster in $PGDATA is running on 127.0.0.1:$PGPORT"; exit 0
    else
      log "cluster in $PGDATA is not running"; exit 3
    fi ;;
  -h|--help|help)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
  *) die "unknown command '$1' (expected: up | stop | status)" ;;
esac

# ---------------------------------------------------------------- pgvector install
SHAREDIR=$("$PG_CONFIG" --sharedir)
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)

find_mirror_uri() {
  # Print the URI of the enabled "deb" source serving this release's main suite
  # (e.g. bookworm), as configured in the system's apt sources. Never hard-coded.
  local codename f
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [[ -n "$codename" ]] || return 1
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    awk -v want="$codename" '
      function flush() {
        if (enabled && types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ ("[ \t]" want "[ \t]") && uris != "") {
          split(uris, u, /[ \t]+/); print u[1]; found = 1; exit
        }
        types = ""; suites = ""; uris = ""; enabled = 1
      }
      BEGIN { enabled = 1 }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      {
        key = tolower($0); sub(/:.*/, "", key)
        val = $0; sub(/^[^:]*:[ \t]*/, "", val); sub(/[ \t]+$/, "", val)
        if (key == "types") types = val
        else if (key == "suites") suites = val
        else if (key == "uris") uris = val
        else if (key == "enabled" && tolower(val) == "no") enabled = 0
      }
      END { if (!found) flush() }
    ' "$f" | head -n1 | grep . && return 0
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f "$f" ]] || continue
    sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" \
      | awk -v want="$codename" '$1 == "deb" && $3 == want { print $2; exit }' \
      | grep . && return 0
  done
  return 1
}

install_pgvector() {
  export DEBIAN_FRONTEND=noninteractive
  local pgver pkgs=()
  # Build deps. Pin postgresql-server-dev-15 to the installed server version so
  # apt does not drag in a server/client upgrade from the security suite.
  # (postgresql-15 itself ships pgxs.mk; the server headers come from -server-dev.)
  if [[ ! -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]]; then
    local avail
    pgver=$(dpkg-query -W -f='${Version}' postgresql-15 2>/dev/null || true)
    avail=$(apt-cache madison postgresql-server-dev-15 2>/dev/null | awk -F'|' '{gsub(/ /,"",$2); print $2}' || true)
    if [[ -n "$pgver" ]] && grep -qxF -- "$pgver" <<<"$avail"; then
      pkgs+=("postgresql-server-dev-15=$pgver")
    else
      pkgs+=(postgresql-server-dev-15)
    fi
  fi
  command -v gcc  >/dev/null 2>&1 || pkgs+=(gcc)
  command -v make >/dev/null 2>&1 || pkgs+=(make)
  command -v dpkg-source >/dev/null 2>&1 || pkgs+=(dpkg-dev)
  if (( ${#pkgs[@]} )); then
    log "installing build dependencies: ${pkgs[*]}"
    apt-get install -y -q --no-install-recommends "${pkgs[@]}" >&2 \
      || die "apt-get install ${pkgs[*]} failed"
  fi
  [[ -f "$("$PG_CONFIG" --pgxs)" && -f "$("$PG_CONFIG" --includedir-server)/postgres.h" ]] \
    || die "PGXS / server headers still missing after installing postgresql-server-dev-15"

  local uri
  uri=$(find_mirror_uri) || die "could not determine the Debian mirror URI from /etc/apt/sources.list{,.d} (need an enabled 'deb' entry for $(. /etc/os-release; echo "$VERSION_CODENAME"))"
  log "fetching pgvector source from suite '$SUITE' via mirror $uri"

  local tmp
  tmp=$(mktemp -d /tmp/pgvector-build.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  chmod 755 "$tmp"
  mkdir -p "$tmp/lists/partial" "$tmp/sourceparts" "$tmp/src"
  chown -R _apt:root "$tmp/lists" "$tmp/src" 2>/dev/null || true   # apt's download sandbox user
  printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s %s main\n' "$uri" "$SUITE" >"$tmp/sources.list"
  # Private apt config: own source list + list dir, no shared binary caches,
  # no update hooks. Nothing under /etc/apt or /var/lib/apt/lists is touched.
  cat >"$tmp/apt.conf" <<EOF
Dir::Etc::SourceList "$tmp/sources.list";
Dir::Etc::SourceParts "$tmp/sourceparts";
Dir::State::Lists "$tmp/lists";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Post-Invoke;
EOF
  apt-get -c "$tmp/apt.conf" -q update >&2 || die "apt-get update for the temporary '$SUITE' deb-src list failed"
  ( cd "$tmp/src" && apt-get -c "$tmp/apt.conf" -q source pgvector >&2 ) \
    || die "apt-get source pgvector (suite $SUITE) failed"

  local srcdir
  srcdir=$(find "$tmp/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector-*' | head -n1)
  [[ -n "$srcdir" && -f "$srcdir/Makefile" ]] || die "unpacked pgvector source not found in $tmp/src"
  log "building $(basename "$srcdir") against $("$PG_CONFIG" --version)"
  # OPTFLAGS= : no -march=native, so the .so is portable (same as Debian's build).
  make -C "$srcdir" -j"$(nproc)" PG_CONFIG="$PG_CONFIG" OPTFLAGS= >&2 || die "pgvector build failed"
  make -C "$srcdir" PG_CONFIG="$PG_CONFIG" OPTFLAGS= install >&2 || die "pgvector make install failed"
  rm -rf "$tmp"
  trap - EXIT
}

if [[ -f "$SHAREDIR/extension/vector.control" && -f "$PKGLIBDIR/vector.so" ]]; then
  log "pgvector already installed ($SHAREDIR/extension/vector.control); skipping build"
else
  install_pgvector
  [[ -f "$SHAREDIR/extension/vector.control" ]] || die "vector.control not found in $SHAREDIR/extension after install"
  log "pgvector installed"
fi

# ---------------------------------------------------------------- cluster
if [[ -f "$PGDATA/PG_VERSION" ]] && pg_running; then
  log "reusing running cluster in $PGDATA"
elif port_ready; then
  log "WARNING: a server already answers on 127.0.0.1:$PGPORT but it is not the cluster in $PGDATA; reusing it"
else
  if [[ ! -f "$PGDATA/PG_VERSION" ]]; then
    if [[ -d "$PGDATA" ]] && [[ -n "$(ls -A "$PGDATA" 2>/dev/null)" ]]; then
      die "$PGDATA exists, is not empty and is not a PostgreSQL data directory; remove it or set PICARD_PG_DIR"
    fi
    log "initialising new cluster in $PGDATA"
    mkdir -p "$PGDATA"
    chown "$PGUSER_OS:" "$PGDATA"
    chmod 700 "$PGDATA"
    as_pg test -w "$PGDATA" || die "user '$PGUSER_OS' cannot write $PGDATA (check permissions of its parent directories)"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >&2 \
      || die "initdb failed"
    printf "\n# Added by scripts/pgvector-up.sh (test-only settings, rewritten on every start)\ninclude_if_exists = 'picard.conf'\n" \
      >>"$PGDATA/postgresql.conf"
  fi
  [[ "$(cat "$PGDATA/PG_VERSION")" == 15 ]] || die "$PGDATA holds a PostgreSQL $(cat "$PGDATA/PG_VERSION") cluster, expected 15"

  mkdir -p "$SOCKDIR"
  chown "$PGUSER_OS:" "$SOCKDIR"
  chmod 755 "$SOCKDIR"
  touch "$LOGFILE"
  chown "$PGUSER_OS:" "$LOGFILE"
  # Rewritten each start so PICARD_PG_PORT / socket changes take effect.
  cat >"$PGDATA/picard.conf" <<EOF
# Generated by scripts/pgvector-up.sh — TEST-ONLY settings, do not use in production.
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  chown "$PGUSER_OS:" "$PGDATA/picard.conf"

  log "starting cluster on 127.0.0.1:$PGPORT (log: $LOGFILE)"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$LOGFILE" -w -t 60 start >&2; then
    log "last lines of $LOGFILE:"
    tail -n 20 "$LOGFILE" >&2 || true
    die "pg_ctl start failed"
  fi
fi

for _ in $(seq 1 30); do port_ready && break; sleep 1; done
port_ready || die "server on 127.0.0.1:$PGPORT is not accepting connections"

# ---------------------------------------------------------------- database + extension
if [[ "$(psql_q -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'")" != 1 ]]; then
  log "creating database $DBNAME"
  psql_q -d postgres -c "CREATE DATABASE $DBNAME" >&2 || die "could not create database $DBNAME"
fi
psql_q -d "$DBNAME" -c "CREATE EXTENSION IF NOT EXISTS vector" >&2 \
  || die "could not create extension vector in $DBNAME"
ver=$(psql_q -d "$DBNAME" -tAc "SELECT extversion FROM pg_extension WHERE extname = 'vector'")
log "ready: database $DBNAME with pgvector $ver on 127.0.0.1:$PGPORT"

printf '%s\n' "$DSN" >&3
