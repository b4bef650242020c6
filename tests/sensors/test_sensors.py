"""Sensors on the real broker: devices publish over MQTT to RabbitMQ's MQTT plugin as their own
broker users (paho-mqtt, as a device's firmware would), and alarms become suspected cases."""
from __future__ import annotations

import json
import uuid
from urllib.parse import urlsplit

import grpc
import kombu
import paho.mqtt.client as mqtt

from gridbus.incidents.v1 import incidents_pb2 as ipb
from gridbus.sensors.v1 import sensors_pb2 as pb
from services.sensors.intake import REASON_HEADER, REJECTED_QUEUE
from tests.support import metadata, token, wait_for

DISTRICT_1, DISTRICT_2 = "330102", "330103"
IN_DISTRICT_1 = (120.05, 30.05)
IN_DISTRICT_2 = (120.3, 30.2)
ADMIN_1 = metadata(token("admin", DISTRICT_1, member_id="admin-1"))
ADMIN_2 = metadata(token("admin", DISTRICT_2, member_id="admin-2"))
OFFICER_1 = metadata(token("officer", DISTRICT_1, member_id="officer-1"))
OFFICER_2 = metadata(token("officer", DISTRICT_2, member_id="officer-2"))


def call_error(method, request, *, metadata) -> grpc.RpcError:
    try:
        method(request, metadata=metadata)
    except grpc.RpcError as err:
        return err
    raise AssertionError(f"{request} was accepted")


def register(stub, *, where=IN_DISTRICT_1, who=ADMIN_1, heartbeat=0, kind="manhole_cover"):
    device_id = f"mh-{uuid.uuid4().hex[:10]}"
    alarm_map = {"OPEN": "0601", "TILT": "0601", "SILENT": "06"}
    return stub.RegisterDevice(pb.RegisterDeviceRequest(id=device_id, kind=kind, lon=where[0], lat=where[1],
                                                         department_code="municipal", alarm_map=alarm_map,
                                                         heartbeat_seconds=heartbeat), metadata=who)


class Device:
    """A device's MQTT session with its own credentials (QoS 1: the broker confirms each)."""

    def __init__(self, reg: pb.RegisterDeviceResponse, password: str | None = None):
        url = urlsplit(reg.mqtt_url)
        self.reg, self.closed = reg, False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{reg.device.id}-{uuid.uuid4().hex[:4]}")
        self.client.username_pw_set(reg.mqtt_username, password or reg.mqtt_password)
        self.client.on_disconnect = lambda *a: setattr(self, "closed", True)
        self.connected = self.client.connect(url.hostname, url.port) == 0
        self.client.loop_start()

    def publish(self, topic: str, payload, wait: bool = True) -> bool:
        body = payload if isinstance(payload, bytes) else json.dumps(payload)
        info = self.client.publish(topic, body, qos=1)
        if wait:
            try:
                info.wait_for_publish(5)
            except (RuntimeError, ValueError):
                return False
        return info.is_published()

    def alarm(self, code="OPEN", **extra) -> bool:
        return self.publish(self.reg.alarm_topic, {"code": code, **extra})

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def pending(stub, who=ADMIN_1):
    return list(stub.ListSuspected(pb.ListSuspectedRequest(limit=500), metadata=who).cases)


def cases_of(stub, device_id, who=ADMIN_1):
    return [c for c in pending(stub, who) if c.device_id == device_id]


def test_an_alarm_becomes_one_suspected_case_and_repeats_count_on_it(sensors_stub, sensors_nameko):
    reg = register(sensors_stub)
    assert reg.device.grid_code.startswith(DISTRICT_1) and reg.alarm_topic == f"sensors/{reg.device.id}/alarm"
    device = Device(reg)
    assert device.connected
    for _ in range(5):
        assert device.alarm("OPEN", value=1.0, message="lid lifted")
    device.close()
    case = wait_for(lambda: (c := cases_of(sensors_stub, reg.device.id)) and c[0].repeats == 4 and c)
    assert len(case) == 1 and case[0].code == "OPEN" and case[0].category == "0601"
    assert case[0].message == "lid lifted" and case[0].grid_code == reg.device.grid_code
    # Another district's admin does not see it in its review queue.
    assert not cases_of(sensors_stub, reg.device.id, who=ADMIN_2)


def test_a_device_may_publish_only_to_its_own_topics_and_only_with_its_password(sensors_stub, sensors_nameko):
    mine, other = register(sensors_stub), register(sensors_stub)
    wrong_password = Device(mine, password="not-its-password")
    assert wait_for(lambda: wrong_password.closed or not wrong_password.connected)
    forger = Device(mine)
    assert not forger.publish(other.alarm_topic, {"code": "OPEN"})   # the broker closes it instead
    assert wait_for(lambda: forger.closed)
    forger.close()
    honest = Device(mine)
    assert honest.alarm("TILT")              # then a real alarm of its own, as a marker that all was taken
    honest.close()
    wait_for(lambda: cases_of(sensors_stub, mine.device.id))
    assert cases_of(sensors_stub, other.device.id) == []


def test_a_malformed_alarm_goes_to_the_dead_letter_queue_with_its_reason(environment, sensors_stub, sensors_nameko):
    reg = register(sensors_stub)
    device = Device(reg)
    assert device.publish(reg.alarm_topic, b"{not json")
    assert device.alarm("MELT")                                      # a code the device does not map
    device.close()
    reasons = {}

    def rejected():
        with kombu.Connection(environment["GRIDBUS_AMQP_URI"]) as conn:
            ch = conn.channel()
            while (m := ch.basic_get(REJECTED_QUEUE)) is not None:
                reasons[m.body] = (m.headers or {}).get(REASON_HEADER) or m.properties["application_headers"][REASON_HEADER]
                ch.basic_ack(m.delivery_tag)
        return len(reasons) >= 2
    wait_for(rejected)
    assert "not JSON" in reasons[b"{not json"]
    assert "MELT" in next(r for body, r in reasons.items() if b"MELT" in body)
    assert cases_of(sensors_stub, reg.device.id) == []


def test_an_alarm_storm_of_ten_thousand_from_a_hundred_devices_makes_a_hundred_cases(sensors_stub, sensors_nameko):
    devices = [Device(register(sensors_stub)) for _ in range(100)]
    for device in devices:                   # 100 alarms a device, sent without waiting for each
        infos = [device.client.publish(device.reg.alarm_topic, json.dumps({"code": "OPEN", "value": i}), qos=1)
                 for i in range(100)]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    for device in devices:
        device.close()
    ids = {d.reg.device.id for d in devices}

    def all_counted():
        mine = [c for c in pending(sensors_stub) if c.device_id in ids]
        return mine if sum(c.repeats + 1 for c in mine) == 10_000 else None
    cases = wait_for(all_counted, 120)
    assert len(cases) == 100 and {c.device_id for c in cases} == ids   # one case a device, nothing lost


def test_a_silent_device_raises_its_own_case(sensors_stub, sensors_nameko):
    reg = register(sensors_stub, heartbeat=1)
    case = wait_for(lambda: [c for c in cases_of(sensors_stub, reg.device.id) if c.code == "SILENT"], 30)
    assert case[0].category == "06" and "heartbeat 1 s" in case[0].message


def test_a_confirmed_case_becomes_an_incident_and_a_dismissed_one_needs_a_reason(
        sensors_stub, sensors_nameko, incidents_nameko, stub):
    reg = register(sensors_stub)
    device = Device(reg)
    device.alarm("OPEN", message="cover missing")
    device.close()
    case = wait_for(lambda: cases_of(sensors_stub, reg.device.id))[0]
    # Scope: an officer of the other district may not decide it.
    err = call_error(sensors_stub.Confirm, pb.DecideRequest(case_id=case.id), metadata=OFFICER_2)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = call_error(sensors_stub.Dismiss, pb.DecideRequest(case_id=case.id), metadata=OFFICER_1)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in err.details()
    confirmed = sensors_stub.Confirm(pb.DecideRequest(case_id=case.id), metadata=OFFICER_1)
    assert confirmed.status == "confirmed" and confirmed.decided_by == "officer-1"
    err = call_error(sensors_stub.Dismiss, pb.DecideRequest(case_id=case.id, reason="x"), metadata=OFFICER_1)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    # incidents takes it in: reported with the case's id, in the device's grid, then dispatched as any other.
    officer = metadata(token("officer", reg.device.grid_code, member_id="officer-1"))

    def incident():
        found = stub.ListIncidents(ipb.ListIncidentsRequest(grid_code=reg.device.grid_code, page_size=50),
                                   metadata=officer).incidents
        return [i for i in found if i.report_id == case.id]
    found = wait_for(incident, 30)
    assert found[0].category_code == "0601" and reg.device.id in found[0].title


def test_bad_requests_get_typed_errors(sensors_stub, sensors_nameko):
    err = call_error(sensors_stub.RegisterDevice, pb.RegisterDeviceRequest(
        id="x", kind="smoke", lon=120.05, lat=30.05, department_code="fire", alarm_map={"SMOKE": "04"}),
        metadata=ADMIN_1)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "device id" in err.details()
    err = call_error(sensors_stub.RegisterDevice, pb.RegisterDeviceRequest(
        id="far-away-1", kind="smoke", lon=10.0, lat=10.0, department_code="fire", alarm_map={"SMOKE": "04"}),
        metadata=ADMIN_1)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no grid" in err.details()
    err = call_error(sensors_stub.RegisterDevice, pb.RegisterDeviceRequest(
        id="smoke-d2-1", kind="smoke", lon=IN_DISTRICT_2[0], lat=IN_DISTRICT_2[1], department_code="fire",
        alarm_map={"SMOKE": "04"}), metadata=ADMIN_1)
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    reg = register(sensors_stub)
    err = call_error(sensors_stub.RegisterDevice, pb.RegisterDeviceRequest(
        id=reg.device.id, kind="smoke", lon=120.05, lat=30.05, department_code="fire", alarm_map={"SMOKE": "04"}),
        metadata=ADMIN_1)
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    err = call_error(sensors_stub.Confirm, pb.DecideRequest(case_id="not-a-uuid"), metadata=OFFICER_1)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    err = call_error(sensors_stub.Confirm, pb.DecideRequest(case_id=str(uuid.uuid4())), metadata=OFFICER_1)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = call_error(sensors_stub.ListSuspected, pb.ListSuspectedRequest(), metadata=metadata(token("department", "x")))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_deactivated_device_loses_its_broker_account(sensors_stub, sensors_nameko):
    reg = register(sensors_stub)
    sensors_stub.DeactivateDevice(pb.DeactivateDeviceRequest(id=reg.device.id), metadata=ADMIN_1)
    device = Device(reg)
    assert wait_for(lambda: device.closed or not device.connected)
    device.close()
    listed = {d.id: d for d in sensors_stub.ListDevices(pb.ListDevicesRequest(), metadata=ADMIN_1).devices}
    assert listed[reg.device.id].active is False
