#!/bin/sh
# Run once by the postgis image when its data directory is new (docker-compose.yml mounts it
# into /docker-entrypoint-initdb.d): the two roles gridbus needs (docs/security.md), the
# database owned by the first, and the extensions only a superuser may create.
#   gridbus_owner: owns the schemas; `gridbus migrate` runs as it (GRIDBUS_MIGRATION_DATABASE_URL)
#   gridbus_app:   the services (GRIDBUS_DATABASE_URL); owns nothing, gets its grants from migrate
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
     -v owner_password="$GRIDBUS_DB_OWNER_PASSWORD" -v app_password="$GRIDBUS_DB_APP_PASSWORD" <<'SQL'
CREATE ROLE gridbus_owner LOGIN PASSWORD :'owner_password';
CREATE ROLE gridbus_app LOGIN PASSWORD :'app_password';
CREATE DATABASE gridbus OWNER gridbus_owner;
\connect gridbus
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;
SQL
