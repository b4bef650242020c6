"""Moving an incident through its lifecycle: one function takes every action (domain.ACTIONS)."""
from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy.orm import Session

from services.incidents import criteria, domain, store
from services.incidents.operations.views import SCHEMA, IncidentView, event_data, view_of
from shared import auth
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from shared.ids import parse_uuid
from shared.outbox import record_event
from shared.timefmt import utcnow


def transition(caller: Principal, incident_id: str, expected_version: int, req: domain.Request, *,
               actor: tuple[str, str] | None = None) -> IncidentView:
    """Applies one lifecycle action if the incident is still at expected_version.

    People must name the version they saw (0 is refused); gridbus services acting on events
    may pass 0 for "whatever is current". `actor` records who acted when a service relays a
    department's or dispatcher's action."""
    iid = parse_uuid(incident_id, "incident id")
    if expected_version < 0 or (expected_version == 0 and caller.role != auth.SERVICE):
        raise InvalidArgument("expected_version is required: the version you last read")
    with session_scope() as session:
        return transition_in(session, caller, iid, expected_version, req, actor)


def transition_in(session: Session, caller: Principal, iid: uuid.UUID, expected_version: int,
                   req: domain.Request, actor: tuple[str, str] | None, row=None) -> IncidentView:
    """`row`: the incident as the caller has just read it in this session, if it has.

    Every typed error (NotFound, InvalidArgument, FailedPrecondition) is raised before the first
    write: apply_dispatch_event commits its inbox row after one without a savepoint."""
    row = row if row is not None else store.get(session, iid)
    if row is None:
        raise NotFound(f"no incident {iid}")
    current: store.Incident = row[0]
    from_status, from_version = current.status, current.version
    facts = domain.Facts(from_status, tuple(current.lineage), current.reporter_id, current.department_code,
                         current.pending, current.pending_by, bool(current.supervised),
                         tuple(current.assisting or ()))
    if expected_version and from_version != expected_version:
        # Scope first: a stranger learns nothing from the version.
        domain.may_read(caller, facts.lineage, facts.department_code)
        raise Aborted(f"incident {iid} changed: it is at version {from_version} "
                      f"({from_status}), not {expected_version}; re-read and retry")
    outcome = domain.plan_transition(caller, facts, req, utcnow())
    action = domain.ACTIONS[req.action]
    if caller.role != auth.SERVICE and (action.department in (domain.SETS, domain.CHANGES)
                                        or action.assist == domain.ADDS):
        _check_department(session, req.department_code, facts.lineage)
    if action.name in ("verify", "close"):
        _check_criteria(session, caller, current, action.name, req, actor)
    values = {"status": outcome.status, "department_code": outcome.department_code,
              "pending": outcome.pending, "pending_by": outcome.pending_by, "assisting": list(outcome.assisting)}
    if action.takes == "review_at":
        values["review_at"] = req.review_at
    if outcome.status != domain.PARKED and current.review_at and not outcome.pending:
        values["review_at"] = None  # the review date goes with the park (or its refused request)
    if action.supervises:
        values.update(supervised=True, priority=1)
    if action.takes == "violation_confirmed":
        values["violation_confirmed"] = req.violation_confirmed
    if action.takes == "duplicate_of":
        target = parse_uuid(req.duplicate_of, "incident id")
        if target == iid:
            raise InvalidArgument("an incident cannot duplicate itself")
        target_row = store.get(session, target)
        if target_row is None:
            raise NotFound(f"no incident {req.duplicate_of} to merge into")
        # Merging closes this case in favour of the target: the caller must see that one too.
        domain.may_read(caller, tuple(target_row[0].lineage), target_row[0].department_code)
        values["duplicate_of"] = target_row[0].duplicate_of or target
    written = store.apply_change(session, iid, from_version, values)
    if written is None:
        raise Aborted(f"incident {iid} changed while you acted on it; re-read and retry")
    new_version = written.version
    actor_id, actor_role = actor or (caller.member_id, caller.role)
    note = (req.note or "").strip() or None
    store.append_history(session, incident_id=iid, version=new_version, action=req.action,
                         from_status=from_status, to_status=outcome.status, actor_id=actor_id,
                         actor_role=actor_role, note=note, department_code=outcome.department_code)
    # The row as read plus what the update wrote: no second read.
    view = replace(view_of(row), version=new_version, updated_at=written.updated_at,
                   **{k: v for k, v in values.items() if k not in ("duplicate_of", "pending_by")})
    if "duplicate_of" in values:
        view.duplicate_of = str(values["duplicate_of"])
    record_event(session, SCHEMA, action.event_type, f"incidents/{iid}",
                 event_data(view, previous_status=from_status, actor_id=actor_id,
                            actor_role=actor_role, note=note, at=view.updated_at),
                 subject_sequence=new_version)
    return view


def _check_criteria(session: Session, caller: Principal, current: store.Incident, action: str,
                    req: domain.Request, actor: tuple[str, str] | None) -> None:
    """The category's verification and closing criteria (services/incidents/criteria.py), from
    the audit trail: who resolved the case (the last resolution), and whether it was handled."""
    category = store.category(session, current.category_code)
    rules = category.criteria if category else criteria.Criteria()
    resolutions = [h for h in store.history(session, current.id) if h.action == "resolve"]
    last = resolutions[-1] if resolutions else None
    if action == "verify":
        criteria.check_verifier((actor or (caller.member_id,))[0], rules, resolver=last.actor_id if last else None,
                                reporter=current.reporter_id)
    else:
        criteria.check_closing(current.category_code, rules, has_resolution=bool(last and last.note),
                               note=req.note, was_case=current.status == domain.VERIFIED)


def _check_department(session: Session, code: str | None, lineage) -> None:
    """A person sends a case only to a known, active department that serves its grid (dispatch's
    set-up); gridbus services relay dispatch's decisions, which dispatch checked."""
    found = store.department(session, code or "")
    if found is None or not found.active:
        raise NotFound(f"no department {code}")
    if set(found.serves).isdisjoint(lineage):
        raise FailedPrecondition(f"department {code} does not work in grid {lineage[-1]}")
