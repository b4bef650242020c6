"""Who may call the emergencies service's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, OWN_GRIDS, OWN_RECORD, Table, allow

WATCH = allow("hear of the alerts sent to oneself", officer=OWN_RECORD)
ANSWER = allow("accept or decline an alert sent to oneself", officer=OWN_RECORD)
# An alert's recipients read it (own record); dispatchers and admins whose scope covers its incident.
READ = allow("read an alert", officer=OWN_RECORD, dispatcher=OWN_GRIDS, admin=OWN_GRIDS, service=CITYWIDE)
SUGGEST = allow("suggest officers for an incident", dispatcher=OWN_GRIDS, admin=OWN_GRIDS, service=CITYWIDE)

TABLE = Table(
    "emergencies",
    grpc={"WatchAlerts": WATCH, "Accept": ANSWER, "Decline": ANSWER, "GetAlert": READ, "Suggest": SUGGEST},
    rpc={"health": allow("check health", public=ANY)},
)
