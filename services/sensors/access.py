"""Who may call the sensors service's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, OWN_DISTRICT, OWN_GRIDS, Table, allow

MANAGE = allow("register or deactivate a device", admin=OWN_DISTRICT, service=CITYWIDE)
LIST_DEVICES = allow("list the devices in one's scope", admin=ANY, dispatcher=ANY, service=ANY)
REVIEW = allow("list suspected cases in one's scope", officer=ANY, dispatcher=ANY, admin=ANY, service=ANY)
DECIDE = allow("confirm or dismiss a suspected case", officer=OWN_GRIDS, dispatcher=OWN_GRIDS, admin=OWN_GRIDS,
               service=CITYWIDE)

TABLE = Table(
    "sensors",
    grpc={"RegisterDevice": MANAGE, "ListDevices": LIST_DEVICES, "DeactivateDevice": MANAGE,
          "ListSuspected": REVIEW, "Confirm": DECIDE, "Dismiss": DECIDE},
    rpc={"health": allow("check health", public=ANY)},
)
