"""Dispatch rules alone: precedence, ties, escalation, working time, evaluation arithmetic."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from services.dispatch import domain, evaluation_rules
from services.dispatch.calendar import WorkCalendar, parse_calendar
from shared.errors import InvalidArgument

LINEAGE = ["330100", "330103", "330103001", "330103001002", "330103001002003"]
SH = ZoneInfo("Asia/Shanghai")


def rule(id_, cat="", grid="", dept="D", prio=0):
    return domain.Rule(id_, cat, grid, dept, prio, 30, 240, False)


def route(rules, category="0505", lineage=LINEAGE, serves=lambda d, l: True):
    r = domain.route(rules, category, lineage, serves)
    return r.id if r else None


def test_the_most_specific_rule_wins():
    rules = [rule(1), rule(2, "05"), rule(3, "0505"), rule(4, "05", "330103"), rule(5, "", "330103001002")]
    assert route(rules) == 3                       # the longest category beats any grid
    assert route(rules, "0501") == 4               # same category length: the deeper grid
    assert route(rules, "0501", ["330100", "330102", "330102001", "330102001001", "330102001001001"]) == 2
    assert route(rules, "0601") == 5               # only grid rules match: the deepest
    assert route([rule(1, "05"), rule(2, "05", prio=1)], "0501") == 2  # priority as the last word


def test_no_match_goes_to_the_manual_queue_and_departments_must_serve_the_place():
    assert route([rule(1, "06")], "0505") is None
    assert route([rule(1, "05", dept="FAR")], serves=lambda d, l: d != "FAR") is None


def test_ties_are_found_at_write_time():
    existing = [rule(1, "05", "330103"), rule(2, "05")]
    assert domain.tie_with(rule(0, "05", "330103"), existing).id == 1
    assert domain.tie_with(rule(0, "05", "330103", prio=2), existing) is None
    assert domain.tie_with(rule(0, "0505"), existing) is None


def test_escalation_climbs_the_lineage():
    assert [domain.escalation_unit(LINEAGE, level) for level in (1, 2, 3, 4, 5)] == \
        ["330103001002", "330103001", "330103", "330100", "330100"]


def test_rule_checks():
    with pytest.raises(InvalidArgument):
        domain.check_rule("05", "", 300, 30, 0)
    with pytest.raises(InvalidArgument):
        domain.check_rule("05", "12345", 30, 300, 0)


CAL = WorkCalendar(holidays=frozenset({date(2026, 10, 1)}), makeup_days=frozenset({date(2026, 10, 10)}))


def at(y, m, d, h, mi=0):
    return datetime(y, m, d, h, mi, tzinfo=SH)


def test_working_time_skips_the_weekend():
    # Friday 2026-11-27 17:00 + 2 working hours: one hour on Friday, one on Monday morning.
    assert CAL.add(at(2026, 11, 27, 17), timedelta(hours=2)) == at(2026, 11, 30, 10)


def test_working_time_skips_lunch_and_nights():
    assert CAL.add(at(2026, 11, 24, 11, 30), timedelta(hours=1)) == at(2026, 11, 24, 14, 0)
    assert CAL.add(at(2026, 11, 24, 20), timedelta(minutes=30)) == at(2026, 11, 25, 9, 30)


def test_holidays_and_makeup_days():
    assert CAL.add(at(2026, 9, 30, 17, 30), timedelta(hours=1)) == at(2026, 10, 2, 9, 30)  # Oct 1 off
    assert CAL.add(at(2026, 10, 9, 17, 30), timedelta(hours=1)) == at(2026, 10, 10, 9, 30)  # Saturday worked


def test_working_time_keeps_the_callers_time_zone():
    start = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # 17:00 in Shanghai
    assert CAL.add(start, timedelta(hours=2)) == datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)


def test_calendar_file_checks():
    assert parse_calendar({"weekdays": [1, 2, 3, 4, 5, 6]}).is_working_day(date(2026, 11, 28))
    with pytest.raises(InvalidArgument, match="time zone"):
        parse_calendar({"timezone": "Mars/Olympus"})
    with pytest.raises(InvalidArgument, match="overlap"):
        parse_calendar({"hours": [["09:00", "12:00"], ["11:00", "13:00"]]})


def test_evaluation_arithmetic():
    t0 = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)
    f = evaluation_rules.Figures()
    f.add(evaluation_rules.TaskFacts(t0, t0 + timedelta(hours=1), t0 + timedelta(minutes=30), t0 + timedelta(hours=4),
                                     t0 + timedelta(hours=2), t0 + timedelta(hours=3), 0,
                                     handling=timedelta(hours=2)))      # on time all the way
    f.add(evaluation_rules.TaskFacts(t0, t0 + timedelta(hours=1), t0 + timedelta(hours=2), t0 + timedelta(hours=4),
                                     t0 + timedelta(hours=6), t0 + timedelta(hours=7), 1,
                                     handling=timedelta(hours=6)))      # late, reworked
    f.add(evaluation_rules.TaskFacts(None, None, None, None, None, None, 0))  # never dispatched
    r = f.rates()
    assert (r["dispatched"], r["acknowledged_on_time"], r["resolved_on_time"]) == (2, 1, 1)
    assert (r["closure_rate"], r["on_time_closure_rate"], r["rework_rate"]) == (1.0, 0.5, 0.5)
    assert r["mean_hours_to_resolve"] == 4.0


# --- deadlines ------------------------------------------------------------------------------

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # Friday 17:00 in Shanghai
WORKING_RULE = domain.Rule(1, "03", "", "D", 0, 60, 1440, True)
WALL_RULE = domain.Rule(2, "05", "", "D", 0, 30, 240, False)
BY_HAND = (NOW + timedelta(minutes=domain.DEFAULT_ACK_MINUTES), NOW + timedelta(minutes=domain.DEFAULT_RESOLVE_MINUTES))


def test_a_rules_deadlines_count_on_its_clock_where_the_rule_chose_or_rework_restarts():
    for path in (domain.ROUTED, domain.REOPENED):
        assert domain.due_dates(WORKING_RULE, path, NOW, CAL) == (CAL.add(NOW, timedelta(minutes=60)),
                                                                   CAL.add(NOW, timedelta(minutes=1440)))
        assert domain.due_dates(WALL_RULE, path, NOW, CAL) == (NOW + timedelta(minutes=30), NOW + timedelta(hours=4))


def test_a_choice_made_by_hand_gets_the_defaults_on_the_wall_clock():
    assert domain.due_dates(None, domain.BY_HAND, NOW, CAL) == BY_HAND
    assert domain.due_dates(WORKING_RULE, domain.BY_HAND, NOW, CAL) == BY_HAND
    assert domain.due_dates(None, domain.REOPENED, NOW, CAL) == BY_HAND  # reopened, and no rule had chosen


def test_a_reroute_restarts_only_the_time_to_acknowledge():
    assert domain.due_dates(WORKING_RULE, domain.REROUTED, NOW, CAL) == (BY_HAND[0], None)


# --- following the incident -----------------------------------------------------------------

def test_dispatch_says_what_its_task_does_with_every_event_incidents_actions_emit():
    """dispatch keeps its own map (it imports nothing of incidents at run time); a new incident
    action fails here until dispatch follows its event or ignores it on purpose."""
    from services.incidents.domain import EVENT_TYPES, REPORTED_EVENT
    followed = set(domain.TASK_FOLLOWS)
    assert followed.isdisjoint(domain.TASK_IGNORES)
    placed = followed | domain.TASK_IGNORES | {domain.INCIDENT_REPORTED}
    assert placed == set(EVENT_TYPES), (
        f"services/dispatch/domain.py does not say what the task does with {sorted(set(EVENT_TYPES) - placed)} "
        f"(TASK_FOLLOWS or TASK_IGNORES); incidents emits no {sorted(placed - set(EVENT_TYPES))}")
    assert domain.INCIDENT_REPORTED == REPORTED_EVENT
