"""Cron schedule math in time zones: due instants across DST changes, bounds, bad input."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from mlops.errors import InvalidInput
from mlops.orchestration import CronSchedule
from mlops.orchestration._cron import check_schedule

NEW_YORK = ZoneInfo("America/New_York")


def _ms(*fields: int, zone: ZoneInfo | None = None, fold: int = 0) -> int:
    moment = datetime(*fields, tzinfo=zone or UTC, fold=fold)  # type: ignore[misc]
    return round(moment.timestamp() * 1000)


def _local(instants: list[int], zone: ZoneInfo = NEW_YORK) -> list[str]:
    return [datetime.fromtimestamp(ms / 1000, zone).isoformat() for ms in instants]


def test_due_times_are_inclusive_of_the_upper_bound_and_exclusive_of_the_lower() -> None:
    daily = CronSchedule("0 12 * * *")
    noon = _ms(2025, 1, 1, 12, 0)
    assert daily.latest(noon - 1, noon, 5) == [noon]
    assert daily.latest(noon, noon + 1, 5) == []
    assert daily.next_after(noon - 1) == noon
    assert daily.next_after(noon) == noon + 86_400_000


def test_latest_keeps_the_most_recent_due_times_oldest_first() -> None:
    hourly = CronSchedule("0 * * * *")
    start = _ms(2025, 1, 1, 0, 0)
    assert hourly.latest(start, start + 5 * 3_600_000, 2) == [
        start + 4 * 3_600_000,
        start + 5 * 3_600_000,
    ]
    every_minute = CronSchedule("* * * * *")  # a year of due times, only the last is read
    end = _ms(2025, 6, 1, 0, 0)
    assert every_minute.latest(_ms(2024, 6, 1, 0, 0), end, 1) == [end]


def test_a_daily_time_skipped_by_spring_forward_runs_once_shifted_by_the_gap() -> None:
    nightly = CronSchedule("30 2 * * *", "America/New_York")  # 02:00 → 03:00 on 2025-03-09
    due = nightly.latest(_ms(2025, 3, 7, 12, 0), _ms(2025, 3, 10, 12, 0), 10)
    assert _local(due) == [
        "2025-03-08T02:30:00-05:00",
        "2025-03-09T03:30:00-04:00",
        "2025-03-10T02:30:00-04:00",
    ]


def test_a_daily_time_repeated_by_fall_back_runs_once_at_its_first_occurrence() -> None:
    nightly = CronSchedule("30 1 * * *", "America/New_York")  # 01:00-02:00 twice on 2025-11-02
    due = nightly.latest(_ms(2025, 11, 1, 0, 0), _ms(2025, 11, 3, 12, 0), 10)
    assert _local(due) == [
        "2025-11-01T01:30:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-03T01:30:00-05:00",
    ]
    first = _ms(2025, 11, 2, 1, 30, zone=NEW_YORK, fold=0)
    assert _local([nightly.next_after(first) or 0]) == ["2025-11-03T01:30:00-05:00"]


def test_an_every_hour_schedule_runs_in_both_repeated_hours_and_never_twice_at_once() -> None:
    half_hourly = CronSchedule("*/30 * * * *", "America/New_York")
    fall = half_hourly.latest(_ms(2025, 11, 2, 4, 0), _ms(2025, 11, 2, 8, 0), 100)
    assert _local(fall) == [
        "2025-11-02T00:30:00-04:00",
        "2025-11-02T01:00:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-02T01:00:00-05:00",
        "2025-11-02T01:30:00-05:00",
        "2025-11-02T02:00:00-05:00",
        "2025-11-02T02:30:00-05:00",
        "2025-11-02T03:00:00-05:00",
    ]
    assert all(b - a == 1_800_000 for a, b in itertools.pairwise(fall))
    spring = half_hourly.latest(_ms(2025, 3, 9, 6, 0), _ms(2025, 3, 9, 8, 0), 100)
    # 02:00 and 02:30 do not exist; they land on 03:00 and 03:30, which fire once each.
    assert _local(spring) == [
        "2025-03-09T01:30:00-05:00",
        "2025-03-09T03:00:00-04:00",
        "2025-03-09T03:30:00-04:00",
        "2025-03-09T04:00:00-04:00",
    ]


def test_next_after_walks_through_a_fall_back_night_in_real_time_order() -> None:
    half_hourly = CronSchedule("*/30 * * * *", "America/New_York")
    instant = _ms(2025, 11, 2, 0, 45, zone=NEW_YORK)
    walked = []
    for _ in range(5):
        instant = half_hourly.next_after(instant) or 0
        walked.append(instant)
    assert _local(walked) == [
        "2025-11-02T01:00:00-04:00",
        "2025-11-02T01:30:00-04:00",
        "2025-11-02T01:00:00-05:00",
        "2025-11-02T01:30:00-05:00",
        "2025-11-02T02:00:00-05:00",
    ]


def test_a_schedule_reads_its_fields_in_its_time_zone() -> None:
    paris = CronSchedule("0 9 * * 1-5", "Europe/Paris")
    due = paris.next_after(_ms(2025, 7, 4, 12, 0))  # a Friday noon UTC → Monday 09:00 CEST
    assert due == _ms(2025, 7, 7, 7, 0)


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("61 * * * *", "'61 * * * *' is not a valid cron expression"),
        ("* * * *", "'* * * *' has 4 fields"),
        ("0 0 * * * *", "has 6 fields"),
        ("@fortnightly", "'@fortnightly' is not a cron alias"),
        ("", "schedule must be a cron expression"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_invalid_schedules_say_what_is_wrong(expression: str, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(fragment)):
        check_schedule(expression, "UTC")


def test_an_unknown_time_zone_is_refused_with_examples() -> None:
    with pytest.raises(InvalidInput, match="timezone 'Mars/Olympus' is unknown; give an IANA"):
        CronSchedule("0 * * * *", "Mars/Olympus")


def test_aliases_work() -> None:
    assert CronSchedule("@daily").next_after(_ms(2025, 1, 1, 0, 0)) == _ms(2025, 1, 2, 0, 0)
