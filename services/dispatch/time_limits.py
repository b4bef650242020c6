"""Time limits per category and level (时限标准): the operator's file, checked when it is loaded.
Plain Python, no I/O.

An entry names a category subtree (a code and its children) and optionally a level (the case's
priority, 1 urgent .. 4 minor; omitted: every level), the minutes to file an unrouted report
(the manual queue's deadline), to acknowledge and to resolve, and its clock (working time on
the calendar, or the wall clock for emergencies). The entry for the longest matching category
wins, one for the case's own level before one for every level. Where an entry matches, it is
the case's time limit whoever chose the department (domain.due_dates); elsewhere the routing
rule's minutes apply."""
from __future__ import annotations

import re
from dataclasses import dataclass

from shared.errors import InvalidArgument

MAX_MINUTES = 90 * 24 * 60
LEVELS = {1: "urgent 紧急", 2: "important 重要", 3: "ordinary 一般", 4: "minor 轻微"}
_CATEGORY = re.compile(r"[0-9A-Za-z]{2,16}")


@dataclass(frozen=True)
class TimeLimit:
    category: str
    level: int | None
    file_minutes: int | None
    ack_minutes: int
    resolve_minutes: int
    working_time: bool


def parse_time_limits(doc) -> tuple[TimeLimit, ...]:
    """InvalidArgument names the entry and what is wrong with it."""
    items = doc.get("limits") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InvalidArgument("the time-limits file needs a 'limits' list")
    out: dict[tuple[str, int | None], TimeLimit] = {}
    for i, item in enumerate(items):
        where = f"time limit {i}"
        if not isinstance(item, dict):
            raise InvalidArgument(f"{where} is not a mapping")
        unknown = set(item) - {"category", "level", "file", "acknowledge", "resolve", "working_time"}
        if unknown:
            raise InvalidArgument(f"{where}: unknown keys {', '.join(sorted(unknown))}")
        category = str(item.get("category", ""))
        if not _CATEGORY.fullmatch(category):
            raise InvalidArgument(f"{where}: category {category!r} is not a category code")
        level = item.get("level")
        if level is not None and level not in LEVELS:
            raise InvalidArgument(f"{where}: level must be 1..4 ({', '.join(f'{k} {v}' for k, v in LEVELS.items())})")

        def minutes(key: str, required: bool = True) -> int | None:
            value = item.get(key)
            if value is None and not required:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MINUTES:
                raise InvalidArgument(f"{where}: {key} must be minutes, 1..{MAX_MINUTES}")
            return value
        file_, ack, resolve = minutes("file", required=False), minutes("acknowledge"), minutes("resolve")
        if ack > resolve:
            raise InvalidArgument(f"{where}: acknowledge ({ack}) must not be after resolve ({resolve})")
        working = item.get("working_time", True)
        if not isinstance(working, bool):
            raise InvalidArgument(f"{where}: working_time is true or false")
        if (category, level) in out:
            raise InvalidArgument(f"{where}: category {category} level {level or 'any'} appears twice")
        out[(category, level)] = TimeLimit(category, level, file_, ack, resolve, working)
    return tuple(out.values())


def limit_for(limits: tuple[TimeLimit, ...], category: str, level: int) -> TimeLimit | None:
    """The longest matching category's entry, its own level's before every level's."""
    matching = [t for t in limits if category.startswith(t.category) and t.level in (None, level)]
    return max(matching, key=lambda t: (len(t.category), t.level is not None), default=None)
