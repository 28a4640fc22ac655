"""Tiny pipelines that the orchestration tests register as "orchestration.flows:<name>",
and the controls their steps obey (reset by the ``control`` fixture).

Steps that use the controls run in threads (``executor="threads"``): the default
executor sends a step to a worker process, with a copy of what it refers to.
"""

from __future__ import annotations

import builtins
import threading
import time
from typing import Any

from mlops.pipelines import Pipeline, step


class Clock:
    """Seconds since the epoch that move only when told (from a test or from a step)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = float(int(time.time())) if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> int:
        with self._lock:
            self.now += seconds
            return self.ms

    def set(self, epoch_ms: int) -> None:
        with self._lock:
            self.now = epoch_ms / 1000

    @property
    def ms(self) -> int:
        return round(self.now * 1000)


class Control:
    """What steps share with the test that runs them."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.calls: dict[str, int] = {}
        self.entered = threading.Event()
        self.gate = threading.Event()
        self._lock = threading.Lock()

    def count(self, name: str) -> int:
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1
            return self.calls[name]


CONTROL = Control()


def reset() -> Control:
    global CONTROL
    CONTROL = Control()
    return CONTROL


@step(cache=False)
def extract(rows: int = 3) -> list[int]:
    return list(range(rows))


@step(cache=False)
def total(extract: list[int]) -> int:
    return sum(extract)


hello = Pipeline("hello", [extract, total], params={"rows": 3})


def make_hello() -> Pipeline:
    """A zero-argument factory, the other kind of source."""
    return hello


@step
def constant(token: str = "") -> str:
    return f"value-{token}"


#: Cached steps: a second run with the same token reuses the first run's output.
cached = Pipeline("constant", [constant])


@step(cache=False)
def explode(error: str = "ValueError", fail_times: int = 1000) -> int:
    """Fails its first ``fail_times`` calls with ``error`` (a builtin exception name)."""
    calls = CONTROL.count("explode")
    if calls <= fail_times:
        raise getattr(builtins, error)(f"call {calls} failed")
    return calls


flaky = Pipeline("flaky", [explode])


@step(cache=False)
def slow_step(seconds: float = 0.0) -> float:
    """Moves the test clock, as if the step took ``seconds``."""
    CONTROL.clock.advance(seconds)
    return seconds


@step(cache=False)
def after_slow(slow_step: float) -> float:
    CONTROL.count("after_slow")
    return slow_step


slow = Pipeline("slow", [slow_step, after_slow])


@step(cache=False)
def wait_for_gate() -> int:
    CONTROL.entered.set()
    if not CONTROL.gate.wait(30):
        raise TimeoutError("the test never opened the gate")
    return 1


@step(cache=False)
def after_gate(wait_for_gate: int) -> int:
    CONTROL.count("after_gate")
    return wait_for_gate + 1


gated = Pipeline("gated", [wait_for_gate, after_gate])


@step(cache=False)
def sleep_for(seconds: float = 30.0) -> float:
    """Sleeps for real (in whichever process runs it)."""
    time.sleep(seconds)
    return seconds


@step(cache=False)
def after_sleep(sleep_for: float) -> float:
    return sleep_for


sleepy = Pipeline("sleepy", [sleep_for, after_sleep])

not_a_pipeline: Any = 42


def needs_arguments(name: str) -> Pipeline:
    return hello


class Doubler:
    """A tiny model for registry triggers (the python flavor: load + predict)."""

    def load(self, context: Any) -> None:
        pass

    def predict(self, inputs: Any) -> Any:
        return [2 * value for value in inputs]
