"""Evaluation as the standard counts it, and the composite index. Plain Python, no I/O.

Over the tasks dispatched in a period:
- a voided case (filed in error) leaves every denominator: it is counted as `voided` only;
- a parked case is its own figure (`parked`), and its deadlines stood still while parked;
- deadlines are the task's as they stand: moved by approved extensions and by the working time
  the clock stood still (services/dispatch/procedures.py), so "on time" is against them;
- handling time is working time from dispatch to resolution less the time paused;
- returns (回退) and rework (返工) are rates of their own: a department's returns are over the
  tasks it received (those it kept and those it returned);
- supervised (督办) and extended (延期) tasks are counted.

The composite index is 100 x the weighted mean of its measures, each a rate in [0, 1] where
more is better (a rate where less is better enters as 1 - rate). The operator sets the weights
(services/dispatch/config/evaluation.yaml, GRIDBUS_DISPATCH_EVALUATION); `formula` prints them."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.errors import InvalidArgument

# The measures the index may weigh: (name, more is better).
MEASURES = {"acknowledged_on_time_rate": True, "resolved_on_time_rate": True, "closure_rate": True,
            "on_time_closure_rate": True, "rework_rate": False, "return_rate": False}


@dataclass(frozen=True)
class Weights:
    weights: tuple[tuple[str, float], ...]

    def formula(self) -> str:
        total = sum(w for _, w in self.weights)
        terms = " + ".join(f"{w:g} x {name if MEASURES[name] else f'(1 - {name})'}" for name, w in self.weights)
        return f"index = 100 x ({terms}) / {total:g}"

    def index(self, rates: dict) -> float:
        total = sum(w for _, w in self.weights)
        score = sum(w * (rates[name] if MEASURES[name] else 1 - rates[name]) for name, w in self.weights)
        return 100 * score / total


def parse_weights(doc) -> Weights:
    """The operator's index weights; InvalidArgument names what is wrong."""
    items = doc.get("index_weights") if isinstance(doc, dict) else None
    if not isinstance(items, dict) or not items:
        raise InvalidArgument("the evaluation file needs index_weights: a mapping of measure to weight")
    out = []
    for name, w in items.items():
        if name not in MEASURES:
            raise InvalidArgument(f"index_weights: {name!r} is not a measure; one of {', '.join(MEASURES)}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 100:
            raise InvalidArgument(f"index_weights: {name} must be a number 0..100, not {w!r}")
        if w:
            out.append((name, float(w)))
    if not out:
        raise InvalidArgument("index_weights: at least one weight must be more than 0")
    return Weights(tuple(out))


@dataclass
class TaskFacts:
    dispatched_at: datetime | None
    ack_due_at: datetime | None
    acknowledged_at: datetime | None
    resolve_due_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    status: str = "assigned"
    returned: int = 0
    paused_minutes: int = 0
    extended_minutes: int = 0
    supervised: bool = False
    handling: timedelta | None = None  # working time from dispatch to resolution (the caller's calendar)


@dataclass
class Figures:
    dispatched: int = 0                # the denominator: dispatched and not voided
    voided: int = 0
    parked: int = 0
    acknowledged_on_time: int = 0
    resolved_on_time: int = 0
    closed: int = 0
    closed_on_time: int = 0
    reworked: int = 0
    returned: int = 0                  # tasks returned by this group (its department(s))
    supervised: int = 0
    extended: int = 0
    resolved: int = 0
    handling_hours_total: float = 0.0  # working hours, pauses excluded
    paused_hours_total: float = 0.0

    def add(self, t: TaskFacts) -> None:
        if t.dispatched_at is None:
            return
        if t.status == "voided":
            self.voided += 1
            return
        self.dispatched += 1
        self.parked += t.status == "parked"
        self.supervised += t.supervised
        self.extended += t.extended_minutes > 0
        self.paused_hours_total += t.paused_minutes / 60
        if t.acknowledged_at and t.ack_due_at and t.acknowledged_at <= t.ack_due_at:
            self.acknowledged_on_time += 1
        on_time = bool(t.resolved_at and t.resolve_due_at and t.resolved_at <= t.resolve_due_at)
        self.resolved_on_time += on_time
        if t.resolved_at:
            self.resolved += 1
            if t.handling is not None:
                self.handling_hours_total += max(t.handling - timedelta(minutes=t.paused_minutes),
                                                 timedelta(0)) / timedelta(hours=1)
        if t.closed_at:
            self.closed += 1
            self.closed_on_time += on_time
        self.reworked += t.reopened > 0

    def add_return(self) -> None:
        """A task this group returned (回退): it is not in `dispatched` any more (it went on to
        another department), so it is added to what the group received."""
        self.returned += 1

    def rates(self, weights: Weights | None = None) -> dict:
        n = self.dispatched
        received = n + self.returned

        def rate(k: int, of: int) -> float:
            return k / of if of else 0.0
        out = {
            "dispatched": n, "voided": self.voided, "parked": self.parked, "supervised": self.supervised,
            "extended": self.extended, "returned": self.returned,
            "acknowledged_on_time": self.acknowledged_on_time, "resolved_on_time": self.resolved_on_time,
            "acknowledged_on_time_rate": rate(self.acknowledged_on_time, n),
            "resolved_on_time_rate": rate(self.resolved_on_time, n),
            "closure_rate": rate(self.closed, n), "on_time_closure_rate": rate(self.closed_on_time, n),
            "rework_rate": rate(self.reworked, n), "return_rate": rate(self.returned, received),
            "mean_hours_to_resolve": self.handling_hours_total / self.resolved if self.resolved else 0.0,
            "paused_hours": self.paused_hours_total,
        }
        out["index"] = weights.index(out) if weights and (n or self.returned) else 0.0
        return out
