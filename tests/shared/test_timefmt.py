"""Times written as ISO 8601 UTC and read back from what HTTP clients send."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared.errors import InvalidArgument
from shared.timefmt import iso_utc, parse_iso


def test_a_time_reads_back_as_written():
    when = datetime(2026, 11, 24, 8, 30, 1, 250000, tzinfo=timezone.utc)
    assert iso_utc(when) == "2026-11-24T08:30:01.250000Z" and parse_iso(iso_utc(when), "t") == when


def test_an_offset_is_kept_and_an_empty_value_is_none():
    assert parse_iso("2026-11-24T16:00:00+08:00", "from").utcoffset() == timedelta(hours=8)
    assert parse_iso("", "from") is None and parse_iso(None, "from") is None


@pytest.mark.parametrize("value, words", [("yesterday", "from must be an ISO 8601 time"),
                                          ("2026-11-24T08:00:00", "from must carry a time zone")])
def test_a_bad_time_is_refused_naming_the_parameter(value, words):
    with pytest.raises(InvalidArgument, match=words):
        parse_iso(value, "from")
