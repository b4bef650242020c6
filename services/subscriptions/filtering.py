"""What an outside subscriber may receive of an event: only events about units in its scope, and
of those only the personal fields it was granted (shared/privacy.py says which are personal).

Plain Python, no I/O: the live delivery and the replay both call `deliverable`."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable

from shared import privacy, units
from shared.errors import InvalidArgument

# Event type, or its `<service>.<entity>` prefix (the full type wins): the payload message and
# the payload fields naming the units the event is about. No fields: the event is about no unit
# (citywide configuration, the credit chain), so only citywide subscriptions receive it.
_GRID, _INC, _DSP, _EMG, _CRD, _SNS = (f"gridbus.{s}.v1.events." for s in
                                       ("grid", "incidents", "dispatch", "emergencies", "credit", "sensors"))
PAYLOADS: dict[str, tuple[str, tuple[str, ...]]] = {
    "grid.units": (_GRID + "UnitsImported", ()),
    "grid.member": (_GRID + "MemberEventData", ("grid_code", "assignments.grid_code")),
    "grid.member.position_reported": (_GRID + "PositionReported", ("grid_code",)),
    # Names no unit: only citywide subscribers receive it.
    "grid.member.sessions_revoked": (_GRID + "SessionsRevoked", ()),
    "incidents.incident": (_INC + "IncidentEventData", ("lineage",)),
    "dispatch.task": (_DSP + "TaskEventData", ("lineage",)),
    "emergencies.alert": (_EMG + "AlertData", ("lineage",)),
    "credit.record.added": (_CRD + "RecordAdded", ()),
    "credit.list.changed": (_CRD + "ListChanged", ("registered_grid", "division")),
    "credit.repair.applied": (_CRD + "RepairApplied", ()),
    "credit.repair.decided": (_CRD + "RepairDecided", ()),
    "credit.chain.checkpoint": (_CRD + "ChainCheckpoint", ()),
    "sensors.device.registered": (_SNS + "DeviceRegistered", ("grid_code",)),
    "sensors.device.deactivated": (_SNS + "DeviceDeactivated", ()),
    "sensors.case": (_SNS + "CaseData", ("lineage",)),
}


@dataclass(frozen=True)
class Share:
    """What one subscriber may see: unit codes whose subtrees it receives (a city's code: all of
    it, and the events about no unit), and the kinds of personal fields granted."""
    scope: frozenset[str]
    grants: frozenset[str]

    @property
    def citywide(self) -> bool:
        return any(units.level_of(c) == units.CITY for c in self.scope)

    def covers(self, codes: Iterable[str]) -> bool:
        """True when one of the units (with their ancestors) lies in the scope; no units: citywide only."""
        codes = list(codes)
        if not codes:
            return self.citywide
        return any(not self.scope.isdisjoint(_lineage(c)) for c in codes)


def payload_of(event_type: str) -> tuple[str, tuple[str, ...]] | None:
    parts = event_type.split(".")
    return PAYLOADS.get(event_type) or PAYLOADS.get(".".join(parts[:2]))


def check_scope(scope: Iterable[str]) -> list[str]:
    scope = sorted(set(scope))
    if not scope:
        raise InvalidArgument("scope: at least one unit code (a city's code for all of it)")
    for code in scope:
        units.level_of(code)  # InvalidArgument when it is no unit code
    return scope


def check_grants(grants: Iterable[str]) -> list[str]:
    grants = sorted(set(grants))
    unknown = [g for g in grants if g not in privacy.GRANTS]
    if unknown:
        raise InvalidArgument(f"unknown grant {unknown[0]!r}; one of {', '.join(privacy.GRANTS)}")
    return grants


def within(inner: Iterable[str], outer: Iterable[str]) -> list[str]:
    """The codes of `inner` that lie outside every subtree of `outer` (empty: all within)."""
    outer = set(outer)
    return [c for c in inner if outer.isdisjoint(units.lineage(c))]


def units_of(event_type: str, data: dict) -> list[str]:
    """The unit codes an event is about, from its payload; [] for none (what is no unit code is ignored)."""
    declared = payload_of(event_type)
    if declared is None or not isinstance(data, dict):
        return []
    codes: list[str] = []
    for path in declared[1]:
        codes.extend(v for v in _values(data, path.split(".")) if isinstance(v, str) and _lineage(v))
    return codes


def deliverable(event: dict, *shares: Share) -> dict | None:
    """The envelope a subscriber with every one of `shares` (its subscription's and its
    organisation's) receives: None when an event is outside a scope, or of a type never reviewed
    for personal fields; else a copy with each personal field not granted by all of them removed."""
    event_type = event.get("type")
    declared = payload_of(event_type) if isinstance(event_type, str) else None
    personal = privacy.personal_fields(declared[0]) if declared else None
    if personal is None:
        return None
    data = event.get("data")
    codes = units_of(event_type, data)
    if not all(share.covers(codes) for share in shares):
        return None
    granted = frozenset.intersection(*(s.grants for s in shares)) if shares else frozenset()
    out = copy.deepcopy(event)
    if isinstance(out.get("data"), dict):
        for path, kind in personal.items():
            if kind not in granted:
                _remove(out["data"], path.split("."))
    return out


def _lineage(code: str) -> list[str]:
    try:
        return units.lineage(code)
    except InvalidArgument:
        return []  # not a unit code: about no unit of this city


def _values(data, path: list[str]) -> list:
    if isinstance(data, list):
        return [v for item in data for v in _values(item, path)]
    if not isinstance(data, dict) or path[0] not in data:
        return []
    value = data[path[0]]
    if len(path) == 1:
        return value if isinstance(value, list) else [value]
    return _values(value, path[1:])


def _remove(data, path: list[str]) -> None:
    if isinstance(data, list):
        for item in data:
            _remove(item, path)
    elif isinstance(data, dict):
        if len(path) == 1:
            data.pop(path[0], None)
        elif path[0] in data:
            _remove(data[path[0]], path[1:])
