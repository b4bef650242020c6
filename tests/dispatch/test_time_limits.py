"""Time limits per category and level: the operator's file checked when loaded, the matching
entry, and the deadlines they give (domain.due_dates, the one deadline policy). No servers."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from services.dispatch import domain
from services.dispatch.calendar import WorkCalendar
from services.dispatch.time_limits import limit_for, parse_time_limits
from shared.errors import InvalidArgument

SAMPLE = Path(__file__).resolve().parents[2] / "services" / "dispatch" / "config" / "time_limits.yaml"
CAL = WorkCalendar()
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # Friday 17:00 in Shanghai
RULE = domain.Rule(1, "01", "", "D", 0, 30, 240, True)


def test_the_sample_follows_published_city_rules():
    limits = parse_time_limits(yaml.safe_load(SAMPLE.read_text(encoding="utf-8")))
    sanitation = limit_for(limits, "0102", 3)
    # Filed within 1 working hour, handled within 1 working day (the calendar's 7.5 hours).
    assert (sanitation.file_minutes, sanitation.resolve_minutes, sanitation.working_time) == (60, 450, True)
    assert limit_for(limits, "0106", 2).working_time is False   # burning in the open: the wall clock
    assert limit_for(limits, "0106", 3) == sanitation            # another level: the category's general entry
    assert limit_for(limits, "0602", 3) is None and limit_for(limits, "0602", 4).resolve_minutes == 900


def test_a_time_limit_is_the_cases_whoever_chose_the_department():
    limits = parse_time_limits({"limits": [{"category": "01", "acknowledge": 60, "resolve": 450}]})
    limit = limit_for(limits, "0102", 3)
    one_day = (CAL.add(NOW, timedelta(minutes=60)), CAL.add(NOW, timedelta(minutes=450)))
    assert domain.due_dates(RULE, domain.ROUTED, NOW, CAL, limit) == one_day
    assert domain.due_dates(None, domain.BY_HAND, NOW, CAL, limit) == one_day
    assert domain.due_dates(RULE, domain.REROUTED, NOW, CAL, limit) == (one_day[0], None)
    # Friday 17:00 + 7.5 working hours: 1 on Friday, 3 on Monday morning, 3.5 after lunch: Monday 17:00.
    assert one_day[1] == datetime(2026, 11, 30, 17, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert domain.due_dates(RULE, domain.ROUTED, NOW, CAL) == (CAL.add(NOW, timedelta(minutes=30)),
                                                               CAL.add(NOW, timedelta(minutes=240)))


@pytest.mark.parametrize("entry, message", [
    ({"category": "0", "acknowledge": 1, "resolve": 2}, "category code"),
    ({"category": "01", "level": 5, "acknowledge": 1, "resolve": 2}, "level must be 1..4"),
    ({"category": "01", "acknowledge": 0, "resolve": 2}, "acknowledge must be minutes"),
    ({"category": "01", "acknowledge": 10, "resolve": 5}, "must not be after resolve"),
    ({"category": "01", "acknowledge": 1, "resolve": 2, "file": 999999}, "file must be minutes"),
    ({"category": "01", "acknowledge": 1, "resolve": 2, "working_time": "yes"}, "true or false"),
    ({"category": "01", "acknowledge": 1, "resolve": 2, "resolv": 3}, "unknown keys resolv"),
])
def test_a_bad_entry_is_refused_naming_it(entry, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_time_limits({"limits": [entry]})


def test_an_entry_twice_is_refused():
    twice = {"category": "01", "level": 3, "acknowledge": 1, "resolve": 2}
    with pytest.raises(InvalidArgument, match="time limit 1: category 01 level 3 appears twice"):
        parse_time_limits({"limits": [twice, twice]})
    with pytest.raises(InvalidArgument, match="'limits' list"):
        parse_time_limits({"rules": []})


def test_a_sanitation_case_gets_its_time_limit_on_the_server(stub, dispatch_stub, dispatch_nameko):
    """The rule for category 01 says 30 and 240 working minutes; the time limit says a working
    hour to take it on and a working day to handle it, and wins."""
    from services.dispatch.operations.changes import calendar
    from tests.dispatch.test_dispatch import D1_GRID, officer, task_for
    from tests.incidents.conftest import report_request
    incident = stub.Report(report_request(D1_GRID, category="0102"), metadata=officer(D1_GRID)).incident
    task = task_for(dispatch_stub, incident.id)
    start = task.dispatched_at.ToDatetime(tzinfo=timezone.utc)
    assert task.ack_due_at.ToDatetime(tzinfo=timezone.utc) == calendar().add(start, timedelta(minutes=60))
    assert task.resolve_due_at.ToDatetime(tzinfo=timezone.utc) == calendar().add(start, timedelta(minutes=450))
