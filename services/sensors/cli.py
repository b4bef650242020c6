"""`gridbus sensors ...`: register devices and review what they raised (operators, on the
database and the broker's management API)."""
from __future__ import annotations

import json

from shared.cli import operator_principal


def register(sub) -> None:
    sn = sub.add_parser("sensors", help="devices sending alarms over MQTT, and the suspected cases they raise")
    sns = sn.add_subparsers(dest="action", required=True)
    add = sns.add_parser("add", help="register a device; prints its MQTT user and password (shown once)")
    add.add_argument("id")
    add.add_argument("kind")
    add.add_argument("lon", type=float)
    add.add_argument("lat", type=float)
    add.add_argument("department")
    add.add_argument("alarm_map", help='JSON: {"OPEN": "0601", "SILENT": "06"}')
    add.add_argument("--heartbeat-seconds", type=int, default=0)
    sns.add_parser("list", help="registered devices")
    off = sns.add_parser("deactivate", help="stop taking a device's alarms; its broker user is deleted")
    off.add_argument("id")
    sns.add_parser("pending", help="suspected cases waiting for a person")
    for verb in ("confirm", "dismiss"):
        d = sns.add_parser(verb, help=f"{verb} a suspected case")
        d.add_argument("case_id")
        d.add_argument("--reason", default="")
    sn.set_defaults(func=sensors)


def sensors(args) -> None:
    from services.sensors import operations as ops
    from shared.config import settings

    me = operator_principal()
    if args.action == "add":
        r = ops.register_device(me, id_=args.id, kind=args.kind, lon=args.lon, lat=args.lat,
                                department_code=args.department, alarm_map=json.loads(args.alarm_map),
                                heartbeat_seconds=args.heartbeat_seconds)
        print(f"{r.device.id} in grid {r.device.grid_code}: connect to {settings().sensors_mqtt_url} as "
              f"{r.mqtt_username} / {r.mqtt_password} (shown once); publish alarms to {r.topic}")
    elif args.action == "list":
        for d in ops.list_devices(me):
            print(f"{d.id:<24} {d.kind:<16} {d.grid_code:<14} {'active' if d.active else 'off':<7} "
                  f"last seen {d.last_seen_at or '-'}")
    elif args.action == "deactivate":
        ops.deactivate_device(me, args.id)
        print(f"{args.id} deactivated")
    elif args.action == "pending":
        for c in ops.list_pending(me, 500):
            print(f"{c.id} {c.device_id:<20} {c.code:<10} {c.category_code:<6} x{c.repeats + 1:<5} {c.first_at:%Y-%m-%d %H:%M}")
    else:
        c = ops.decide(me, args.case_id, args.action, args.reason)
        print(f"{c.id}: {c.status}")
