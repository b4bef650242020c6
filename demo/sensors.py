"""The demo's sensors step: five manhole-cover sensors in one district send an alarm storm over
MQTT (each as its own broker user); it becomes five suspected cases, an officer confirms one,
which incidents takes in and dispatch routes, and a dispatcher dismisses another."""
from __future__ import annotations

import json
import time
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.incidents.v1 import incidents_pb2_grpc
from gridbus.sensors.v1 import sensors_pb2 as pb
from gridbus.sensors.v1 import sensors_pb2_grpc
from services import registry
from shared import tls
from shared.auth import mint_token
from shared.health import check_grpc, wait_until

DEVICES, ALARMS_EACH = 5, 40


def _until(condition, timeout: float):
    """What `condition()` returns once it is something, polling; None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.2)
    return None


def _storm(reg: pb.RegisterDeviceResponse, n: int) -> None:
    url = urlsplit(reg.mqtt_url)
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{reg.device.id}-{uuid.uuid4().hex[:4]}")
    device.username_pw_set(reg.mqtt_username, reg.mqtt_password)
    device.connect(url.hostname, url.port)
    device.loop_start()
    sent = [device.publish(reg.alarm_topic, json.dumps({"code": "OPEN", "value": i, "message": "cover lifted"}), qos=1)
            for i in range(n)]
    for info in sent:
        info.wait_for_publish(30)
    device.disconnect()
    device.loop_stop()


def run(city_code: str, district: str, cell: tuple[str, float, float, float, float]) -> None:
    port = registry.port("sensors")
    wait_until(lambda: check_grpc(f"127.0.0.1:{port}", timeout=1))
    sensors = sensors_pb2_grpc.SensorServiceStub(tls.channel(f"127.0.0.1:{port}"))
    incidents = incidents_pb2_grpc.IncidentServiceStub(tls.channel(f"127.0.0.1:{registry.port('incidents')}"))
    admin = [("authorization", f"Bearer {mint_token('demo-admin', 'admin', [city_code])}")]
    officer = [("authorization", f"Bearer {mint_token('demo-sensor-officer', 'officer', [district])}")]
    dispatcher = [("authorization", f"Bearer {mint_token('demo-sensor-dispatcher', 'dispatcher', [district])}")]
    code, w, s, e, n = cell
    print(f"== sensors: {DEVICES} manhole-cover sensors in grid {code} send {DEVICES * ALARMS_EACH} alarms over MQTT")
    regs = [sensors.RegisterDevice(pb.RegisterDeviceRequest(
        id=f"demo-mh-{uuid.uuid4().hex[:6]}", kind="manhole_cover", lon=w + (e - w) * (i + 1) / (DEVICES + 1),
        lat=(s + n) / 2, department_code="municipal", alarm_map={"OPEN": "0601"}), metadata=admin)
        for i in range(DEVICES)]
    for reg in regs:
        _storm(reg, ALARMS_EACH)
    ids = {r.device.id for r in regs}

    def counted():
        cases = [c for c in sensors.ListSuspected(pb.ListSuspectedRequest(limit=500), metadata=admin).cases
                 if c.device_id in ids]
        return cases if sum(c.repeats + 1 for c in cases) == DEVICES * ALARMS_EACH else None
    cases = _until(counted, 60)
    if not cases:
        print("   the alarms were not all counted within a minute: see .run/logs/sensors-nameko.log")
        return
    print(f"   {DEVICES * ALARMS_EACH} alarms -> {len(cases)} suspected cases (待核实), none dispatched yet:")
    for c in cases:
        print(f"     {c.id[:8]} {c.device_id} {c.code} x{c.repeats + 1} category {c.category}")
    confirmed = sensors.Confirm(pb.DecideRequest(case_id=cases[0].id), metadata=officer)
    dismissed = sensors.Dismiss(pb.DecideRequest(case_id=cases[1].id, reason="maintenance crew lifting the cover"),
                                metadata=dispatcher)
    print(f"   an officer confirms {confirmed.id[:8]}; a dispatcher dismisses {dismissed.id[:8]} ({dismissed.reason})")

    def reported():
        found = incidents.ListIncidents(ipb.ListIncidentsRequest(grid_code=code, page_size=200), metadata=admin).incidents
        return next((i for i in found if i.report_id == confirmed.id and i.status != ipb.STATUS_REPORTED), None)
    incident = _until(reported, 30)
    if incident is None:
        print("   the confirmed case was not taken in within 30 s: see .run/logs/incidents-nameko.log")
        return
    print(f"   incident {incident.id[:8]} '{incident.title}' taken in from the confirmed case: "
          f"{ipb.Status.Name(incident.status)}{' to ' + incident.department_code if incident.department_code else ''}")
