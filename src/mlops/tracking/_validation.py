"""Input checks shared by the tracker: names, keys, values."""

from __future__ import annotations

import math
import numbers
import re
import time
from typing import Any

from mlops.errors import InvalidInput

MAX_NAME_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_DESCRIPTION_LENGTH = 20000

# Keys may hold letters, digits, and the separators people use in metric names.
_KEY_PATTERN = re.compile(r"^[\w\-./ :]+$")
_RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_name(kind: str, name: object) -> str:
    """An experiment or run name: non-empty, printable, at most 250 characters."""
    if not isinstance(name, str):
        raise InvalidInput(f"{kind} name must be a string, got {type(name).__name__}")
    stripped = name.strip()
    if not stripped:
        raise InvalidInput(f"{kind} name is empty; give a name such as 'churn-model'")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{kind} name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if not name.isprintable():
        raise InvalidInput(f"{kind} name {name!r} contains control characters; remove them")
    if name != stripped:
        raise InvalidInput(f"{kind} name {name!r} has leading or trailing spaces; remove them")
    return name


def check_key(kind: str, key: object) -> str:
    """A param, metric or tag key: letters, digits, ``_ - . / : space``; ≤ 250 characters."""
    if not isinstance(key, str):
        raise InvalidInput(f"{kind} key must be a string, got {type(key).__name__}")
    if not key:
        raise InvalidInput(f"{kind} key is empty; give a name such as 'learning_rate'")
    if len(key) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{kind} key is {len(key)} characters long; the limit is {MAX_NAME_LENGTH}"
        )
    if _KEY_PATTERN.match(key) is None or key.startswith("/") or ".." in key:
        raise InvalidInput(
            f"{kind} key {key!r} has characters that are not allowed; use letters, digits, "
            "and '_', '-', '.', '/', ':' or spaces (no leading '/', no '..')"
        )
    return key


def check_run_id(run_id: object) -> str:
    if not isinstance(run_id, str) or _RUN_ID_PATTERN.match(run_id) is None:
        raise InvalidInput(f"run id {run_id!r} is not a run id (32 lowercase hex characters)")
    return run_id


def check_metric_value(key: str, value: object) -> float:
    """Any real number; NaN and ±inf are stored faithfully (a diverging loss is data)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInput(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}")
    return float(value)


def check_step(key: str, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise InvalidInput(f"step of metric {key!r} must be an integer, got {step!r}")
    step = int(step)
    if not -(2**63) <= step < 2**63:
        raise InvalidInput(f"step of metric {key!r} is out of the 64-bit range")
    return step


def check_timestamp(key: str, timestamp: object | None) -> int:
    if timestamp is None:
        return now_ms()
    if isinstance(timestamp, bool) or not isinstance(timestamp, numbers.Integral):
        raise InvalidInput(
            f"timestamp of metric {key!r} must be integer milliseconds since the epoch, "
            f"got {timestamp!r}"
        )
    milliseconds = int(timestamp)
    if not 0 <= milliseconds < 2**63:
        raise InvalidInput(f"timestamp of metric {key!r} is out of range: {milliseconds}")
    return milliseconds


def param_text(key: str, value: Any) -> str:
    """Params are stored as text; floats keep their repr so 0.1 stays '0.1'."""
    if isinstance(value, float) and not math.isfinite(value):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        text = str(value)
    if len(text) > MAX_PARAM_VALUE_LENGTH:
        raise InvalidInput(
            f"param {key!r} value is {len(text)} characters long; the limit is "
            f"{MAX_PARAM_VALUE_LENGTH} (log large values as an artifact instead)"
        )
    return text


def tag_text(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_VALUE_LENGTH:
        raise InvalidInput(
            f"tag {key!r} value is {len(text)} characters long; the limit is {MAX_TAG_VALUE_LENGTH}"
        )
    return text


def check_description(description: object) -> str | None:
    if description is None:
        return None
    if not isinstance(description, str):
        raise InvalidInput(f"description must be a string, got {type(description).__name__}")
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    return description
