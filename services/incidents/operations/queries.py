"""Reading incidents, their figures and the category catalogue."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from services.incidents import domain, report_rules, store
from services.incidents.operations.views import (DEFAULT_PAGE, MAX_IDS, MAX_PAGE, Filters, HistoryView,
                                                  IncidentView, view_of)
from shared import auth, units
from shared.auth import Principal
from shared.db import session_scope
from shared.errors import InvalidArgument, NotFound
from shared.ids import parse_uuid


def get(caller: Principal, incident_id: str) -> tuple[IncidentView, list[HistoryView]]:
    iid = parse_uuid(incident_id, "incident id")
    with session_scope() as session:
        row = store.get(session, iid)
        if row is None or (caller.role == auth.PUBLIC and not domain.publicly_submitted(row[0].reporter_id)):
            raise NotFound(f"no incident {incident_id}")
        if caller.role == auth.PUBLIC:
            return view_of(row), []
        domain.may_read(caller, row[0].lineage, row[0].department_code)
        return view_of(row), [HistoryView(h.version, h.action, h.from_status, h.to_status, h.actor_id,
                                        h.actor_role, h.note, h.department_code, h.at)
                            for h in store.history(session, iid)]


def list_incidents(caller: Principal, filters: Filters, page_size: int = 0,
                   page_token: str = "") -> tuple[list[IncidentView], str]:
    if page_size < 0 or page_size > MAX_PAGE:
        raise InvalidArgument(f"page_size must be 0..{MAX_PAGE}")
    for s in filters.statuses:
        if s not in domain.STATUSES:
            raise InvalidArgument(f"unknown status {s!r}")
    if filters.category_code:
        report_rules.check_category_code(filters.category_code)
    if filters.reported_from and filters.reported_to and filters.reported_from >= filters.reported_to:
        raise InvalidArgument("reported_from must be before reported_to")
    if filters.bbox:
        w, s, e, n = filters.bbox
        report_rules.check_point(w, s, 0)
        report_rules.check_point(e, n, 0)
        if w >= e or s >= n:
            raise InvalidArgument("bbox must be min_lon < max_lon and min_lat < max_lat")
    if len(filters.ids) > MAX_IDS:
        raise InvalidArgument(f"{len(filters.ids)} incident ids; at most {MAX_IDS}")
    ids = [parse_uuid(i, "incident id") for i in filters.ids]
    after = domain.decode_cursor(page_token)
    limit = page_size or DEFAULT_PAGE
    with session_scope() as session:
        rows = store.list_incidents(
            session, **_visible_to(session, caller, filters.grid_code), grid_code=filters.grid_code,
            statuses=filters.statuses, category_prefix=filters.category_code,
            reported_from=filters.reported_from, reported_to=filters.reported_to, bbox=filters.bbox,
            ids=ids, after_seq=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    token = domain.encode_cursor(rows[-1][0].seq) if more else ""
    return [view_of(r) for r in rows], token


def _visible_to(session: Session, caller: Principal, grid_code: str | None) -> dict:
    """The store filters that keep a list to what the caller may see; a unit asked for must
    exist and be in the caller's scope. The public sees Open311 submissions only."""
    lineage = None
    if grid_code:
        units.level_of(grid_code)  # a unit code, before it is looked up
        lineage = store.unit_lineage(session, grid_code)
        if lineage is None:
            raise NotFound(f"no unit with code {grid_code}")
    domain.may_list(caller, grid_code, lineage)
    return {"scope": None if caller.role in (auth.SERVICE, auth.DEPARTMENT, auth.PUBLIC) else caller.scope,
            "department": caller.member_id if caller.role == auth.DEPARTMENT else None,
            "reporter_prefix": domain.OPEN311_REPORTER_PREFIX if caller.role == auth.PUBLIC else None}


@dataclass
class SummaryRow:
    key: str
    count: int
    open: int


def summarize(caller: Principal, group_by: str, filters: Filters, time_zone: str = "",
              limit: int = 0) -> tuple[list[SummaryRow], int]:
    """Counts of the incidents the caller may see, grouped (domain.SUMMARY_GROUPINGS), and
    their total. Days with no incident and funnel stages nobody reached are rows of 0."""
    zone = domain.check_summary(group_by, filters.reported_from, filters.reported_to, time_zone, limit)
    if filters.category_code:
        report_rules.check_category_code(filters.category_code)
    with session_scope() as session:
        where = dict(_visible_to(session, caller, filters.grid_code), grid_code=filters.grid_code,
                     statuses=[], category_prefix=filters.category_code,
                     reported_from=filters.reported_from, reported_to=filters.reported_to)
        if group_by == "stage":
            counts = dict.fromkeys(domain.FUNNEL, 0)
            for status, reached, n in store.funnel_facts(session, **where):
                for stage in domain.funnel_stages(status, reached):
                    counts[stage] += n
            return [SummaryRow(k, n, 0) for k, n in counts.items()], counts["reported"]
        rows = [SummaryRow(*r) for r in store.summarize(session, group_by, zone, limit, **where)]
        total = store.count(session, **where) if limit else sum(r.count for r in rows)
    if group_by == "day":
        found = {r.key: r for r in rows}
        rows = [found.get(day, SummaryRow(day, 0, 0))
                for day in domain.days_between(filters.reported_from, filters.reported_to, zone)]
    return rows, total


def check_watch(caller: Principal, grid_code: str) -> None:
    """Watching needs a unit in the caller's scope (departments list their queue instead)."""
    auth.require_role(caller, auth.DISPATCHER, auth.OFFICER, auth.ADMIN, auth.SERVICE)
    if not grid_code:
        raise InvalidArgument("grid_code is required: the subtree to watch")
    units.level_of(grid_code)
    with session_scope() as session:
        lineage = store.unit_lineage(session, grid_code)
    if lineage is None:
        raise NotFound(f"no unit with code {grid_code}")
    auth.require_scope(caller, lineage, f"grid {grid_code}")


def list_categories(caller: Principal, include_inactive: bool = False) -> list[store.Category]:
    with session_scope() as session:
        return store.list_categories(session, include_inactive)


def load_categories(caller: Principal, doc) -> tuple[int, int]:
    auth.require_role(caller, auth.ADMIN, auth.SERVICE)
    categories = domain.parse_catalogue(doc)
    with session_scope() as session:
        return store.load_categories(session, categories)


def health() -> dict:
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    return {"status": "SERVING"}
