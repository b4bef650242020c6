"""Who may call the incidents service's entry points (shared/access.py). Which role may take
which lifecycle action is the finer table of services/incidents/domain.py (ACTIONS)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, OWN_GRIDS, OWN_RECORD, Table, allow

REPORT = allow("report an incident where one patrols", officer=OWN_GRIDS, service=CITYWIDE)
READ = allow("read or list incidents (a department: those dispatched to it)", officer=OWN_GRIDS,
             dispatcher=OWN_GRIDS, admin=OWN_GRIDS, department=OWN_RECORD, service=CITYWIDE)
TRANSITION = allow("take a lifecycle action (the actions table says which role takes which)", officer=OWN_GRIDS,
                   dispatcher=OWN_GRIDS, admin=OWN_GRIDS, department=OWN_RECORD, service=CITYWIDE)
WATCH = allow("watch a subtree's changes", officer=OWN_GRIDS, dispatcher=OWN_GRIDS, admin=OWN_GRIDS,
              service=CITYWIDE)
CATEGORIES = allow("read the category catalogue", officer=ANY, dispatcher=ANY, admin=ANY, department=ANY, service=ANY)
HEALTH = allow("check health", public=ANY)

TABLE = Table(
    "incidents",
    grpc={"Report": REPORT, "ReportBatch": REPORT, "GetIncident": READ, "ListIncidents": READ,
          "Transition": TRANSITION, "Watch": WATCH, "ListCategories": CATEGORIES, "Summarize": READ},
    rpc={"health": HEALTH, "get_incident": READ, "transition": TRANSITION},
)
