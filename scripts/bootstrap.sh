#!/usr/bin/env bash
# Install what the local stack needs, and nothing when it is all there already (a second run takes ~1 s).
#  1. Debian packages: postgresql, a Java 17 runtime and Maven (Apache Kafka, Kafka Connect, Debezium), chromium
#     (browser tests), redis-server (the Celery broker of the two-worker test), libicu-dev, pkg-config and g++
#     (PyICU is built against the ICU PostgreSQL links: keys under ICU collations).
#  2. The virtualenv .venv (Python 3.11+) with requirements*.txt and this package (editable).
#     pip runs only when the hash of the requirement files differs from the one stamped after the last install.
#  3. Apache Kafka's and Debezium's jars from Maven Central (devstack/maven/*/pom.xml), each checked against the
#     SHA-256 pinned beside its pom, into $CDC_JARS_DIR (default .cache/jars): about 70 MB, ~10 s the first time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
STAMP="$VENV/.cdc-requirements.sha256"
APT_PACKAGES=(postgresql openjdk-17-jre-headless maven chromium redis-server libicu-dev pkg-config g++)

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $* (install sudo or run as root)"; fi
}

# --- 1. Debian packages --------------------------------------------------------------------------
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Debian's python3 has no venv module until python3-venv is installed.
if [ ! -x "$VENV/bin/python" ] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get: install them by hand"
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
command -v java >/dev/null || die "java not on PATH after installing openjdk-17-jre-headless"
command -v mvn >/dev/null || die "mvn not on PATH after installing maven"

# --- 2. Python virtualenv -------------------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    PY=""
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            PY="$candidate"; break
        fi
    done
    [ -n "$PY" ] || die "Python 3.11 or newer is required (found: $(python3 --version 2>&1 || echo none)). \
Install python3.11 (Debian 12: apt-get install python3 python3-venv) and run again."
    say "creating $VENV with $("$PY" --version)"
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "$VENV uses $("$VENV/bin/python" --version 2>&1); 3.11+ is required: delete .venv and run again"

hash_now="$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$hash_now" ]; then
    say "installing Python packages into $VENV (first time: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt -r requirements-dev.txt
    "$VENV/bin/python" -m pip install --quiet --no-deps -e .
    echo "$hash_now" > "$STAMP"
    say "Python packages installed"
fi

# --- 3. Apache Kafka and Debezium jars -------------------------------------------------------------
# Nothing to do (~0.3 s) when the checked bundles are already in the cache.
"$VENV/bin/python" -m devstack.jars
