"""The hash chain's canonical form is fixed: stored records were hashed with it, so a change to
how content_of writes a record (a time's "+00:00" becoming "Z", say) would break every chain."""
import uuid
from datetime import datetime, timedelta, timezone

from services.credit import domain

RECORD = {"id": uuid.UUID("7d3f0e2a-1b4c-4d5e-8f60-1a2b3c4d5e6f"),
          "subject_id": uuid.UUID("0a1b2c3d-4e5f-4061-8293-a4b5c6d7e8f9"),
          "kind": "violation", "category": "0102", "severity": 3, "source": "event:5b0f", "incident_id": None,
          "valid_from": datetime(2026, 11, 25, 6, 58, 1, 123456, tzinfo=timezone(timedelta(hours=8))),
          "valid_until": datetime(2029, 11, 24, 22, 58, 1, 123456, tzinfo=timezone.utc),
          "confirmed_by": "dispatcher-1", "supersedes": None, "reason": None,
          "created_at": datetime(2026, 11, 24, 22, 58, 1, 123456, tzinfo=timezone.utc)}


def test_times_are_written_in_utc_with_an_offset():
    content = domain.content_of(RECORD)
    assert content["valid_from"] == "2026-11-24T22:58:01.123456+00:00"
    assert content["created_at"] == "2026-11-24T22:58:01.123456+00:00"


def test_a_known_record_hashes_as_it_always_has():
    assert domain.record_hash(domain.GENESIS, domain.content_of(RECORD)) == \
        "aff36eaee3679c0525c00844ae7b3850d9f012b0625e3bcbefbf17606474ee20"
