"""Incidents storage: SQLAlchemy models and the queries the operations need."""
from __future__ import annotations

import math
import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (BigInteger, Boolean, DateTime, Float, ForeignKey, Integer, SmallInteger, Text,
                        String, and_, func, literal, select, text, true, update)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID, insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.incidents import criteria as criteria_rules
from services.incidents import domain

SCHEMA = "incidents"
_METRES_PER_DEGREE = 111_320.0


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "categories"
    __table_args__ = {"schema": SCHEMA}

    code: Mapped[str] = mapped_column(String, primary_key=True)
    name: Mapped[str]
    parent_code: Mapped[str | None]
    priority: Mapped[int] = mapped_column(SmallInteger)
    deadline_hours: Mapped[int]
    active: Mapped[bool] = mapped_column(Boolean)
    file_requires: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    close_requires: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    independent_verification: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    @property
    def criteria(self) -> criteria_rules.Criteria:
        return criteria_rules.Criteria(tuple(self.file_requires or ()), tuple(self.close_requires or ()),
                                       bool(self.independent_verification))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, server_default=text("nextval('incidents.incidents_seq_seq')"))
    report_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    content_hash: Mapped[str]
    reporter_id: Mapped[str]
    reporter_role: Mapped[str]
    category_code: Mapped[str] = mapped_column(ForeignKey(f"{SCHEMA}.categories.code"))
    title: Mapped[str]
    description: Mapped[str]
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    accuracy_m: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    grid_code: Mapped[str]
    lineage: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str]
    version: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(SmallInteger)
    department_code: Mapped[str | None]
    duplicate_of: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    subject_type: Mapped[str | None]
    subject_ref: Mapped[str | None]
    attachments: Mapped[list] = mapped_column(JSONB)
    violation_confirmed: Mapped[bool | None]
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())
    # The location as the phone sent it, in its datum (NULL on reports from before datums: WGS 84).
    location_sent_lon: Mapped[float | None] = mapped_column(Float)
    location_sent_lat: Mapped[float | None] = mapped_column(Float)
    location_sent_datum: Mapped[str | None] = mapped_column(Text)
    pending: Mapped[str | None]       # the side procedure whose request waits for its decision
    pending_by: Mapped[str | None]
    review_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    supervised: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    assisting: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))


class History(Base):
    __tablename__ = "history"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    version: Mapped[int]
    action: Mapped[str]
    from_status: Mapped[str | None]
    to_status: Mapped[str]
    actor_id: Mapped[str]
    actor_role: Mapped[str]
    note: Mapped[str | None]
    department_code: Mapped[str | None]
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.clock_timestamp())


# Columns read for an incident (the point as lon/lat, not as a geometry object).
LON = func.ST_X(Incident.location).label("lon")
LAT = func.ST_Y(Incident.location).label("lat")


# --- categories ----------------------------------------------------------------------------

def load_categories(session: Session, categories: list[domain.Category]) -> tuple[int, int]:
    """Upserts the catalogue; codes missing from it are deactivated. Returns (active, deactivated)."""
    for c in categories:
        rules = {"file_requires": list(c.criteria.file_requires), "close_requires": list(c.criteria.close_requires),
                 "independent_verification": c.criteria.independent_verification}
        session.execute(insert(Category).values(
            code=c.code, name=c.name, parent_code=c.parent_code, priority=c.priority,
            deadline_hours=c.deadline_hours, active=True, updated_at=func.now(), **rules,
        ).on_conflict_do_update(index_elements=[Category.code], set_={
            "name": c.name, "parent_code": c.parent_code, "priority": c.priority,
            "deadline_hours": c.deadline_hours, "active": True, "updated_at": func.now(), **rules}))
    gone = session.execute(update(Category).where(Category.code.not_in([c.code for c in categories]),
                                                  Category.active).values(active=False, updated_at=func.now()))
    return len(categories), gone.rowcount


def category(session: Session, code: str) -> Category | None:
    """Active or not: an old incident keeps its category's criteria."""
    return session.get(Category, code)


def active_category(session: Session, code: str) -> Category | None:
    return session.scalars(select(Category).where(Category.code == code, Category.active)).first()


def list_categories(session: Session, include_inactive: bool) -> list[Category]:
    q = select(Category).order_by(Category.code)
    if not include_inactive:
        q = q.where(Category.active)
    return list(session.scalars(q))


# --- pinning -------------------------------------------------------------------------------

# Grid's leaf grids, read for this process's in-memory index (operations/pinning.py). A trigger on
# grid.units NOTIFYs this channel when a committed transaction changed a leaf grid (grid migration
# 0004; services.grid.store.LEAF_GRIDS_CHANNEL, which tests/incidents/test_pinning.py holds it to).
LEAF_GRIDS_CHANNEL = "gridbus_grid_leaves"

_LEAF_GRIDS = text("SELECT code, ancestors, ST_AsBinary(geom) AS wkb FROM grid.units WHERE level = 'grid'")


def leaf_grids(conn):
    """(code, ancestors, WKB) of every leaf grid, in one statement (one snapshot: an import is in
    it whole or not at all), streamed in chunks."""
    return conn.execution_options(yield_per=1000).execute(_LEAF_GRIDS)


def covered_by_a_grid(session: Session, lon: float, lat: float) -> bool:
    """Whether a stored leaf grid covers the point, by grid's own rule (its SQL function
    grid.locate): what pinning asks before it refuses a point its index finds nowhere."""
    return bool(session.scalar(text("SELECT EXISTS (SELECT 1 FROM grid.locate(:lon, :lat))"),
                               {"lon": lon, "lat": lat}))


def unit_lineage(session: Session, code: str) -> list[str] | None:
    row = session.execute(text("SELECT ancestors FROM grid.units WHERE code = :c"), {"c": code}).first()
    return [*row.ancestors, code] if row else None


def department(session: Session, code: str):
    """(active, serves) of a handling department, from dispatch's set-up (docs/service-contracts.md)."""
    return session.execute(text("SELECT active, serves FROM dispatch.departments WHERE code = :c"),
                           {"c": code}).first()


# --- incidents -----------------------------------------------------------------------------

def insert_incident(session: Session, values: dict) -> bool:
    """Inserts unless the report id exists; False when a row with that report id was there."""
    row = session.execute(insert(Incident).values(**values)
                          .on_conflict_do_nothing(index_elements=[Incident.report_id])
                          .returning(Incident.id)).first()
    return row is not None


def claim_and_get(session: Session, claim, incident_id: uuid.UUID):
    """One statement: the inbox `claim` (shared.inbox.claim) and the incident as get() reads it.
    Returns (claimed, the row or None when there is no such incident)."""
    claimed = select(func.count()).select_from(claim).scalar_subquery().label("claimed")
    one = select(literal(1).label("one")).subquery()
    row = session.execute(select(Incident, LON, LAT, claimed).select_from(one)
                          .outerjoin(Incident, Incident.id == incident_id)).one()
    return row.claimed > 0, (row if row[0] is not None else None)


def get(session: Session, incident_id: uuid.UUID, *, for_update: bool = False):
    q = select(Incident, LON, LAT).where(Incident.id == incident_id)
    if for_update:
        q = q.with_for_update()
    return session.execute(q).first()


def by_report_id(session: Session, report_id: str):
    return session.execute(select(Incident, LON, LAT).where(Incident.report_id == uuid.UUID(report_id))).first()


def find_duplicate(session: Session, category_code: str, lon: float, lat: float, radius_m: float,
                   since: datetime) -> uuid.UUID | None:
    """The first open incident of the same category within radius_m since `since` (its root,
    when it is itself a duplicate)."""
    # A degree box first so the GiST index does the work; then the exact distance in metres.
    deg = radius_m / (_METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 0.01))
    row = session.execute(text(
        "SELECT id, duplicate_of FROM incidents.incidents "
        "WHERE status NOT IN ('closed', 'rejected', 'voided') AND category_code = :cat AND reported_at >= :since "
        "AND ST_DWithin(location, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :deg) "
        "AND ST_DWithin(location::geography, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography, :r) "
        "ORDER BY seq LIMIT 1"),
        {"cat": category_code, "since": since, "lon": lon, "lat": lat, "deg": deg, "r": radius_m}).first()
    if row is None:
        return None
    return row.duplicate_of or row.id


def apply_change(session: Session, incident_id: uuid.UUID, expected_version: int, values: dict):
    """Moves the incident on if it is still at expected_version; returns (version, updated_at)
    as written, or None when it had moved on."""
    return session.execute(
        update(Incident).where(Incident.id == incident_id, Incident.version == expected_version)
        .values(version=Incident.version + 1, updated_at=func.clock_timestamp(), **values)
        .returning(Incident.version, Incident.updated_at)
        .execution_options(synchronize_session=False)).first()


def append_history(session: Session, **values) -> None:
    session.execute(insert(History).values(**values))


def history(session: Session, incident_id: uuid.UUID) -> list[History]:
    return list(session.scalars(select(History).where(History.incident_id == incident_id)
                                .order_by(History.version)))


def _conditions(*, scope: tuple[str, ...] | None, department: str | None, grid_code: str | None,
                statuses: list[str], category_prefix: str | None, reported_from: datetime | None,
                reported_to: datetime | None, reporter_prefix: str | None = None,
                bbox: tuple[float, float, float, float] | None = None, ids: list[uuid.UUID] | None = None) -> list:
    conds = []
    if scope is not None:
        conds.append(Incident.lineage.overlap(list(scope)))
    if department is not None:
        conds.append(Incident.department_code == department)
    if reporter_prefix is not None:  # a literal, so that the partial index on it applies
        conds.append(Incident.reporter_id.like(literal(f"{reporter_prefix}%", literal_execute=True)))
    if grid_code:
        conds.append(Incident.lineage.contains([grid_code]))
    if statuses:
        conds.append(Incident.status.in_(statuses))
    if category_prefix:
        conds.append(Incident.category_code.startswith(category_prefix, autoescape=True))
    if reported_from:
        conds.append(Incident.reported_at >= reported_from)
    if reported_to:
        conds.append(Incident.reported_at < reported_to)
    if bbox:
        conds.append(func.ST_Intersects(Incident.location, func.ST_MakeEnvelope(*bbox, 4326)))
    if ids:
        conds.append(Incident.id.in_(ids))
    return conds


def list_incidents(session: Session, *, after_seq: int | None, limit: int, **filters):
    """Newest first, keyset-paged on seq: pages stay stable while new incidents arrive (they
    sort before the first page). `filters`: those of _conditions."""
    conds = _conditions(**filters)
    if after_seq is not None:
        conds.append(Incident.seq < after_seq)
    q = select(Incident, LON, LAT)
    if conds:
        q = q.where(and_(*conds))
    return session.execute(q.order_by(Incident.seq.desc()).limit(limit)).all()


# --- figures -------------------------------------------------------------------------------

_OPEN = Incident.status.in_(sorted(domain.OPEN_STATUSES))


def summarize(session: Session, group_by: str, zone: str, limit: int, **filters) -> list[tuple[str, int, int]]:
    """(key, count, open) per group of the matching incidents, largest first (days in order)."""
    if group_by == "day":
        key = func.to_char(func.timezone(zone, Incident.reported_at), "YYYY-MM-DD")
    elif group_by == "status":
        key = Incident.status
    elif group_by == "category":
        key = Incident.category_code
    else:  # a unit level: PostgreSQL arrays count from 1
        key = Incident.lineage[domain.SUMMARY_UNIT_DEPTH[group_by] + 1]
    key = key.label("key")
    count = func.count().label("count")
    q = (select(key, count, func.count().filter(_OPEN).label("open"))
         .where(and_(true(), *_conditions(**filters))).group_by(key))
    q = q.order_by(key) if group_by == "day" else q.order_by(count.desc(), key)
    if limit and group_by != "day":
        q = q.limit(limit)
    return [(row.key or "-", row.count, row.open) for row in session.execute(q)]


def count(session: Session, **filters) -> int:
    return session.scalar(select(func.count()).select_from(Incident).where(and_(true(), *_conditions(**filters))))


def funnel_facts(session: Session, **filters) -> list[tuple[str, set[str], int]]:
    """(status, milestones reached, count) over the matching incidents: the few combinations
    the funnel's rule (domain.funnel_stages) needs, counted in PostgreSQL."""
    reached = (select(func.array_agg(func.distinct(History.to_status)))
               .where(History.incident_id == Incident.id, History.to_status.in_(domain.FUNNEL_MILESTONES))
               .scalar_subquery())
    each = (select(Incident.status, reached.label("reached"))
            .where(and_(true(), *_conditions(**filters))).subquery())
    q = select(each.c.status, each.c.reached, func.count().label("count")).group_by(each.c.status, each.c.reached)
    return [(row.status, set(row.reached or ()), row.count) for row in session.execute(q)]
