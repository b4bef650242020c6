"""Grid storage: SQLAlchemy models of the `grid` schema and the queries on them."""
from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (ARRAY, BigInteger, Boolean, DateTime, Float, ForeignKey, String, Text, func,
                        select, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from shared.errors import NotFound

SCHEMA = "grid"


class Base(DeclarativeBase):
    pass


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = {"schema": SCHEMA}

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    level: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    parent_code: Mapped[str | None] = mapped_column(Text, ForeignKey(f"{SCHEMA}.units.code"))
    ancestors: Mapped[list[str]] = mapped_column(ARRAY(Text))
    # Deferred: a polygon can be large, and reads (locate, lists) never need it as an object.
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), deferred=True)
    area_m2: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Member(Base):
    __tablename__ = "members"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    name: Mapped[str] = mapped_column(Text)
    phone: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    on_duty: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    position = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)  # WGS 84
    position_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The position as the phone sent it, in its own datum.
    position_sent_lon: Mapped[float | None] = mapped_column(Float)
    position_sent_lat: Mapped[float | None] = mapped_column(Float)
    position_sent_datum: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    version: Mapped[int] = mapped_column(BigInteger, server_default=text("1"))

    assignments: Mapped[list["Assignment"]] = relationship(
        back_populates="member", cascade="all, delete-orphan", order_by="Assignment.assigned_at",
        lazy="selectin")


class Assignment(Base):
    __tablename__ = "assignments"
    __table_args__ = {"schema": SCHEMA}

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.members.id"), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String, ForeignKey(f"{SCHEMA}.units.code"), primary_key=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    member: Mapped[Member] = relationship(back_populates="assignments")


# --- units ------------------------------------------------------------------------------------

# A trigger on grid.units NOTIFYs here when a committed transaction changed a leaf grid
# (migration 0004); every process that pins points rebuilds its index then.
LEAF_GRIDS_CHANNEL = "gridbus_grid_leaves"

_LEAF_GRIDS = text(
    "SELECT code, level, name, parent_code, ancestors, area_m2, updated_at, ST_AsBinary(geom) AS wkb "
    "FROM grid.units WHERE level = 'grid'")


def leaf_grids(conn):
    """Every leaf grid with its polygon as WKB: what the in-memory index is built from.
    One statement, so one snapshot: an import is in it whole or not at all. Streamed in
    chunks, so the driver never holds the whole city's polygons besides the caller's copy."""
    return conn.execution_options(yield_per=1000).execute(_LEAF_GRIDS)


def get_unit(session: Session, code: str) -> Unit:
    unit = session.get(Unit, code)
    if unit is None:
        raise NotFound(f"no unit with code {code}")
    return unit


def geometry_geojson(session: Session, code: str) -> str:
    return session.scalar(select(func.ST_AsGeoJSON(Unit.geom)).where(Unit.code == code))


def children(session: Session, code: str) -> list[Unit]:
    return list(session.scalars(select(Unit).where(Unit.parent_code == code).order_by(Unit.code)))


# --- members ----------------------------------------------------------------------------------

def get_member(session: Session, member_id: uuid.UUID, *, for_update: bool = False) -> Member:
    stmt = select(Member).where(Member.id == member_id)
    if for_update:
        stmt = stmt.with_for_update()
    member = session.scalars(stmt).first()
    if member is None:
        raise NotFound(f"no member with id {member_id}")
    return member


def list_members(session: Session, root_code: str, role: str | None, on_duty_only: bool,
                 limit: int, after: uuid.UUID | None) -> list[Member]:
    """Members assigned anywhere in the subtree of root_code, ordered by id (the page cursor)."""
    in_subtree = (select(Assignment.member_id).join(Unit, Unit.code == Assignment.unit_code)
                  .where((Unit.code == root_code) | Unit.ancestors.any(root_code)))
    stmt = select(Member).where(Member.id.in_(in_subtree)).order_by(Member.id).limit(limit)
    if role:
        stmt = stmt.where(Member.role == role)
    if on_duty_only:
        stmt = stmt.where(Member.on_duty.is_(True))
    if after is not None:
        stmt = stmt.where(Member.id > after)
    return list(session.scalars(stmt))


def position_lonlat(session: Session, member: Member) -> tuple[float, float] | None:
    if member.position is None:
        return None
    row = session.execute(select(func.ST_X(Member.position), func.ST_Y(Member.position))
                          .where(Member.id == member.id)).one()
    return row[0], row[1]


# --- sign-in (services/grid/signin.py) ---------------------------------------------------------

class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = {"schema": SCHEMA}

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.members.id"), primary_key=True)
    username: Mapped[str | None] = mapped_column(Text, unique=True)  # lower case
    password_hash: Mapped[str] = mapped_column(Text)  # argon2id, in its own encoded form
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SignInFailures(Base):
    __tablename__ = "signin_failures"
    __table_args__ = {"schema": SCHEMA}

    login_key: Mapped[str] = mapped_column(Text, primary_key=True)
    failures: Mapped[int] = mapped_column(server_default=text("0"))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"
    __table_args__ = {"schema": SCHEMA}

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, server_default=func.gen_random_uuid())
    family_id: Mapped[uuid.UUID] = mapped_column()
    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.members.id"))
    token_hash: Mapped[bytes] = mapped_column(unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SessionRevocation(Base):
    __tablename__ = "session_revocations"
    __table_args__ = {"schema": SCHEMA}

    member_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{SCHEMA}.members.id"), primary_key=True)
    revoked_before: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
