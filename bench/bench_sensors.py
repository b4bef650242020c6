"""Sensors: alarms ingested per second (MQTT publish over RabbitMQ's MQTT plugin, through the
intake, collapsed into suspected cases and committed) beside raw MQTT publishing of the same
messages to a plain queue on the same broker in the same run. 100 devices send 100 alarms each
(QoS 1, pipelined), as in an alarm storm. Prints figures; asserts nothing about speed."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from demo import services  # noqa: E402
from demo.city import CityPlan, build  # noqa: E402
from demo.run import fresh_database  # noqa: E402
from demo.supervisor import Supervisor  # noqa: E402
from shared import tls  # noqa: E402
from shared.auth import SERVICE, Principal  # noqa: E402
from shared.health import check_nameko, wait_until  # noqa: E402

MQTT_HOST, MQTT_PORT = "127.0.0.1", 1884


def storm(clients: list[tuple[str, str, str]], per_client: int) -> float:
    """Each (user, password, topic) publishes per_client QoS 1 messages, all connections at once;
    returns the seconds until the broker acknowledged the last one."""
    sessions = []
    for user, password, topic in clients:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
        c.username_pw_set(user, password)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.connect(MQTT_HOST, MQTT_PORT)
        c.loop_start()
        sessions.append((c, topic))
    t0 = time.perf_counter()
    pending = [c.publish(topic, json.dumps({"code": "OPEN", "value": i}), qos=1)
               for i in range(per_client) for c, topic in sessions]
    for info in pending:
        info.wait_for_publish(120)
    seconds = time.perf_counter() - t0
    for c, _ in sessions:
        c.disconnect()
        c.loop_stop()
    lost = sum(not info.is_published() for info in pending)
    if lost:
        raise SystemExit(f"{lost} messages were not acknowledged by the broker")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--alarms", type=int, default=100, help="alarms per device")
    args = parser.parse_args()
    total = args.devices * args.alarms

    vhost = f"gridbus-bench-sensors-{os.getpid()}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], check=True)
    os.environ["GRIDBUS_AMQP_URI"] = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    admin_url = os.environ.get("GRIDBUS_BENCH_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/gridbus_bench_sensors")
    owner_url, runtime_url = fresh_database(admin_url)
    os.environ["GRIDBUS_DATABASE_URL"] = runtime_url
    os.environ["GRIDBUS_MIGRATION_DATABASE_URL"] = owner_url
    from services.grid import operations as grid_ops
    from services.registry import migrate
    from services.sensors import operations as ops
    from shared.config import settings
    migrate(owner_url, runtime_url)
    system = Principal("bench", SERVICE, ())
    grid_ops.import_units(system, build(CityPlan()))
    s = settings()
    log_dir = ROOT / ".run" / "bench-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    sup = Supervisor(dict(os.environ), log_dir)
    services.start(sup, ["sensors"])
    dsn = runtime_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        wait_until(lambda: check_nameko(s.amqp_uri, "sensors", timeout=2), timeout=60)
        devices = [ops.register_device(system, id_=f"bench-{i:04d}", kind="manhole_cover", lon=120.05 + i * 1e-4,
                                       lat=30.05, department_code="municipal", alarm_map={"OPEN": "0601"})
                   for i in range(args.devices)]

        # Raw: the same messages from as many connections (guest), to a plain queue on amq.topic.
        with tls.amqp_connection(s.amqp_uri, s) as conn:
            ch = conn.channel()
            ch.queue_declare("bench-raw-mqtt", durable=True, auto_delete=False)
            ch.queue_bind("bench-raw-mqtt", "amq.topic", "bench.raw.#")
        raw_seconds = storm([(f"{vhost}:guest", "guest", f"bench/raw/{i}") for i in range(args.devices)], args.alarms)
        raw_rate = total / raw_seconds

        t0 = time.perf_counter()
        publish_seconds = storm([(d.mqtt_username, d.mqtt_password, d.topic) for d in devices], args.alarms)
        with psycopg.connect(dsn, autocommit=True) as conn:
            def counted() -> int:
                return conn.execute("SELECT COALESCE(sum(repeats + 1), 0) FROM sensors.cases").fetchone()[0]
            while counted() < total and time.perf_counter() - t0 < 600:
                time.sleep(0.02)
            ingest_seconds = time.perf_counter() - t0
            taken, cases = counted(), conn.execute("SELECT count(*) FROM sensors.cases").fetchone()[0]
    finally:
        sup.stop()
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False)
        for d in range(args.devices):
            subprocess.run(["rabbitmqctl", "-q", "delete_user", f"sensor-bench-{d:04d}"], check=False,
                           capture_output=True)

    rate = taken / ingest_seconds
    print(f"\nSensors: {args.devices} devices x {args.alarms} alarms, QoS 1, {os.cpu_count()} cores")
    print(f"{'raw MQTT publish to a plain queue':<44} {raw_rate:>10,.0f} msgs/s  ({total:,} in {raw_seconds:.2f} s)")
    print(f"{'alarms published (devices, own users)':<44} {total / publish_seconds:>10,.0f} msgs/s")
    print(f"{'alarms ingested into suspected cases':<44} {rate:>10,.0f} alarms/s  ratio {rate / raw_rate:.3f}")
    print(f"{'  taken / sent, cases':<44} {taken:>10,} / {total:,}, {cases} cases")


if __name__ == "__main__":
    main()
