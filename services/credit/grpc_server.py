"""The credit registry's gRPC server: maps protos to operations and errors to status codes.

Run: python -m services.credit.grpc_server (port from GRIDBUS_CREDIT_GRPC_PORT)."""
from __future__ import annotations

from gridbus.credit.v1 import credit_pb2 as pb
from gridbus.credit.v1 import credit_pb2_grpc as pb_grpc
from services import registry
from services.credit import access, chain, checkpoint, disclosure, intake, repair
from services.credit import operations as ops
from services.credit.sharing import FIELDS
from shared.errors import InvalidArgument
from shared.grpc_support import serve, time_field, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.credit.v1.CreditService"
MAX_STREAM_ITEMS = 10_000


def subject_pb(s: ops.SubjectView) -> pb.Subject:
    return pb.Subject(id=s.id, type=s.type, code=s.code, name=s.name, registered_grid=s.registered_grid or "",
                      name_verified=s.name_verified, created_at=timestamp(s.created_at))


def _day(value) -> str:
    return value.isoformat() if value else ""


def record_pb(r: ops.RecordView) -> pb.Record:
    return pb.Record(seq=r.seq, id=r.id, subject_id=r.subject_id, kind=r.kind, category=r.category,
                     severity=r.severity, source=r.source, incident_id=r.incident_id or "",
                     valid_from=timestamp(r.valid_from), valid_until=timestamp(r.valid_until), confirmed_by=r.confirmed_by,
                     supersedes=r.supersedes or "", reason=r.reason or "", created_at=timestamp(r.created_at), hash=r.hash,
                     authority=r.authority or "", decision_number=r.decision_number or "",
                     decision_date=_day(r.decision_date), legal_basis=r.legal_basis or "", summary=r.summary or "",
                     list=r.list_code or "", published_from=_day(r.published_from),
                     published_until=_day(r.published_until))


def external_fields(message: pb.ExternalRecord) -> dict:
    """The batch schema's fields the message sets (an empty string or a 0 severity: not given)."""
    values = {name: getattr(message, name) for name in FIELDS}
    return {k: v for k, v in values.items() if v not in ("", 0)}


def repair_pb(a: repair.RepairView) -> pb.RepairApplication:
    return pb.RepairApplication(id=a.id, record_id=a.record_id, subject_id=a.subject_id, applicant=a.applicant,
                                evidence=a.evidence, corrected_on=_day(a.corrected_on), applied_on=_day(a.applied_on),
                                received_by=a.received_by, at=timestamp(a.at), status=a.status,
                                decision_reason=a.decision_reason or "", decided_by=a.decided_by or "",
                                decided_at=timestamp(a.decided_at), repair_record_id=a.repair_record_id or "")


def restriction_pb(m: disclosure.ListMembership) -> pb.Restriction:
    return pb.Restriction(list=m.code, list_name=m.name, authority=m.authority or "",
                          authority_name=m.authority_name or "", basis=m.basis,
                          decision_number=m.decision_number or "", since=_day(m.since), until=_day(m.until))


def standing_pb(s: ops.StandingView) -> pb.Standing:
    return pb.Standing(subject=subject_pb(s.subject), as_of=timestamp(s.as_of), score=s.score, lists=s.lists,
                       records_in_force=s.records_in_force)


class CreditServicer(pb_grpc.CreditServiceServicer):
    access = access.TABLE

    @unary
    def RegisterSubject(self, request, context, caller):
        return subject_pb(ops.register(caller, type_=request.type, code=request.code, name=request.name,
                                       registered_grid=request.registered_grid))

    @unary
    def GetSubject(self, request, context, caller):
        return subject_pb(ops.get_subject(caller, subject_id=request.subject_id, uscc=request.uscc,
                                          id_number=request.id_number, purpose=request.purpose))

    @unary
    def ListRecords(self, request, context, caller):
        records, token = ops.list_records(caller, request.subject_id, kinds=list(request.kinds),
                                          page_size=request.page_size or 50, page_token=request.page_token,
                                          purpose=request.purpose)
        return pb.ListRecordsResponse(records=[record_pb(r) for r in records], next_page_token=token)

    @unary
    def AddRecord(self, request, context, caller):
        return record_pb(ops.add_record(caller, subject_id=request.subject_id, kind=request.kind,
                                        category=request.category, severity=request.severity,
                                        incident_id=request.incident_id, reason=request.reason,
                                        supersedes=request.supersedes))

    @unary
    def GetStanding(self, request, context, caller):
        return standing_pb(ops.get_standing(caller, request.subject_id, time_field(request, "as_of"), request.purpose))

    @unary
    def ListMembers(self, request, context, caller):
        return pb.ListMembersResponse(members=[standing_pb(s) for s in
                                               ops.list_members(caller, request.list, time_field(request, "as_of"))])

    @unary
    def VerifyChain(self, request, context, caller):
        kept = None
        if request.HasField("checkpoint"):
            c = request.checkpoint
            kept = checkpoint.from_payload({"head_record_id": c.head_record_id, "head_hash": c.head_hash,
                                            "record_count": c.record_count, "at": c.at, "key_id": c.key_id,
                                            "signature": c.signature})
        verdict = chain.verify(caller, kept)
        against = verdict.checkpoint
        reply = pb.VerifyChainResponse(intact=verdict.broken is None, records_checked=verdict.checked, checkpoint=(
            pb.ChainCheckpoint(head_record_id=against.head_record_id or "", head_hash=against.head_hash,
                               record_count=against.record_count, at=against.at, key_id=against.key_id,
                               signature=against.signature) if against else None))
        if verdict.broken is not None:
            reply.first_bad_seq, reply.first_bad_record_id = verdict.broken.seq, verdict.broken.record_id
            reply.reason = verdict.broken.reason
        return reply

    @unary
    def ListUnmatched(self, request, context, caller):
        return pb.ListUnmatchedResponse(items=[
            pb.Unmatched(event_id=str(u.event_id), incident_id=str(u.incident_id or ""), subject_type=u.subject_type or "",
                         subject_ref=u.subject_ref or "", reason=u.reason, at=timestamp(u.at))
            for u in ops.list_unmatched(caller, request.limit or 100)])

    @unary
    def AddExternalRecord(self, request, context, caller):
        record, created = intake.add_external_record(caller, external_fields(request))
        return pb.AddExternalRecordResponse(record=record_pb(record), created=created)

    @unary
    def ImportRecords(self, request_iterator, context, caller):
        items = []
        for index, message in enumerate(request_iterator, start=1):
            if index > MAX_STREAM_ITEMS:
                raise InvalidArgument(f"at most {MAX_STREAM_ITEMS} records a stream; send the rest in another")
            items.append((index, external_fields(message)))
        report = intake.import_records(caller, items)
        return pb.ImportRecordsResponse(
            results=[pb.ImportItemResult(index=o.line, outcome=o.outcome, record_id=o.record_id or "",
                                         message=o.message) for o in report.outcomes],
            inserted=report.count(intake.INSERTED), duplicates=report.count(intake.DUPLICATE),
            refused=report.count(intake.REFUSED))

    @unary
    def ApplyRepair(self, request, context, caller):
        return repair_pb(repair.apply_repair(caller, record_id=request.record_id, applicant=request.applicant,
                                             evidence=request.evidence, corrected_on=request.corrected_on))

    @unary
    def DecideRepair(self, request, context, caller):
        return repair_pb(repair.decide_repair(caller, application_id=request.application_id, approve=request.approve,
                                              reason=request.reason))

    @unary
    def ListRepairs(self, request, context, caller):
        return pb.ListRepairsResponse(applications=[
            repair_pb(a) for a in repair.list_repairs(caller, subject_id=request.subject_id,
                                                      record_id=request.record_id)])

    @unary
    def CheckRestriction(self, request, context, caller):
        answer = disclosure.check_restriction(caller, action=request.action, purpose=request.purpose,
                                              uscc=request.uscc, id_number=request.id_number)
        return pb.CheckRestrictionResponse(restricted=answer.restricted, as_of=timestamp(answer.as_of),
                                           subject_known=answer.subject_known,
                                           restrictions=[restriction_pb(m) for m in answer.restrictions])


def main() -> None:
    registry.start("credit-grpc")
    setup_logging()
    serve(SERVICE_NAME, pb_grpc.add_CreditServiceServicer_to_server, CreditServicer(), registry.port("credit"))


if __name__ == "__main__":
    main()
