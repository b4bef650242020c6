#!/usr/bin/env bash
# Makes the local infrastructure ready: PostGIS installed, PostgreSQL and RabbitMQ running,
# the gridbus database present. Idempotent; used by `make run`, `make test` and CI.
set -euo pipefail

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
if [ -z "$pg_version" ]; then
  echo "PostgreSQL is not installed" >&2; exit 1
fi
if ! ls /usr/share/postgresql/"$pg_version"/extension/postgis.control >/dev/null 2>&1; then
  echo "installing PostGIS for PostgreSQL $pg_version"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$pg_version-postgis-3" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  echo "starting RabbitMQ"
  as_root rabbitmq-server -detached
  for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null && break; sleep 1; done
fi
# The broker's own features gridbus uses: its management API (`gridbus levels`) and federation
# between county, city and province deployments (shared/levels.py). Enabled on the running node.
plugins="rabbitmq_management rabbitmq_federation rabbitmq_federation_management"
if [ "$(rabbitmq-plugins list -e -m 2>/dev/null | grep -cE '^(rabbitmq_management|rabbitmq_federation|rabbitmq_federation_management)$')" != 3 ]; then
  echo "enabling RabbitMQ plugins: $plugins"
  as_root rabbitmq-plugins enable --quiet $plugins >/dev/null
fi
for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/15672) 2>/dev/null && break; sleep 1; done
# MQTT for sensors (services/sensors), on 1884: Mosquitto often holds 1883. The line in rabbitmq.conf
# holds from the next start; a running node is told now, as its config was read when it booted.
conf=/etc/rabbitmq/rabbitmq.conf
if ! grep -qs '^mqtt.listeners.tcp.default' "$conf"; then
  printf '%s\n' 'mqtt.listeners.tcp.default = 127.0.0.1:1884' 'mqtt.allow_anonymous = false' | as_root tee -a "$conf" >/dev/null
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/1884) 2>/dev/null; then
  echo "starting RabbitMQ's MQTT listener on 1884"
  as_root rabbitmq-plugins enable --quiet rabbitmq_mqtt >/dev/null 2>&1 || true   # may fail on 1883 until told below
  as_root rabbitmqctl -q eval 'application:stop(rabbitmq_mqtt), application:load(rabbitmq_mqtt), application:set_env(rabbitmq_mqtt, tcp_listeners, [{"127.0.0.1", 1884}]), application:set_env(rabbitmq_mqtt, allow_anonymous, false), application:ensure_all_started(rabbitmq_mqtt).' >/dev/null
  for _ in $(seq 30); do (exec 3<>/dev/tcp/127.0.0.1/1884) 2>/dev/null && break; sleep 1; done
fi
# PostgreSQL over TLS (sslmode=verify-full with sslrootcert=<data dir>/gridbus-ca.crt): a development CA and
# server certificate in its data directory, switched on by a reload; nothing if it serves them already.
py="$(dirname "$0")/../.venv/bin/python"
if [ -x "$py" ] && [ "$(psql -h 127.0.0.1 -U "${PGUSER:-root}" -d postgres -tAc 'SHOW ssl')" != on ]; then
  echo "turning on PostgreSQL's TLS (a reload)"
  "$py" -m scripts.postgres_tls "postgresql://${PGUSER:-root}@127.0.0.1:5432/postgres" >/dev/null
fi
# The database the demo and `gridbus` use by default (tests make their own).
db=${GRIDBUS_DB_NAME:-gridbus}
if ! psql -h 127.0.0.1 -U "${PGUSER:-root}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql -h 127.0.0.1 -U "${PGUSER:-root}" -d postgres -qc "CREATE DATABASE $db"
fi
