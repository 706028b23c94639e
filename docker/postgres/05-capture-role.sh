#!/bin/sh
# The role the pipeline and Debezium connect as ($CDC_CAPTURE_USER), with only what they need: LOGIN and
# REPLICATION (a replication slot, the WAL), USAGE on the schemas and SELECT on the tables, those there now and
# those $POSTGRES_USER creates later (default privileges). No ownership: registration keeps the connector's
# publication through the administrator's connection (docs/source-privileges.md).
# Run by the postgres image once, before the demo tables, on a fresh postgres-data volume; by the local stack at
# every start (devstack/postgres.py). Safe to run again: after changing CDC_CAPTURE_PASSWORD in .env, run
#   docker compose exec postgres sh /docker-entrypoint-initdb.d/05-capture-role.sh
# The image executes this file, or sources it when the executable bit is lost: so no `set -u`, and a failure
# exits non-zero either way.

: "${CDC_CAPTURE_USER:?CDC_CAPTURE_USER is not set}"
: "${CDC_CAPTURE_PASSWORD:?CDC_CAPTURE_PASSWORD is not set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" -v role="${CDC_CAPTURE_USER}" -v password="${CDC_CAPTURE_PASSWORD}" \
    -v owner="${POSTGRES_USER:-postgres}" <<'SQL' || exit 1
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')
\gexec
SELECT format('ALTER ROLE %I LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD %L',
              :'role', :'password')
\gexec
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'role'),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'role')
FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'
\gexec
SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT USAGE ON SCHEMAS TO %I', :'owner', :'role'),
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT SELECT ON TABLES TO %I', :'owner', :'role')
\gexec
SQL
echo "05-capture-role.sh: role ${CDC_CAPTURE_USER} can log in, replicate and read the tables of ${POSTGRES_DB:-postgres}"
