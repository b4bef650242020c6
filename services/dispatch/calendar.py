"""Working time: deadlines that count only the hours a city's departments work.

Plain Python, no I/O. A calendar has working hours on working days in one time zone,
holidays (no work on a weekday) and make-up working days (调休: work on a weekend day)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.errors import InvalidArgument


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str = "Asia/Shanghai"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday = 0
    hours: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 30), time(18, 0)))
    holidays: frozenset[date] = field(default_factory=frozenset)
    makeup_days: frozenset[date] = field(default_factory=frozenset)

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_days:
            return True
        return day.weekday() in self.weekdays and day not in self.holidays

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment `duration` of working time after `start` (aware datetimes)."""
        if start.tzinfo is None:
            raise ValueError("start must be time-zone aware")
        zone = ZoneInfo(self.timezone)
        left = duration
        cursor = start.astimezone(zone)
        for _ in range(3700):  # ten years of days: a calendar with no working time at all ends here
            day = cursor.date()
            if self.is_working_day(day):
                for opens, closes in self.hours:
                    begin = max(cursor, datetime.combine(day, opens, zone))
                    end = datetime.combine(day, closes, zone)
                    if begin >= end:
                        continue
                    if begin + left <= end:
                        return (begin + left).astimezone(start.tzinfo)
                    left -= end - begin
                    cursor = end
            cursor = datetime.combine(day + timedelta(days=1), time(0, 0), zone)
        raise InvalidArgument("the calendar has no working time")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """The working time in [start, end) (aware datetimes); zero when end is not after start."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be time-zone aware")
        zone = ZoneInfo(self.timezone)
        total = timedelta(0)
        day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
        while day <= last:
            if self.is_working_day(day):
                for opens, closes in self.hours:
                    begin = max(start, datetime.combine(day, opens, zone))
                    finish = min(end, datetime.combine(day, closes, zone))
                    if finish > begin:
                        total += finish - begin
            day += timedelta(days=1)
        return total


def _time(value: str, where: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{where}: {value!r} is not HH:MM")


def _date(value, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidArgument(f"{where}: {value!r} is not YYYY-MM-DD")


def parse_calendar(doc: dict) -> WorkCalendar:
    if not isinstance(doc, dict):
        raise InvalidArgument("calendar must be a mapping")
    tz = doc.get("timezone", "Asia/Shanghai")
    try:
        ZoneInfo(tz)
    except Exception:
        raise InvalidArgument(f"calendar: unknown time zone {tz!r}")
    hours = []
    for i, pair in enumerate(doc.get("hours", [["09:00", "12:00"], ["13:30", "18:00"]])):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise InvalidArgument(f"calendar hours {i}: give [opens, closes]")
        opens, closes = _time(pair[0], f"hours {i}"), _time(pair[1], f"hours {i}")
        if opens >= closes or (hours and opens < hours[-1][1]):
            raise InvalidArgument(f"calendar hours {i}: periods must be in order and not overlap")
        hours.append((opens, closes))
    weekdays = doc.get("weekdays", [1, 2, 3, 4, 5])  # ISO: Monday = 1
    if not all(isinstance(d, int) and 1 <= d <= 7 for d in weekdays):
        raise InvalidArgument("calendar weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
    return WorkCalendar(timezone=tz, weekdays=frozenset(d - 1 for d in weekdays), hours=tuple(hours),
                        holidays=frozenset(_date(d, "holidays") for d in doc.get("holidays", [])),
                        makeup_days=frozenset(_date(d, "makeup_days") for d in doc.get("makeup_days", [])))
