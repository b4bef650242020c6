"""Evaluation arithmetic alone: voided out of the denominators, parked its own figure, returns
and rework as rates, pauses out of the handling time, and the composite index with its formula."""
from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone

import pytest

from services.dispatch import evaluation_rules as ev
from shared.errors import InvalidArgument

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=timezone.utc)
WEIGHTS = ev.parse_weights({"index_weights": {"on_time_closure_rate": 40, "closure_rate": 20, "rework_rate": 20,
                                              "acknowledged_on_time_rate": 10, "return_rate": 10}})


def task(**kw):
    base = dict(dispatched_at=T0, ack_due_at=T0 + timedelta(hours=1), acknowledged_at=T0 + timedelta(minutes=30),
                resolve_due_at=T0 + timedelta(hours=8), resolved_at=T0 + timedelta(hours=4),
                closed_at=T0 + timedelta(hours=5), reopened=0, handling=timedelta(hours=4))
    return ev.TaskFacts(**{**base, **kw})


def test_the_standards_counting_on_five_tasks():
    f = ev.Figures()
    f.add(task())                                                          # on time, closed
    f.add(task(acknowledged_at=T0 + timedelta(hours=2), resolved_at=T0 + timedelta(hours=9),
               handling=timedelta(hours=9), closed_at=T0 + timedelta(hours=10), reopened=1))  # late, reworked
    f.add(task(status="parked", acknowledged_at=T0 + timedelta(minutes=10), resolved_at=None, closed_at=None,
               handling=None, paused_minutes=600))                         # parked: 10 h paused
    f.add(task(status="voided"))                                           # filed in error: out
    f.add(task(extended_minutes=120, supervised=True, paused_minutes=60))  # handled 4 h, 1 h of it paused
    f.add_return()                                                         # one returned to dispatch
    r = f.rates(WEIGHTS)
    assert (r["dispatched"], r["voided"], r["parked"], r["returned"], r["supervised"], r["extended"]) == \
        (4, 1, 1, 1, 1, 1)
    assert r["acknowledged_on_time_rate"] == 3 / 4 and r["resolved_on_time_rate"] == 2 / 4
    assert r["closure_rate"] == 3 / 4 and r["on_time_closure_rate"] == 2 / 4
    assert r["rework_rate"] == 1 / 4 and r["return_rate"] == 1 / 5  # 4 kept + 1 returned received
    assert r["mean_hours_to_resolve"] == pytest.approx((4 + 9 + 3) / 3)
    assert r["paused_hours"] == pytest.approx(11)
    # 100 x (40 x 0.5 + 20 x 0.75 + 20 x 0.75 + 10 x 0.75 + 10 x 0.8) / 100
    assert r["index"] == pytest.approx(20 + 15 + 15 + 7.5 + 8)


def test_the_formula_names_every_weight_and_the_weights_are_checked():
    assert WEIGHTS.formula() == ("index = 100 x (40 x on_time_closure_rate + 20 x closure_rate + 20 x (1 - rework_rate) "
                                 "+ 10 x acknowledged_on_time_rate + 10 x (1 - return_rate)) / 100")
    for bad, message in (({}, "index_weights"), ({"index_weights": {"speed": 1}}, "not a measure"),
                         ({"index_weights": {"closure_rate": -1}}, "0..100"),
                         ({"index_weights": {"closure_rate": True}}, "0..100"),
                         ({"index_weights": {"closure_rate": 0}}, "more than 0")):
        with pytest.raises(InvalidArgument, match=message):
            ev.parse_weights(bad)


def test_no_tasks_no_index():
    assert ev.Figures().rates(WEIGHTS)["index"] == 0.0


def test_the_bundled_weights_load_and_a_bad_operator_file_is_refused(tmp_path, monkeypatch):
    evaluation = importlib.import_module("services.dispatch.operations.evaluation")  # the module, not the function
    evaluation.weights.cache_clear()
    try:
        assert evaluation.formula().startswith("index = 100 x (40 x on_time_closure_rate")
        bad = tmp_path / "evaluation.yaml"
        bad.write_text("index_weights: {closure_rate: 20, speed: 5}\n", encoding="utf-8")
        monkeypatch.setenv("GRIDBUS_DISPATCH_EVALUATION", str(bad))
        evaluation.weights.cache_clear()
        with pytest.raises(InvalidArgument, match="'speed' is not a measure"):
            evaluation.formula()
    finally:
        monkeypatch.undo()
        evaluation.weights.cache_clear()
