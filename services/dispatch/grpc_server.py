"""The dispatch service's gRPC server: maps protos to operations and errors to status codes.

Run: python -m services.dispatch.grpc_server (port from GRIDBUS_DISPATCH_GRPC_PORT)."""
from __future__ import annotations

from gridbus.dispatch.v1 import dispatch_pb2 as pb
from gridbus.dispatch.v1 import dispatch_pb2_grpc as pb_grpc
from services import registry
from services.dispatch import access, domain
from services.dispatch import operations as ops
from services.dispatch.operations.changes import time_limits
from shared.errors import InvalidArgument
from shared.grpc_support import serve, time_field, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.dispatch.v1.DispatchService"


def task_pb(t: ops.TaskView) -> pb.Task:
    return pb.Task(
        id=t.id, incident_id=t.incident_id, status=t.status, department_code=t.department_code or "",
        rule_id=t.rule_id or 0, category=t.category, priority=t.priority, grid_code=t.grid_code, lineage=t.lineage,
        dispatched_at=timestamp(t.dispatched_at), ack_due_at=timestamp(t.ack_due_at),
        acknowledged_at=timestamp(t.acknowledged_at), resolve_due_at=timestamp(t.resolve_due_at),
        resolved_at=timestamp(t.resolved_at), closed_at=timestamp(t.closed_at),
        reopened=t.reopened, escalation_level=t.escalation_level, escalated_to=t.escalated_to or "",
        version=t.version, next_due_at=timestamp(t.next_due_at),
        history=[pb.TaskEvent(action=h.action, from_status=h.from_status or "", to_status=h.to_status,
                              department_code=h.department_code or "", actor_id=h.actor_id, actor_role=h.actor_role,
                              note=h.note or "", at=timestamp(h.at)) for h in t.history],
        pending=t.pending or "", pending_minutes=t.pending_minutes or 0, clock_paused=bool(t.holds),
        holds=t.holds, paused_at=timestamp(t.paused_at), paused_minutes=t.paused_minutes,
        extended_minutes=t.extended_minutes, returned=t.returned, supervised=t.supervised,
        lead_task_id=t.lead_task_id or "", assists=[task_pb(a) for a in t.assists])


def rule_pb(r: domain.Rule) -> pb.Rule:
    return pb.Rule(id=r.id, category_prefix=r.category_prefix, grid_code=r.grid_code,
                   department_code=r.department_code, priority=r.priority, ack_minutes=r.ack_minutes,
                   resolve_minutes=r.resolve_minutes, working_time=r.working_time)


def department_pb(d) -> pb.Department:
    return pb.Department(code=d.code, name=d.name, serves=list(d.serves), contact=d.contact, active=d.active)


class DispatchServicer(pb_grpc.DispatchServiceServicer):
    access = access.TABLE

    @unary
    def UpsertDepartment(self, request, context, caller):
        d = request.department
        ops.upsert_department(caller, d.code, d.name, list(d.serves), d.contact)
        return department_pb(next(x for x in ops.list_departments(caller) if x.code == d.code))

    @unary
    def ListDepartments(self, request, context, caller):
        return pb.ListDepartmentsResponse(departments=[department_pb(d) for d in ops.list_departments(caller)])

    @unary
    def CreateRule(self, request, context, caller):
        r = request.rule
        return rule_pb(ops.create_rule(caller, category_prefix=r.category_prefix, grid_code=r.grid_code,
                                       department_code=r.department_code, priority=r.priority,
                                       ack_minutes=r.ack_minutes, resolve_minutes=r.resolve_minutes,
                                       working_time=r.working_time))

    @unary
    def DeactivateRule(self, request, context, caller):
        ops.deactivate_rule(caller, request.id)
        return pb.DeactivateRuleResponse()

    @unary
    def ListRules(self, request, context, caller):
        return pb.ListRulesResponse(rules=[rule_pb(r) for r in ops.list_rules(caller)])

    @unary
    def GetTask(self, request, context, caller):
        if request.incident_id:
            return task_pb(ops.task_of_incident(caller, request.incident_id))
        return task_pb(ops.get_task(caller, request.task_id))

    @unary
    def ListQueue(self, request, context, caller):
        tasks = ops.list_queue(caller, unit_code=request.unit_code, statuses=list(request.statuses),
                               department_code=request.department_code, escalated_only=request.escalated_only,
                               limit=request.limit or 100)
        return pb.ListQueueResponse(tasks=[task_pb(t) for t in tasks])

    @unary
    def Assign(self, request, context, caller):
        return task_pb(ops.assign(caller, request.task_id, request.department_code, request.expected_version))

    @unary
    def Reroute(self, request, context, caller):
        return task_pb(ops.reroute(caller, request.task_id, request.department_code, request.reason,
                                   request.expected_version))

    @unary
    def Reject(self, request, context, caller):
        return task_pb(ops.reject(caller, request.task_id, request.reason, request.expected_version))

    @unary
    def Merge(self, request, context, caller):
        return task_pb(ops.merge(caller, request.task_id, request.into_incident_id, request.expected_version))

    @unary
    def Acknowledge(self, request, context, caller):
        return task_pb(ops.acknowledge(caller, request.task_id, request.expected_version))

    @unary
    def ReportProgress(self, request, context, caller):
        return task_pb(ops.report_progress(caller, request.task_id, request.note))

    @unary
    def Resolve(self, request, context, caller):
        return task_pb(ops.resolve(caller, request.task_id, request.resolution, request.expected_version))

    @unary
    def RequestProcedure(self, request, context, caller):
        return task_pb(ops.request_procedure(caller, request.task_id, request.procedure, request.reason,
                                             request.minutes, request.expected_version))

    @unary
    def DecideProcedure(self, request, context, caller):
        return task_pb(ops.decide_procedure(caller, request.task_id, request.procedure, request.approve,
                                            request.reason, request.granted_minutes, request.expected_version))

    @unary
    def AddAssist(self, request, context, caller):
        return task_pb(ops.add_assist(caller, request.task_id, request.department_code, request.reason,
                                      request.expected_version))

    @unary
    def ReleaseAssist(self, request, context, caller):
        return task_pb(ops.release_assist(caller, request.task_id, request.reason, request.expected_version))

    @unary
    def GetEvaluation(self, request, context, caller):
        if not (request.HasField("from") and request.HasField("to")):
            raise InvalidArgument("from and to are required")
        rows = ops.evaluation(caller, time_field(request, "from"), time_field(request, "to"),
                              group_by=request.group_by or "department",
                              unit_code=request.unit_code, department_code=request.department_code)
        return pb.EvaluationResponse(rows=[pb.EvaluationRow(key=k, **v) for k, v in rows], formula=ops.formula())


def main() -> None:
    registry.start("dispatch-grpc")
    setup_logging()
    ops.formula()  # the operator's evaluation weights and time limits are checked now: a bad file stops the server
    time_limits()
    serve(SERVICE_NAME, pb_grpc.add_DispatchServiceServicer_to_server, DispatchServicer(),
          registry.port("dispatch"))


if __name__ == "__main__":
    main()
