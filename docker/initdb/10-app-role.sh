#!/bin/sh
# Two roles beside the image's bootstrap superuser (POSTGRES_USER, used by these scripts only):
# - einvoice, the owner: it owns the database and its schema and runs the migrations; it is no
#   superuser, so it cannot set session_replication_role or act as another role;
# - einvoice_app, the role the worker, beat, API and exporters connect as. It owns nothing, so it
#   cannot alter a table, switch a trigger off or delete from the audit trail; `migrate` grants
#   it what it needs.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE einvoice LOGIN PASSWORD '${OWNER_DB_PASSWORD}';
CREATE ROLE einvoice_app LOGIN PASSWORD '${APP_DB_PASSWORD}';
ALTER DATABASE "${POSTGRES_DB}" OWNER TO einvoice;
ALTER SCHEMA public OWNER TO einvoice;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
