"""Credit registry rules: identity codes, the hash chain, scores and lists. Plain Python, no I/O.

- Enterprises are named by their unified social credit code (GB 32100-2015): 18 characters
  from 0-9 and A-Z without I, O, S, V, Z; characters 3-8 are the administrative division code;
  the 18th is a check character (weights 3^i mod 31 over the first 17).
- People are named by their resident identity number (GB 11643-1999): 17 digits and a check
  digit (ISO 7064 MOD 11-2, 10 written X), with a real birth date in positions 7-14. The
  registry keeps a keyed hash of it for lookups and a masked form for people to read; the
  number itself is never stored, logged, sent in an event or shown.
- Records are never edited: a correction, an upheld appeal or an approved credit repair is a
  new record that supersedes the old one, with its reason. Every record carries the hash of its
  content and of the record before it, so a change behind the registry's back breaks the chain.
- Besides its own records (violations from closed incidents, commendations), the registry keeps
  what other departments decide (penalties, licences, commendations, entries on their lists);
  services/credit/sharing.py has the rules for those.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import InvalidArgument

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
GENESIS = "0" * 64
ENTERPRISE, PERSON = "enterprise", "person"
# annulment: an upheld appeal; repair: an approved credit repair (信用修复); both worth nothing.
# penalty, licence and list_entry come from other departments' decisions.
KINDS = ("violation", "commendation", "annulment", "penalty", "licence", "list_entry", "repair")
MANUAL_KINDS = ("violation", "commendation", "annulment")   # what AddRecord takes
ADVERSE = ("violation", "penalty")   # kinds that can black-list by severity and spoil a clean year
COMPUTED_LISTS = ("black", "red")    # the registry's own lists, from the score


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS))
    value = 31 - total % 31
    return USCC_CHARS[0 if value == 31 else value]


def check_uscc(code: str) -> str:
    """The code, upper-cased, or InvalidArgument saying what is wrong with it."""
    code = (code or "").strip().upper()
    if len(code) != 18:
        raise InvalidArgument(f"a unified social credit code has 18 characters, not {len(code)}")
    for i, c in enumerate(code):
        if c not in USCC_CHARS:
            raise InvalidArgument(f"character {c!r} at position {i + 1} is not used in unified social credit "
                                  "codes (0-9 and A-Z without I, O, S, V, Z)")
    if not (code[2:8].isascii() and code[2:8].isdigit()):
        raise InvalidArgument("positions 3-8 of a unified social credit code are the administrative division code")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise InvalidArgument(f"check character is {code[17]!r} but the first 17 characters give {expected!r}: "
                              "a character is mistyped")
    return code


def check_id_number(number: str) -> str:
    number = (number or "").strip().upper()
    if len(number) != 18:
        raise InvalidArgument(f"a resident identity number has 18 characters, not {len(number)}")
    if not (number[:17].isascii() and number[:17].isdigit()) or number[17] not in "0123456789X":
        raise InvalidArgument("a resident identity number is 17 digits and a check digit (0-9 or X)")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidArgument("positions 7-14 of a resident identity number must be a real birth date")
    if born.year < 1900 or born > date.today():
        raise InvalidArgument("positions 7-14 of a resident identity number must be a plausible birth date")
    expected = _ID_CHECK[sum(int(d) * w for d, w in zip(number[:17], _ID_WEIGHTS)) % 11]
    if number[17] != expected:
        raise InvalidArgument("the check digit does not match: a digit is mistyped")
    return number


def id_lookup_key(number: str, key: str) -> str:
    """A keyed hash: equal numbers find each other, and the table alone reveals nothing."""
    return hmac.new(key.encode(), number.encode(), hashlib.sha256).hexdigest()


def mask_id(number: str) -> str:
    """Region code and the last four: 110105********002X."""
    return number[:6] + "*" * 8 + number[-4:]


# --- the chain -----------------------------------------------------------------------------

def _chain_time(value) -> str | None:
    """A time as the hash chain's canonical form writes it: UTC, ending "+00:00". Not
    shared.timefmt.iso_utc's "Z": every stored record was hashed this way, and would stop
    verifying."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat()
    return None if value is None else str(value)


CONTENT_FIELDS = ("id", "subject_id", "kind", "category", "severity", "source", "incident_id", "valid_from",
                  "valid_until", "confirmed_by", "supersedes", "reason", "created_at")
# Fields records gained with decisions from other departments. They join the canonical form only
# when set, so every record written before them hashes exactly as it did.
DECISION_FIELDS = ("authority", "legal_basis", "decision_number", "decision_date", "summary", "list_code",
                   "published_from", "published_until")


def _canonical(key: str, value):
    if key in ("valid_from", "valid_until", "created_at"):
        return _chain_time(value)
    return None if value is None else (value if isinstance(value, int) else str(value))


def content_of(record) -> dict:
    get = record.get if isinstance(record, dict) else lambda k: getattr(record, k, None)
    content = {k: _canonical(k, get(k)) for k in CONTENT_FIELDS}
    content.update({k: _canonical(k, get(k)) for k in DECISION_FIELDS if get(k) is not None})
    return content


def record_hash(prev_hash: str, content: dict) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


@dataclass
class ChainBreak:
    seq: int
    record_id: str
    reason: str


def verify_chain(rows, checkpoint=None, prev: str = GENESIS) -> tuple[int, ChainBreak | None]:
    """(records checked, the first break or None); rows in seq order with prev_hash and hash,
    from the start of the chain (or from after the record whose hash is `prev`). With a checkpoint (record_count, head_record_id, head_hash, at; its signature checked by the
    caller), the chain must reach its count and hold its head there: otherwise records were
    removed, or the chain was rewritten and rehashed up to that point."""
    checked = 0
    for row in rows:
        if row.prev_hash != prev:
            return checked, ChainBreak(row.seq, str(row.id), "its prev_hash is not the hash of the record before it")
        if record_hash(prev, content_of(row)) != row.hash:
            return checked, ChainBreak(row.seq, str(row.id), "its content does not match its hash")
        prev = row.hash
        checked += 1
        if checkpoint is not None and checked == checkpoint.record_count and \
                (row.hash != checkpoint.head_hash or str(row.id) != checkpoint.head_record_id):
            return checked - 1, ChainBreak(row.seq, str(row.id), (
                f"it is record {checked}, where the checkpoint of {checkpoint.at} has record "
                f"{checkpoint.head_record_id} with hash {checkpoint.head_hash}: the chain was rewritten"))
    if checkpoint is not None and checked < checkpoint.record_count:
        return checked, ChainBreak(0, "", (
            f"the chain has {checked} records, but the checkpoint of {checkpoint.at} counted "
            f"{checkpoint.record_count}: records were removed"))
    return checked, None


# --- scores and lists ----------------------------------------------------------------------

@dataclass(frozen=True)
class PublicationBand:
    """How long records of one kind and these severities are published, from the decision date."""
    name: str
    severities: frozenset
    min_days: int           # the shortest publication; credit repair may end it after this
    max_days: int           # publication ends by itself after this (the default period)


@dataclass(frozen=True)
class Rules:
    base_score: int
    points: dict            # kind -> {severity: points}
    validity_days: dict     # kind -> days a record stays in force
    severity_from_priority: dict
    black_max_score: int
    black_severity: int     # an in-force adverse record this severe or worse is a black-list case by itself
    red_min_score: int
    red_clean_days: int
    timezone: ZoneInfo = ZoneInfo("Asia/Shanghai")   # whose calendar dates (decisions, publication) are
    publication: dict = field(default_factory=dict)  # kind -> [PublicationBand]; kinds absent are never published
    repair_days: dict = field(default_factory=dict)  # kind -> {severity: days after the decision before repair}

    def band(self, kind: str, severity: int) -> PublicationBand | None:
        return next((b for b in self.publication.get(kind, ()) if severity in b.severities), None)


def _publication(doc) -> dict:
    out = {}
    for kind, bands in (doc or {}).items():
        if kind not in KINDS:
            raise InvalidArgument(f"credit rules file: publication: unknown kind {kind!r}")
        parsed, seen = [], set()
        for name, band in bands.items():
            b = PublicationBand(str(name), frozenset(int(s) for s in band["severities"]), int(band["min_days"]),
                                int(band["max_days"]))
            if not b.severities <= {1, 2, 3, 4} or b.severities & seen:
                raise InvalidArgument(f"credit rules file: publication.{kind}.{name}: severities are 1..4, "
                                      "each in one band of the kind")
            if not 0 < b.min_days <= b.max_days:
                raise InvalidArgument(f"credit rules file: publication.{kind}.{name}: 0 < min_days <= max_days")
            seen |= b.severities
            parsed.append(b)
        out[kind] = parsed
    return out


def _repair(doc) -> dict:
    out = {}
    for kind, days in (doc or {}).items():
        if kind not in KINDS:
            raise InvalidArgument(f"credit rules file: repair: unknown kind {kind!r}")
        out[kind] = {int(s): int(d) for s, d in days.items()}
        if not set(out[kind]) <= {1, 2, 3, 4} or any(d < 0 for d in out[kind].values()):
            raise InvalidArgument(f"credit rules file: repair.{kind}: severities 1..4, days 0 or more")
    return out


def parse_rules(doc) -> Rules:
    try:
        zone = ZoneInfo(str(doc.get("timezone", "Asia/Shanghai")))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidArgument(f"credit rules file: timezone: {exc}")
    try:
        return Rules(
            base_score=int(doc["base_score"]),
            points={k: {int(s): int(p) for s, p in v.items()} for k, v in doc["points"].items()},
            validity_days={k: int(v) for k, v in doc["validity_days"].items()},
            severity_from_priority={int(k): int(v) for k, v in doc["severity_from_priority"].items()},
            black_max_score=int(doc["black_list"]["max_score"]),
            black_severity=int(doc["black_list"]["serious_severity"]),
            red_min_score=int(doc["red_list"]["min_score"]),
            red_clean_days=int(doc["red_list"]["clean_days"]),
            timezone=zone,
            publication=_publication(doc.get("publication")),
            repair_days=_repair(doc.get("repair")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidArgument(f"credit rules file: missing or malformed {exc}")


@dataclass
class Record:
    id: str
    kind: str
    severity: int
    valid_from: datetime
    valid_until: datetime
    created_at: datetime
    supersedes: str | None
    list_code: str | None = None   # list_entry: the department's list it puts the subject on


@dataclass
class Standing:
    score: int
    black: bool
    red: bool
    in_force: list[str] = field(default_factory=list)  # record ids
    entries: dict = field(default_factory=dict)        # department list code -> ids of the entries in force

    @property
    def lists(self) -> list[str]:
        """The registry's own lists, then the departments' lists, by code."""
        own = [name for name, on in (("black", self.black), ("red", self.red)) if on]
        return own + sorted(self.entries)


def standing(records: list[Record], rules: Rules, as_of: datetime, known_by: datetime | None = None) -> Standing:
    """Score and lists from the records in force at `as_of`: known by then (or by `known_by`),
    valid then, and not superseded by a record known by then."""
    known_by = as_of if known_by is None else known_by
    known = [r for r in records if r.created_at <= known_by]
    superseded = {r.supersedes for r in known if r.supersedes}
    in_force = [r for r in known if r.id not in superseded and r.valid_from <= as_of < r.valid_until]
    score = rules.base_score + sum(rules.points.get(r.kind, {}).get(r.severity, 0) for r in in_force)
    adverse = [r for r in in_force if r.kind in ADVERSE]
    black = score <= rules.black_max_score or any(r.severity <= rules.black_severity for r in adverse)
    recent = as_of - timedelta(days=rules.red_clean_days)
    red = not black and score >= rules.red_min_score and not any(r.valid_from >= recent for r in adverse)
    entries: dict = {}
    for r in in_force:
        if r.kind == "list_entry" and r.list_code:
            entries.setdefault(r.list_code, []).append(r.id)
    return Standing(score, black, red, [r.id for r in in_force], entries)


def next_change(records: list[Record], rules: Rules, as_of: datetime) -> datetime | None:
    """The first moment after `as_of` at which the standing may change with no new record: a
    record takes effect or expires, or a violation stops being recent for the red list."""
    known = [r for r in records if r.created_at <= as_of]
    superseded = {r.supersedes for r in known if r.supersedes}
    moments = []
    for r in known:
        if r.id in superseded:
            continue
        moments += [r.valid_from, r.valid_until]
        if r.kind in ADVERSE:
            moments.append(r.valid_from + timedelta(days=rules.red_clean_days))
    return min((m for m in moments if m > as_of), default=None)


def check_record(kind: str, severity: int, category: str, reason: str | None, supersedes: str | None) -> None:
    if kind not in MANUAL_KINDS:
        raise InvalidArgument(f"kind must be one of {', '.join(MANUAL_KINDS)} (departments' decisions come "
                              "through AddExternalRecord or an import)")
    if not 1 <= severity <= 4:
        raise InvalidArgument("severity is 1 (most serious) to 4")
    if not category or len(category) > 32:
        raise InvalidArgument("category is required (at most 32 characters)")
    if kind == "annulment" and not supersedes:
        raise InvalidArgument("an annulment supersedes the record it annuls")
    if supersedes and not (reason or "").strip():
        raise InvalidArgument("a record that supersedes another needs the reason")
    if reason and len(reason) > 2000:
        raise InvalidArgument("reason: at most 2000 characters")
