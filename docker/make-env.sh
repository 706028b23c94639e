#!/bin/sh
# Write .env from .env.example, filling every empty secret with a random value.
# Usage (from the repository root): sh docker/make-env.sh [output-file]   (default: .env)
# Refuses to overwrite an existing file. Needs openssl.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
example="$here/.env.example"
out="${1:-$here/.env}"

if [ -e "$out" ]; then
    echo "make-env: $out already exists; remove it first to generate a new one" >&2
    exit 1
fi
command -v openssl >/dev/null 2>&1 || { echo "make-env: openssl is needed" >&2; exit 1; }

token() { openssl rand -hex 24; }
# A Fernet key is 32 random bytes in urlsafe base64.
fernet() { openssl rand -base64 32 | tr '+/' '-_'; }

umask 077
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        AIRFLOW_FERNET_KEY=) echo "AIRFLOW_FERNET_KEY=$(fernet)" ;;
        CDC_PG_PASSWORD=|CDC_CAPTURE_PASSWORD=|CDC_CONNECT_PASSWORD=|CDC_AIRFLOW_PASSWORD=|AIRFLOW_DB_PASSWORD=|AIRFLOW_JWT_SECRET=|AIRFLOW_API_SECRET_KEY=|REDIS_PASSWORD=)
            echo "$line$(token)" ;;
        *) printf '%s\n' "$line" ;;
    esac
done < "$example" > "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "make-env: wrote $out (Airflow login: $(grep '^CDC_AIRFLOW_USER=' "$out" | cut -d= -f2-) / the CDC_AIRFLOW_PASSWORD in it)"
