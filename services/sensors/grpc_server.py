"""The sensors service's gRPC server: devices and the review queue of suspected cases.

Run: python -m services.sensors.grpc_server (port GRIDBUS_SENSORS_GRPC_PORT)."""
from __future__ import annotations

from gridbus.sensors.v1 import sensors_pb2 as pb
from gridbus.sensors.v1 import sensors_pb2_grpc as pb_grpc
from services import registry
from services.sensors import access, domain
from services.sensors import operations as ops
from shared.config import settings
from shared.grpc_support import serve, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.sensors.v1.SensorService"


def device_pb(d) -> pb.Device:
    return pb.Device(id=d.id, kind=d.kind, lon=d.lon, lat=d.lat, grid_code=d.grid_code,
                     department_code=d.department_code, alarm_map=dict(d.alarm_map),
                     heartbeat_seconds=d.heartbeat_seconds, active=d.active, registered_at=timestamp(d.registered_at),
                     last_seen_at=timestamp(d.last_seen_at))


def case_pb(c) -> pb.SuspectedCase:
    return pb.SuspectedCase(id=str(c.id), device_id=c.device_id, device_kind=c.kind, code=c.code,
                            category=c.category_code, grid_code=c.lineage[-1], lon=c.lon, lat=c.lat,
                            first_at=timestamp(c.first_at), last_at=timestamp(c.last_at), repeats=c.repeats,
                            message=c.last_message, status=c.status, decided_by=c.decided_by or "",
                            reason=c.reason or "")


class SensorServicer(pb_grpc.SensorServiceServicer):
    access = access.TABLE

    @unary
    def RegisterDevice(self, request, context, caller):
        r = ops.register_device(caller, id_=request.id, kind=request.kind, lon=request.lon, lat=request.lat,
                                department_code=request.department_code, alarm_map=dict(request.alarm_map),
                                heartbeat_seconds=request.heartbeat_seconds)
        return pb.RegisterDeviceResponse(device=device_pb(r.device), mqtt_url=settings().sensors_mqtt_url,
                                         mqtt_username=r.mqtt_username, mqtt_password=r.mqtt_password,
                                         alarm_topic=r.topic, heartbeat_topic=domain.topic_of(r.device.id, "heartbeat"))

    @unary
    def ListDevices(self, request, context, caller):
        return pb.ListDevicesResponse(devices=[device_pb(d) for d in ops.list_devices(caller)])

    @unary
    def DeactivateDevice(self, request, context, caller):
        ops.deactivate_device(caller, request.id)
        return pb.DeactivateDeviceResponse()

    @unary
    def ListSuspected(self, request, context, caller):
        return pb.ListSuspectedResponse(cases=[case_pb(c) for c in ops.list_pending(caller, request.limit)])

    @unary
    def Confirm(self, request, context, caller):
        return case_pb(ops.decide(caller, request.case_id, "confirm", request.reason))

    @unary
    def Dismiss(self, request, context, caller):
        return case_pb(ops.decide(caller, request.case_id, "dismiss", request.reason))


def main() -> None:
    registry.start("sensors-grpc")
    setup_logging()
    serve(SERVICE_NAME, pb_grpc.add_SensorServiceServicer_to_server, SensorServicer(), registry.port("sensors"))


if __name__ == "__main__":
    main()
