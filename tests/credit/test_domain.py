"""Credit rules alone: identity codes, the chain and its signed checkpoints, standing as of a time."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.credit import checkpoint, domain
from services.credit.operations import rules
from shared.errors import InvalidArgument

# Published codes: the example in GB 32100-2015, and two large enterprises' codes.
REAL_USCC = ["91350100M000100Y43", "91110000802100433B", "91440300708461136T"]
ID_EXAMPLE = "11010519491231002X"  # the example in GB 11643-1999


@pytest.mark.parametrize("code", REAL_USCC)
def test_published_codes_pass(code):
    assert domain.check_uscc(code.lower()) == code


@pytest.mark.parametrize("code,reason", [
    ("91350100M000100Y44", "check character is '4' but the first 17 characters give '3'"),
    ("91350100M000100Y4", "18 characters, not 17"),
    ("91350100M0O0100Y43", "'O' at position 11"),
    ("913501X0M000100Y43", "administrative division code"),
    ("91110000802100443B", "mistyped"),  # two digits swapped
])
def test_corrupted_codes_say_what_is_wrong(code, reason):
    with pytest.raises(InvalidArgument, match=reason.replace("(", r"\(").replace(")", r"\)")):
        domain.check_uscc(code)


def test_identity_numbers():
    assert domain.check_id_number(ID_EXAMPLE.lower()) == ID_EXAMPLE
    for bad, reason in [("110105194912310021", "check digit"), ("11010519491331002X", "birth date"),
                        ("1101051949123100", "18 characters"), ("11010519491231002A", "17 digits")]:
        with pytest.raises(InvalidArgument, match=reason):
            domain.check_id_number(bad)
    assert domain.mask_id(ID_EXAMPLE) == "110105********002X"
    k1 = domain.id_lookup_key(ID_EXAMPLE, "k" * 32)
    assert k1 == domain.id_lookup_key(ID_EXAMPLE, "k" * 32) != domain.id_lookup_key(ID_EXAMPLE, "j" * 32)
    assert ID_EXAMPLE not in k1


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def chain_of(n):
    rows, prev = [], domain.GENESIS
    for i in range(n):
        content = {"id": f"r{i}", "subject_id": "s", "kind": "violation", "category": "0102", "severity": 3,
                   "source": f"event:{i}", "incident_id": None, "valid_from": T0, "valid_until": T0 + timedelta(days=9),
                   "confirmed_by": "d", "supersedes": None, "reason": None, "created_at": T0 + timedelta(seconds=i)}
        h = domain.record_hash(prev, domain.content_of(content))
        rows.append(SimpleNamespace(seq=i + 1, prev_hash=prev, hash=h, **content))
        prev = h
    return rows


def test_the_chain_names_the_first_record_that_does_not_match():
    rows = chain_of(5)
    assert domain.verify_chain(rows) == (5, None)
    rows[2].severity = 1  # edited behind the registry's back
    checked, broken = domain.verify_chain(rows)
    assert (checked, broken.seq, broken.record_id) == (2, 3, "r2") and "content" in broken.reason
    rows = chain_of(4)
    del rows[1]  # a record deleted
    assert domain.verify_chain(rows)[1].seq == 3


KEY = ("k1", bytes(range(32)))


def signed_head(rows, count: int) -> checkpoint.Checkpoint:
    head = rows[count - 1]
    return checkpoint.sign(head_record_id=head.id, head_hash=head.hash, record_count=count,
                           at="2026-01-01T00:00:00Z", key=KEY)


def test_a_checkpoint_verifies_with_its_public_key_and_nothing_else():
    cp = signed_head(chain_of(3), 3)
    keys = {"k1": checkpoint.public_key(KEY[1])}
    assert checkpoint.signature_problem(cp, keys) is None
    assert checkpoint.from_payload(cp.payload()) == cp
    for changed in ({"record_count": 2}, {"head_hash": "0" * 64}, {"at": "2026-01-01T00:00:01Z"}):
        assert "does not verify" in checkpoint.signature_problem(replace(cp, **changed), keys)
    assert "not a verify key" in checkpoint.signature_problem(cp, {"k2": keys["k1"]})
    assert "does not verify" in checkpoint.signature_problem(replace(cp, signature="not base64!"), keys)
    for bad in ({"record_count": -1}, {"record_count": "3"}, {"signature": ""}, {"head_record_id": 7}):
        with pytest.raises(InvalidArgument):
            checkpoint.from_payload({**cp.payload(), **bad})


def test_checkpoint_keygen_prints_a_pair_that_signs_and_verifies(capsys):
    from services.cli import main as gridbus
    from shared.config import settings
    gridbus(["credit", "checkpoint-keygen", "--key-id", "checkpoint-2027"])
    lines = dict(line.split("=", 1) for line in capsys.readouterr().out.split())
    s = settings(lines)
    cp = checkpoint.sign(head_record_id=None, head_hash=domain.GENESIS, record_count=0, at="2027-01-01T00:00:00Z",
                         key=s.credit_checkpoint_key)
    assert cp.key_id == "checkpoint-2027" and checkpoint.signature_problem(cp, s.credit_checkpoint_verify_keys) is None
    with pytest.raises(SystemExit, match="GRIDBUS_CREDIT_CHECKPOINT_KEY must be key-id:base64"):
        gridbus(["credit", "checkpoint-keygen", "--key-id", "no spaces please"])


def test_the_chain_must_hold_its_checkpoint():
    rows = chain_of(5)
    cp = signed_head(rows, 4)
    assert domain.verify_chain(rows, cp) == (5, None)
    checked, broken = domain.verify_chain(rows[:3], cp)  # the tail cut off
    assert checked == 3 and broken.seq == 0 and "records were removed" in broken.reason
    rewritten = chain_of(5)  # the same chain rewritten and rehashed from record 4 on
    rewritten[3].severity = 1
    rewritten[3].hash = domain.record_hash(rewritten[3].prev_hash, domain.content_of(rewritten[3]))
    rewritten[4].prev_hash = rewritten[3].hash
    rewritten[4].hash = domain.record_hash(rewritten[4].prev_hash, domain.content_of(rewritten[4]))
    assert domain.verify_chain(rewritten) == (5, None)  # consistent in itself
    checked, broken = domain.verify_chain(rewritten, cp)
    assert (checked, broken.seq, broken.record_id) == (3, 4, "r3") and "rewritten" in broken.reason
    # From a known record on: the records after it are checked against its hash.
    assert domain.verify_chain(rows[2:], prev=rows[1].hash) == (3, None)
    assert domain.verify_chain(rows[2:], prev=rows[0].hash)[1].seq == 3


def rec(id_, kind, severity, start, days=365, created=None, supersedes=None):
    return domain.Record(id_, kind, severity, start, start + timedelta(days=days), created or start, supersedes)


def test_standing_counts_only_records_in_force_at_the_time():
    r = rules()
    serious = rec("v1", "violation", 1, T0)
    annul = rec("a1", "annulment", 1, T0 + timedelta(days=30), supersedes="v1")
    before = domain.standing([serious, annul], r, T0 - timedelta(days=1))
    during = domain.standing([serious, annul], r, T0 + timedelta(days=10))
    after_appeal = domain.standing([serious, annul], r, T0 + timedelta(days=31))
    assert (before.score, before.lists) == (100, [])
    assert (during.score, during.lists) == (70, ["black"])
    assert (after_appeal.score, after_appeal.lists) == (100, [])
    expired = domain.standing([rec("v2", "violation", 3, T0, days=100)], r, T0 + timedelta(days=101))
    assert expired.score == 100 and expired.in_force == []


def test_the_red_list_needs_a_good_score_and_a_clean_year():
    r = rules()
    good = [rec("c1", "commendation", 2, T0), rec("c2", "commendation", 3, T0)]
    assert domain.standing(good, r, T0 + timedelta(days=1)).lists == ["red"]
    minor = rec("v3", "violation", 4, T0 + timedelta(days=2))
    assert domain.standing(good + [minor], r, T0 + timedelta(days=3)).lists == []


def test_the_next_change_is_when_a_record_expires_takes_effect_or_stops_being_recent():
    r = rules()
    commendation = rec("c1", "commendation", 1, T0, days=730)
    minor = rec("v1", "violation", 4, T0 + timedelta(days=10), days=1095, created=T0)  # known now, in force later
    records = [commendation, minor]
    clean = minor.valid_from + timedelta(days=r.red_clean_days)
    # Walking from moment to moment visits every change of lists, and nothing changes in between.
    moments, at = [], T0 + timedelta(days=1)
    while (nxt := domain.next_change(records, r, at)) is not None:
        moments.append(nxt)
        at = nxt
    assert moments == [minor.valid_from, clean, commendation.valid_until, minor.valid_until]
    assert domain.standing(records, r, clean - timedelta(seconds=1)).lists == []      # the violation is recent
    assert domain.standing(records, r, clean + timedelta(seconds=1)).lists == ["red"]  # a clean year again
    # A superseded record no longer marks a moment; nor does one not yet known at the time.
    annul = rec("a1", "annulment", 4, T0 + timedelta(days=20), days=36500, supersedes="v1")
    assert domain.next_change([commendation, minor, annul], r, T0 + timedelta(days=21)) == commendation.valid_until
    assert domain.next_change([commendation, minor, annul], r, T0 + timedelta(days=11)) == clean


def test_record_checks():
    with pytest.raises(InvalidArgument, match="supersedes"):
        domain.check_record("annulment", 1, "0102", "appeal upheld", None)
    with pytest.raises(InvalidArgument, match="reason"):
        domain.check_record("violation", 2, "0102", "", "some-id")
    with pytest.raises(InvalidArgument, match="severity"):
        domain.check_record("violation", 0, "0102", None, None)
