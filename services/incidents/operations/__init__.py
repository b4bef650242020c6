"""What the incidents service does, called by both entry points (gRPC and nameko), by concern:

- views: what the operations return, and every incident event's payload
- intake: taking reports in (idempotent on the phone's report id)
- pinning: a point's leaf grid, from this process's in-memory index of grid's leaf grids
- lifecycle: one function takes every action of the action table (domain.ACTIONS)
- queries: reading incidents, figures and the category catalogue
- reactions: applying dispatch's decisions, once per event; confirmed sensor alarms as reports

Each operation checks who is calling, validates, changes the store, appends to the audit trail
and records its event, all in one transaction: a failure anywhere writes nothing.
This package's names are the operations' interface; the modules are how they are kept."""
from services.incidents.operations.intake import report
from services.incidents.operations.lifecycle import transition
from services.incidents.operations.pinning import leaf_grids
from services.incidents.operations.queries import (check_watch, get, health, list_categories, list_incidents,
                                                   load_categories, summarize)
from services.incidents.operations.reactions import apply_dispatch_event, take_sensor_case
from services.incidents.operations.views import MAX_PAGE, Filters, IncidentView, ReportResult

__all__ = ["Filters", "IncidentView", "MAX_PAGE", "ReportResult", "apply_dispatch_event", "check_watch", "get",
           "health", "leaf_grids", "list_categories", "list_incidents", "load_categories", "report", "summarize",
           "take_sensor_case", "transition"]
