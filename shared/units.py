"""Unit codes (GB/T 30428.1 unit-grid coding), shared by every service: a code alone tells a
unit's level and all its ancestors, so scope checks need no query.

The 6-digit county-level administrative code, then 3 digits of street, 3 of community and 3
of grid sequence; a city is its prefecture code (the county code's first 4 digits and "00"):

    city 330100 > district 330106 > street 330106001 > community 330106001002 > grid 330106001002003
"""
from __future__ import annotations

import re

from shared.errors import InvalidArgument

CITY, DISTRICT, STREET, COMMUNITY, GRID = "city", "district", "street", "community", "grid"
LEVELS = (CITY, DISTRICT, STREET, COMMUNITY, GRID)
_LEVEL_OF_LENGTH = {9: STREET, 12: COMMUNITY, 15: GRID}
_DIGITS = re.compile(r"[0-9]+")


def level_of(code: str) -> str:
    """The level a code names; InvalidArgument when it is no unit code."""
    if not isinstance(code, str) or not _DIGITS.fullmatch(code or ""):
        raise InvalidArgument(f"unit code {code!r} must be digits only")
    if len(code) == 6:
        if code[:2] == "00":
            raise InvalidArgument(f"unit code {code!r} has no province part")
        return CITY if code.endswith("00") else DISTRICT
    level = _LEVEL_OF_LENGTH.get(len(code))
    if level is None:
        raise InvalidArgument(f"unit code {code!r} must have 6, 9, 12 or 15 digits")
    if code[-3:] == "000":
        raise InvalidArgument(f"unit code {code!r}: sequence numbers start at 001")
    if code[4:6] == "00":
        raise InvalidArgument(f"unit code {code!r} does not start with a county-level code")
    return level


def depth(code: str) -> int:
    """1 city, 2 district, 3 street, 4 community, 5 grid; 0 for '' (anywhere)."""
    return LEVELS.index(level_of(code)) + 1 if code else 0


def parent_of(code: str) -> str | None:
    level = level_of(code)
    if level == CITY:
        return None
    if level == DISTRICT:
        return code[:4] + "00"
    return code[:-3]


def lineage(code: str) -> list[str]:
    """Ancestors from the city down, then the unit itself."""
    chain = [code]
    parent = parent_of(code)
    while parent is not None:
        chain.append(parent)
        parent = parent_of(parent)
    return chain[::-1]


def ancestors(code: str) -> list[str]:
    return lineage(code)[:-1]
