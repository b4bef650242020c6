"""Subscription rules: names, organisations' ids, routing patterns, and which events a pattern matches.

Plain Python, no I/O."""
from __future__ import annotations

import re

from shared.errors import InvalidArgument

MAX_PATTERNS = 32
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,62}")
_WORD = re.compile(r"[a-z0-9_]+|\*|#")
# No dots: an organisation's queues are `gridbus.sub.<organisation>.<name>`, so a broker permission
# on that prefix is the organisation's alone.
_ORGANISATION = re.compile(r"[a-z0-9][a-z0-9_-]{2,62}")


def queue_name(organisation: str, name: str) -> str:
    return f"gridbus.sub.{organisation}.{name}"


def check_organisation(org_id: str) -> str:
    if not _ORGANISATION.fullmatch(org_id or ""):
        raise InvalidArgument(f"organisation id {org_id!r}: 3-63 of a-z, 0-9, '_', '-', starting with a letter or digit")
    return org_id


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise InvalidArgument(f"subscription name {name!r}: 3-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    return name


def check_patterns(patterns: list[str]) -> list[str]:
    if not patterns:
        raise InvalidArgument("at least one routing pattern, e.g. incidents.incident.* or #")
    if len(patterns) > MAX_PATTERNS:
        raise InvalidArgument(f"at most {MAX_PATTERNS} patterns")
    for p in patterns:
        if not all(_WORD.fullmatch(w) for w in p.split(".")):
            raise InvalidArgument(f"pattern {p!r}: dot-separated words of a-z, 0-9, _ or the wildcards * and #")
    return sorted(set(patterns))


def matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: * is one word, # is zero or more words."""
    def walk(ps: list[str], ks: list[str]) -> bool:
        if not ps:
            return not ks
        head, rest = ps[0], ps[1:]
        if head == "#":
            return any(walk(rest, ks[i:]) for i in range(len(ks) + 1))
        return bool(ks) and (head == "*" or head == ks[0]) and walk(rest, ks[1:])
    return walk(pattern.split("."), routing_key.split("."))

