"""What the dispatch service does, called by both entry points (gRPC and nameko), by concern:

- rules: departments and routing rules (the operator's set-up)
- reactions: a reported incident gets its task; the task follows its incident
- actions: what dispatchers and departments do to tasks
- queries: reading tasks and queues
- deadlines: missed deadlines escalate
- evaluation: figures per department or unit
- changes: how a task changes (one function: lock, change, record, emit), and its deadlines
- procedures: the task's side procedures (extension, return): the department asks, a dispatcher decides
- case_procedures: the task following its incident's (void, park, supervise)
- clock: the deadline clock's pauses and resumes
- assists: lead and assisting departments (主办/协办)

This package's names are the operations' interface; the modules are how they are kept."""
from services.dispatch.operations.actions import (acknowledge, assign, merge, reject, report_progress, reroute,
                                                  resolve)
from services.dispatch.operations.assists import add_assist, release_assist
from services.dispatch.operations.changes import TaskView
from services.dispatch.operations.deadlines import fire_due_deadlines
from services.dispatch.operations.evaluation import evaluation
from services.dispatch.operations.procedures import decide as decide_procedure
from services.dispatch.operations.procedures import request as request_procedure
from services.dispatch.operations.queries import get_task, health, list_queue, task_of_incident
from services.dispatch.operations.reactions import on_incident_changed, on_incident_reported
from services.dispatch.operations.rules import (create_rule, deactivate_rule, list_departments, list_rules,
                                                load_config, upsert_department)

__all__ = ["TaskView", "acknowledge", "add_assist", "release_assist", "assign", "create_rule", "deactivate_rule", "decide_procedure",
           "evaluation", "fire_due_deadlines", "get_task", "health", "list_departments", "list_queue",
           "list_rules", "load_config", "merge", "on_incident_changed", "on_incident_reported", "reject",
           "report_progress", "request_procedure", "reroute", "resolve", "task_of_incident", "upsert_department"]
