#!/usr/bin/env bash
# Bring a Debian 12 machine, from a clean clone, to one that can run and test ParkHub.
#
# Installs only what is missing and starts only what is not running, so it is safe to run any number of times
# (every `make` target runs it first). It leaves services named by DATABASE_URL / REDIS_URL alone, except that a
# PostgreSQL on this machine gets its PostGIS package if it lacks it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The uv a private bootstrap venv gets when the machine has none (or an older one): it must read uv.lock.
UV_VERSION=0.13.9
DEFAULT_PG_HOST=127.0.0.1
DEFAULT_PG_PORT=5432
OWNER_ROLE=parkhub
OWNER_PASSWORD=parkhub
REDIS_HOST=127.0.0.1
REDIS_PORT=6379

APT_UPDATED=false
UV=""

step() { printf '\n==> %s\n' "$*"; }
say() { printf '    %s\n' "$*"; }
die() {
    printf '\nbootstrap failed: %s\n' "$*" >&2
    exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
# A URL fit to print: the password replaced.
redact() { sed -E 's#(//[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

as_root() {
    if is_root; then
        "$@"
    elif have sudo; then
        sudo "$@"
    else
        die "'$*' needs root, and sudo is not installed. Run it as root, then run this script again."
    fi
}

as_postgres() {
    # psql complains when the postgres user cannot read the current directory; / is always readable.
    if is_root; then
        (cd / && runuser -u postgres -- "$@")
    elif [ "$(id -un)" = postgres ]; then
        "$@"
    elif have sudo; then
        (cd / && sudo -u postgres -- "$@")
    else
        die "'$*' must run as the postgres user, which needs root or sudo. Run it as root, then run this script again."
    fi
}

package_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# Install the Debian packages among "$@" that are not installed yet; apt-get update runs once, only when needed.
apt_install() {
    local missing=() package
    for package in "$@"; do
        package_installed "$package" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    have apt-get || die "missing packages: ${missing[*]}. This is not a Debian-like system; install them yourself."
    if ! is_root && ! have sudo; then
        die "missing Debian packages: ${missing[*]}. Install them as root (apt-get install ${missing[*]}) and run again."
    fi
    if ! $APT_UPDATED; then
        say "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=true
    fi
    say "apt-get install ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" = "$2" ]; }

uv_version() { "$1" --version 2>/dev/null | awk '{print $2}'; }

# ---------------------------------------------------------------------------------------------------------------
# Python: uv (the machine's own if new enough, else a pinned one in .uv-bootstrap/), then .venv from uv.lock.

find_or_install_uv() {
    step "uv (Python package manager)"
    local private="$ROOT/.uv-bootstrap/bin/uv" found
    if [ -x "$private" ] && [ "$(uv_version "$private")" = "$UV_VERSION" ]; then
        UV=$private
        say "using the private uv $UV_VERSION in .uv-bootstrap/"
        return
    fi
    if have uv; then
        found=$(uv_version uv)
        if [ -n "$found" ] && version_at_least "$found" "$UV_VERSION"; then
            UV=$(command -v uv)
            say "using uv $found from $UV"
            return
        fi
        say "uv ${found:-of unknown version} on PATH is older than $UV_VERSION; installing a private one"
    else
        say "uv is not installed; installing uv $UV_VERSION into .uv-bootstrap/ (system Python is left untouched)"
    fi
    if ! have python3; then
        apt_install python3 python3-venv python3-pip
    elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv python3-pip
    fi
    rm -rf "$ROOT/.uv-bootstrap"
    python3 -m venv "$ROOT/.uv-bootstrap"
    # Keep the private venv out of git and out of ruff's view even where .gitignore does not list it.
    printf '*\n' >"$ROOT/.uv-bootstrap/.gitignore"
    "$ROOT/.uv-bootstrap/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
    UV=$private
    say "installed uv $(uv_version "$UV")"
}

sync_python_environment() {
    step "Python environment .venv (exactly as uv.lock says)"
    # --frozen: install what the lock file names, never re-resolve (CI must test what was committed).
    "$UV" sync --frozen
    say "$("$ROOT/.venv/bin/python" --version) in .venv"
}

# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL + PostGIS

# Host and port of a postgresql:// URL (port 5432 when not given).
url_host() {
    local rest=${1#*://}
    rest=${rest%%[/?]*}
    rest=${rest##*@}
    if [[ $rest == \[* ]]; then
        rest=${rest#[}
        printf '%s\n' "${rest%%]*}"
    else
        printf '%s\n' "${rest%%:*}"
    fi
}
url_port() {
    local rest=${1#*://}
    rest=${rest%%[/?]*}
    rest=${rest##*@}
    rest=${rest##*]}
    if [[ $rest == *:* ]]; then printf '%s\n' "${rest##*:}"; else printf '%s\n' "$DEFAULT_PG_PORT"; fi
}

# "version name status" of the local cluster listening on port $1, empty when there is none.
cluster_on_port() {
    have pg_lsclusters || return 0
    pg_lsclusters --no-header 2>/dev/null | awk -v port="$1" '$3 == port { print $1, $2, $4; exit }'
}

ensure_postgis_for() {
    local version=$1
    if [ -f "/usr/share/postgresql/$version/extension/postgis.control" ]; then
        say "PostGIS for PostgreSQL $version is installed"
    else
        say "PostGIS for PostgreSQL $version is missing"
        apt_install "postgresql-$version-postgis-3"
    fi
}

owner_login_works() {
    PGPASSWORD=$OWNER_PASSWORD PGCONNECT_TIMEOUT=5 psql -h "$DEFAULT_PG_HOST" -p "$DEFAULT_PG_PORT" -U "$OWNER_ROLE" \
        -d postgres -XtAqc 'SELECT 1' >/dev/null 2>&1
}

ensure_local_postgres() {
    step "PostgreSQL + PostGIS on this machine (DATABASE_URL is not set)"
    if ! have pg_lsclusters || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
        say "PostgreSQL is not installed"
        apt_install postgresql
    fi

    local cluster version name status
    cluster=$(cluster_on_port "$DEFAULT_PG_PORT")
    if [ -z "$cluster" ]; then
        if [ -n "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
            die "PostgreSQL clusters exist but none uses port $DEFAULT_PG_PORT (see pg_lsclusters). Set DATABASE_URL to" \
                "point at yours, e.g. postgresql://USER:PASSWORD@127.0.0.1:PORT/parkhub"
        fi
        version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)
        say "no cluster yet: creating PostgreSQL $version cluster 'main'"
        as_root pg_createcluster "$version" main --port "$DEFAULT_PG_PORT"
        cluster=$(cluster_on_port "$DEFAULT_PG_PORT")
    fi
    read -r version name status <<<"$cluster"

    ensure_postgis_for "$version"

    if [[ $status == online* ]]; then
        say "PostgreSQL $version cluster '$name' is running on port $DEFAULT_PG_PORT"
    else
        say "starting PostgreSQL $version cluster '$name'"
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
    fi

    if owner_login_works; then
        say "role '$OWNER_ROLE' can log in at $DEFAULT_PG_HOST:$DEFAULT_PG_PORT"
        return
    fi
    local exists
    exists=$(as_postgres psql -p "$DEFAULT_PG_PORT" -XtAqc "SELECT 1 FROM pg_roles WHERE rolname = '$OWNER_ROLE'")
    if [ "$exists" != 1 ]; then
        say "creating the owner role '$OWNER_ROLE' (superuser: it creates the database, PostGIS and the app role)"
        as_postgres psql -p "$DEFAULT_PG_PORT" -Xqc \
            "CREATE ROLE $OWNER_ROLE LOGIN SUPERUSER PASSWORD '$OWNER_PASSWORD'"
    fi
    owner_login_works || die "role '$OWNER_ROLE' cannot log in at $DEFAULT_PG_HOST:$DEFAULT_PG_PORT with password" \
        "'$OWNER_PASSWORD'. If the role existed before with another password, set DATABASE_URL to its real" \
        "credentials, or run: ALTER ROLE $OWNER_ROLE PASSWORD '$OWNER_PASSWORD'"
    say "role '$OWNER_ROLE' can log in at $DEFAULT_PG_HOST:$DEFAULT_PG_PORT"
}

# DATABASE_URL is given: leave the server alone, but a server on this machine gets PostGIS if it lacks it.
check_given_postgres() {
    step "PostgreSQL from DATABASE_URL ($(redact "$DATABASE_URL"))"
    local host port cluster version name status
    host=$(url_host "$DATABASE_URL")
    port=$(url_port "$DATABASE_URL")
    case "$host" in
    127.0.0.1 | localhost | ::1 | "") ;;
    *)
        say "a remote server: nothing to install here (it needs PostGIS available)"
        return
        ;;
    esac
    cluster=$(cluster_on_port "$port")
    if [ -z "$cluster" ]; then
        say "no Debian-managed cluster on port $port (pg_lsclusters); make sure that server has PostGIS"
        return
    fi
    read -r version name status <<<"$cluster"
    say "PostgreSQL $version cluster '$name' on port $port is $status"
    ensure_postgis_for "$version"
}

# ---------------------------------------------------------------------------------------------------------------
# Redis

redis_answers() { [ "$(redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" = PONG ]; }

ensure_local_redis() {
    step "Redis on this machine (REDIS_URL is not set)"
    if ! have redis-server || ! have redis-cli; then
        say "Redis is not installed"
        apt_install redis-server redis-tools
    fi
    if redis_answers; then
        say "Redis answers on $REDIS_HOST:$REDIS_PORT"
        return
    fi
    local dir logfile
    if [ -d /var/lib/redis ] && [ -w /var/lib/redis ]; then
        dir=/var/lib/redis
        mkdir -p /var/log/redis
        logfile=/var/log/redis/parkhub.log
    else
        dir=${XDG_STATE_HOME:-$HOME/.local/state}/parkhub/redis
        mkdir -p "$dir"
        logfile=$dir/redis.log
    fi
    say "starting Redis on $REDIS_HOST:$REDIS_PORT (data in $dir, log in $logfile)"
    # "-::1": also listen on IPv6 loopback when the machine has it, without failing when it does not.
    redis-server --daemonize yes --bind "$REDIS_HOST" -::1 --port "$REDIS_PORT" --dir "$dir" --logfile "$logfile"
    local _
    for _ in $(seq 1 50); do
        redis_answers && {
            say "Redis answers on $REDIS_HOST:$REDIS_PORT"
            return
        }
        sleep 0.2
    done
    die "Redis started but does not answer PING on $REDIS_HOST:$REDIS_PORT after 10 s; see $logfile"
}

# ---------------------------------------------------------------------------------------------------------------

main() {
    printf 'ParkHub bootstrap in %s\n' "$ROOT"
    find_or_install_uv
    sync_python_environment
    if [ -n "${DATABASE_URL:-}" ]; then check_given_postgres; else ensure_local_postgres; fi
    if [ -n "${REDIS_URL:-}" ]; then
        step "Redis from REDIS_URL ($(redact "$REDIS_URL")): left as it is"
    else
        ensure_local_redis
    fi
    step "Ready"
}

main "$@"
