#!/bin/sh
# The role the worker, beat, API and exporters connect as. It does not own the tables, so it
# cannot alter or empty the audit trail; migrations (run as the owner) grant it what it needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE einvoice_app LOGIN PASSWORD '${APP_DB_PASSWORD}';
SQL
