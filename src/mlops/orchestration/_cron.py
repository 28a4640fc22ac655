"""Cron schedules in a time zone: due instants, correct across daylight-saving changes.

croniter walks naive wall-clock times; each wall time is then placed in the zone:

- a wall time that does not exist (clocks spring forward over it) fires at the instant
  it names with the offset in force before the change: 02:30 on a night that skips from
  02:00 to 03:00 fires at 03:30. Wall times that land on the same instant fire once.
- a wall time that happens twice (clocks fall back) fires at its first occurrence,
  except for schedules that run every hour (hour field ``*``), which fire in both
  repeated hours, like cron does.

Every due time is an instant in milliseconds since the epoch.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta

from croniter import CroniterBadDateError, croniter

from mlops.errors import InvalidInput

__all__ = ["CronSchedule", "check_cron", "check_schedule", "check_timezone"]

# Every DST shift on record is under 3 hours: wall times further than this from a bound
# cannot name an instant on the other side of it. Where the offset does not change
# within a day either side, a wall time names exactly one instant and needs no slack.
_SLACK = timedelta(hours=3)
# croniter steps strictly past its start: start a minute out, and let the bounds filter.
_NO_SLACK = timedelta(minutes=1)
_CHANGE_WINDOW_MS = 26 * 3600 * 1000
_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def check_cron(expression: object) -> str:
    """A five-field cron expression (or an alias such as ``@daily``), else InvalidInput."""
    if not isinstance(expression, str) or not expression.strip():
        raise InvalidInput(
            f"schedule must be a cron expression such as '0 3 * * *' (daily at 03:00); "
            f"got {expression!r}"
        )
    text = " ".join(expression.split())
    fields = text.split(" ")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            raise InvalidInput(
                f"schedule {expression!r} is not a cron alias; use one of {', '.join(_ALIASES)} "
                "or five fields such as '0 3 * * *'"
            )
    elif len(fields) != 5:
        raise InvalidInput(
            f"schedule {expression!r} has {len(fields)} fields; a cron expression has five: "
            "minute hour day-of-month month day-of-week, such as '*/15 * * * *'"
        )
    if not croniter.is_valid(text):
        raise InvalidInput(
            f"schedule {expression!r} is not a valid cron expression; fields are minute (0-59) "
            "hour (0-23) day-of-month (1-31) month (1-12) day-of-week (0-6, 0 = Sunday), "
            "e.g. '30 2 * * 1-5'"
        )
    return text


def check_timezone(name: object) -> zoneinfo.ZoneInfo:
    """The IANA time zone ``name`` (e.g. "Europe/Paris"), else InvalidInput."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"timezone must be an IANA name such as 'Europe/Paris'; got {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"timezone {name!r} is unknown; give an IANA name such as 'UTC', 'Europe/Paris' "
            "or 'America/New_York'"
        ) from None


class CronSchedule:
    """A cron expression read in a time zone; immutable and thread-safe."""

    def __init__(self, expression: str, timezone: str = "UTC") -> None:
        self.expression = check_cron(expression)
        self.timezone = timezone
        self._zone = check_timezone(timezone)
        hours = croniter(self.expression).expanded[1]
        self._every_hour = hours == ["*"] or len(hours) == 24

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.timezone!r})"

    def next_after(self, after_ms: int) -> int | None:
        """The first due instant strictly after ``after_ms``; None if it never fires again."""
        try:
            walls = croniter(self.expression, self._wall(after_ms) - self._slack(after_ms))
            best: int | None = None
            best_wall = datetime.min
            while True:
                wall = walls.get_next(datetime)
                if best is not None and wall >= best_wall + self._slack(best):
                    return best
                for instant in self._instants(wall):
                    if instant > after_ms and (best is None or instant < best):
                        best, best_wall = instant, wall
        except CroniterBadDateError:  # e.g. "0 0 30 2 *": no such day
            return best

    def latest(self, after_ms: int, until_ms: int, limit: int) -> list[int]:
        """Up to ``limit`` of the latest due instants in (after_ms, until_ms], oldest first."""
        if until_ms <= after_ms or limit < 1:
            return []
        floor = self._wall(after_ms) - self._slack(after_ms)
        found: set[int] = set()
        try:
            walls = croniter(self.expression, self._wall(until_ms) + self._slack(until_ms))
            while True:
                wall = walls.get_prev(datetime)
                if wall < floor:
                    break
                if len(found) >= limit:
                    kept = sorted(found, reverse=True)[limit - 1]
                    if wall + self._slack(kept) <= self._wall(kept):
                        break
                found.update(i for i in self._instants(wall) if after_ms < i <= until_ms)
        except CroniterBadDateError:
            pass
        return sorted(found)[-limit:]

    def _slack(self, instant_ms: int) -> timedelta:
        """How far wall times near ``instant_ms`` may be from the instants they name."""
        before = datetime.fromtimestamp((instant_ms - _CHANGE_WINDOW_MS) / 1000, self._zone)
        after = datetime.fromtimestamp((instant_ms + _CHANGE_WINDOW_MS) / 1000, self._zone)
        return _NO_SLACK if before.utcoffset() == after.utcoffset() else _SLACK

    def _wall(self, instant_ms: int) -> datetime:
        """The naive local wall time of an instant."""
        return datetime.fromtimestamp(instant_ms / 1000, self._zone).replace(tzinfo=None)

    def _instants(self, wall: datetime) -> list[int]:
        """The instants a cron wall time names in the zone (see the module docstring)."""
        first = _ms(wall.replace(tzinfo=self._zone, fold=0))
        if self._wall(first) != wall:
            return [first]  # skipped by a spring-forward change: fires shifted by the gap
        if not self._every_hour:
            return [first]
        second = _ms(wall.replace(tzinfo=self._zone, fold=1))
        return [first] if second == first else [first, second]


def _ms(moment: datetime) -> int:
    return round(moment.astimezone(UTC).timestamp() * 1000)


def check_schedule(expression: object, timezone: object) -> CronSchedule:
    """A schedule that fires at least once more, else InvalidInput saying why."""
    zone_name = timezone if isinstance(timezone, str) else ""
    check_timezone(timezone)
    schedule = CronSchedule(check_cron(expression), zone_name)
    if schedule.next_after(_ms(datetime.now(UTC))) is None:
        raise InvalidInput(
            f"schedule {expression!r} never fires (no date matches it); check the "
            "day-of-month and month fields"
        )
    return schedule
