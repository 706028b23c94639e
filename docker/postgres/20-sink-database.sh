#!/bin/sh
# postgres service (docker-compose.yml): creates the PostgreSQL sink's database, $CDC_SINK_DB, next to the
# source database. The image runs /docker-entrypoint-initdb.d/* once, after initdb, on a fresh postgres-data
# volume; on an existing volume create it by hand (docs/docker-compose.md). Safe to run twice.
# The image executes this file, or sources it when the executable bit is lost: so no `set -u` (it would
# stay on in the image's entrypoint), and a failure exits non-zero either way.

: "${CDC_SINK_DB:?CDC_SINK_DB is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v sink="${CDC_SINK_DB}" <<'SQL' || exit 1
SELECT format('CREATE DATABASE %I', :'sink')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'sink')
\gexec
SQL
echo "20-sink-database.sh: database ${CDC_SINK_DB} is there"
