"""Service-level clocks: when a case is due, counted in the team's working hours and time zone.

A first-response target of 1 h for a complaint posted at 19:30 on Friday, with working hours 08:00–20:00
Monday to Friday in Europe/Paris, falls due at 08:30 on Monday: the clock only runs while someone is
at the desk. Without `working_hours` the clock runs around the week. All inputs and outputs are
naive UTC datetimes, as the store keeps them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Calendar:
    tz: str = "UTC"
    days: tuple[str, ...] = DAYS
    start: time = time(0, 0)
    end: time | None = None            # None: around the clock

    @property
    def always_open(self) -> bool:
        return self.end is None and set(self.days) == set(DAYS)

    def _open_intervals(self, day: datetime):
        """The working interval (local, aware) of the local date `day`, if it is a working day."""
        if DAYS[day.weekday()] not in self.days:
            return None
        zone = ZoneInfo(self.tz)
        opens = datetime.combine(day.date(), self.start, zone)
        closes = (datetime.combine(day.date(), self.end, zone) if self.end is not None
                  else datetime.combine(day.date() + timedelta(days=1), time(0, 0), zone))
        return opens, closes


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def add_working_time(start: datetime, duration: timedelta, calendar: Calendar) -> datetime:
    """`start` plus `duration` of working time (naive UTC in, naive UTC out)."""
    if calendar.always_open:
        return start + duration
    zone = ZoneInfo(calendar.tz)
    now = _aware(start).astimezone(zone)
    left = duration
    for _ in range(3660):   # ten years of days: a calendar with no working day at all is refused below
        window = calendar._open_intervals(now)
        if window:
            opens, closes = window
            begin = max(now, opens)
            if begin < closes:
                if begin + left <= closes:
                    return (begin + left).astimezone(timezone.utc).replace(tzinfo=None)
                left -= closes - begin
        now = datetime.combine(now.date() + timedelta(days=1), time(0, 0), zone)
    raise ValueError("the working-hours calendar has no working time")


def working_time_between(start: datetime, end: datetime, calendar: Calendar) -> timedelta:
    """Working time from `start` to `end` (negative when end is earlier): 'SLA in 12 min' counts this."""
    if end < start:
        return -working_time_between(end, start, calendar)
    if calendar.always_open:
        return end - start
    zone = ZoneInfo(calendar.tz)
    now, stop = _aware(start).astimezone(zone), _aware(end).astimezone(zone)
    total = timedelta(0)
    while now < stop:
        window = calendar._open_intervals(now)
        if window:
            opens, closes = window
            begin, finish = max(now, opens), min(stop, closes)
            if begin < finish:
                total += finish - begin
        now = datetime.combine(now.date() + timedelta(days=1), time(0, 0), zone)
    return total


def humanise(delta: timedelta) -> str:
    """'12 min', '3 h 05', '2 d 4 h': how long, for a person."""
    minutes = int(abs(delta).total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d}"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def sla_state(due: datetime | None, now: datetime, calendar: Calendar, warn: timedelta) -> tuple[str, str]:
    """('breached' | 'due_soon' | 'ok' | 'none', a label such as 'SLA in 12 min' or 'SLA breached 2 h 05 ago')."""
    if due is None:
        return "none", "no SLA"
    left = working_time_between(now, due, calendar)
    if left <= timedelta(0):
        return "breached", f"SLA breached {humanise(now - due)} ago"
    return ("due_soon" if left <= warn else "ok"), f"SLA in {humanise(left)}"
