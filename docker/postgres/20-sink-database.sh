#!/bin/sh
# postgres service (docker-compose.yml): creates the PostgreSQL sink's database, $CDC_SINK_DB, next to the
# source database. The image runs /docker-entrypoint-initdb.d/* once, after initdb, on a fresh postgres-data
# volume; on an existing volume create it by hand (docs/docker-compose.md). Safe to run twice.
set -eu

: "${CDC_SINK_DB:?CDC_SINK_DB is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    -v sink="${CDC_SINK_DB}" <<'SQL'
SELECT format('CREATE DATABASE %I', :'sink')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'sink')
\gexec
SQL
echo "20-sink-database.sh: database ${CDC_SINK_DB} is there"
