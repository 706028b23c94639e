#!/usr/bin/env bash
# airflow-init (docker-compose.yml): runs once, as root, before every other Airflow service starts.
#   1. migrates the Airflow metadata database;
#   2. writes SimpleAuthManager's password file from CDC_AIRFLOW_USER / CDC_AIRFLOW_PASSWORD
#      (the other services never see the password, only this file on the airflow-auth volume);
#   3. creates the data folder and gives the named volumes to the airflow user.
# It runs on every `docker compose up`, so a password changed in .env takes effect at the next up.
set -euo pipefail

: "${CDC_AIRFLOW_USER:?CDC_AIRFLOW_USER is not set}"
: "${CDC_AIRFLOW_PASSWORD:?CDC_AIRFLOW_PASSWORD is not set}"
: "${CDC_DATA_DIR:?CDC_DATA_DIR is not set}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE is not set}"

AIRFLOW_UID="$(id -u airflow)"
passwords_file="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE}"

echo "cdc-init: Airflow $(/entrypoint airflow version 2>/dev/null | tail -n 1)"

echo "cdc-init: migrating the metadata database"
/entrypoint airflow db migrate

echo "cdc-init: writing the password file for user '${CDC_AIRFLOW_USER}'"
mkdir -p "$(dirname "${passwords_file}")" "${CDC_DATA_DIR}" /opt/airflow/logs
# json.dump quotes whatever characters the password has; the file is replaced atomically.
python - "${passwords_file}" <<'PY'
import json, os, sys
path = sys.argv[1]
tmp = path + ".tmp"
with open(tmp, "w", encoding="utf-8") as fh:
    json.dump({os.environ["CDC_AIRFLOW_USER"]: os.environ["CDC_AIRFLOW_PASSWORD"]}, fh)
    fh.write("\n")
os.chmod(tmp, 0o600)
os.replace(tmp, path)
PY

echo "cdc-init: giving the volumes to uid ${AIRFLOW_UID}"
chown -R "${AIRFLOW_UID}:0" "$(dirname "${passwords_file}")" "${CDC_DATA_DIR}" /opt/airflow/logs
chmod -R g+rwX "${CDC_DATA_DIR}" /opt/airflow/logs

echo "cdc-init: done"
