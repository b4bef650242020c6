"""Who may call the dispatch service's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, CITYWIDE, OWN_DISTRICT, OWN_GRIDS, OWN_RECORD, Table, allow

# Set-up: an admin configures the departments and rules of their district; a rule or a
# department for anywhere (no grid) needs an admin of the whole city.
CONFIGURE = allow("set up departments and routing rules", admin=OWN_DISTRICT, service=CITYWIDE)
READ_SETUP = allow("read departments and rules", admin=ANY, dispatcher=ANY, service=ANY, department=ANY)
READ_TASK = allow("read a task", dispatcher=OWN_GRIDS, admin=OWN_GRIDS, department=OWN_RECORD, service=CITYWIDE)
QUEUE = allow("list tasks (a department: its own)", dispatcher=OWN_GRIDS, admin=OWN_GRIDS, department=OWN_RECORD,
              service=CITYWIDE)
DISPATCH = allow("assign, reroute, reject or merge a task; add or release assisting departments",
                 dispatcher=OWN_GRIDS, admin=OWN_GRIDS, service=CITYWIDE)
HANDLE = allow("acknowledge, report progress on or resolve the department's task", department=OWN_RECORD,
               service=CITYWIDE)
REQUEST_PROCEDURE = allow("ask for an extension or a return of the department's task", department=OWN_RECORD)
DECIDE_PROCEDURE = allow("decide a department's request", dispatcher=OWN_GRIDS, admin=OWN_GRIDS)
# Figures for the whole city need a citywide caller; otherwise a unit in the caller's scope.
EVALUATION = allow("read evaluation figures", dispatcher=OWN_GRIDS, admin=OWN_GRIDS, department=OWN_RECORD,
                   service=CITYWIDE)
HEALTH = allow("check health", public=ANY)

TABLE = Table(
    "dispatch",
    grpc={"UpsertDepartment": CONFIGURE, "ListDepartments": READ_SETUP, "CreateRule": CONFIGURE,
          "DeactivateRule": CONFIGURE, "ListRules": READ_SETUP, "GetTask": READ_TASK, "ListQueue": QUEUE,
          "Assign": DISPATCH, "Reroute": DISPATCH, "Reject": DISPATCH, "Merge": DISPATCH, "AddAssist": DISPATCH,
          "ReleaseAssist": DISPATCH, "Acknowledge": HANDLE, "ReportProgress": HANDLE, "Resolve": HANDLE,
          "RequestProcedure": REQUEST_PROCEDURE, "DecideProcedure": DECIDE_PROCEDURE, "GetEvaluation": EVALUATION},
    rpc={"health": HEALTH, "get_task": READ_TASK, "request_procedure": REQUEST_PROCEDURE,
         "decide_procedure": DECIDE_PROCEDURE},
)
