"""The local executor: run ready steps in a thread pool, within a CPU budget.

Threads, not processes: a step's inputs and outputs are handed over in memory without
pickling them through a pipe, starting a step costs microseconds, and the steps that
matter most here (NumPy, pandas, scikit-learn, XGBoost, I/O) release the GIL while
they work. A process pool for pure-Python CPU-bound steps can come later, behind the
same interface.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from mlops.errors import InvalidInput
from mlops.pipelines._results import StepRun

__all__ = ["LocalExecutor", "StepTimeout", "call_with_timeout"]

Execute = Callable[[str], StepRun]
Skip = Callable[[str, StepRun], StepRun]
Cancel = Callable[[str], StepRun]
ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


class StepTimeout(TimeoutError):
    """A step did not return within its timeout (its thread is left running)."""


class LocalExecutor:
    """Runs steps in dependency order, independent ones at the same time.

    A step starts when the steps it depends on have succeeded and its ``cpu`` fits in
    what is left of ``max_workers`` (default: the machine's CPU count); a step that
    needs more than ``max_workers`` runs alone. ``max_workers=1`` runs every step in
    the calling thread, one after another.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidInput(
                f"max_workers must be a whole number of 1 or more, not {max_workers!r}"
            )
        self.max_workers = max_workers

    def run(
        self,
        order: Sequence[str],
        upstream: Mapping[str, Sequence[str]],
        cpu: Mapping[str, float],
        execute: Execute,
        skip: Skip,
        cancel: Cancel | None = None,
        should_stop: ShouldStop | None = None,
    ) -> dict[str, StepRun]:
        """Run ``order`` (a topological order); ``skip`` records a step whose upstream
        step (the record it gets) did not succeed. ``upstream`` lists, per step, the
        steps of ``order`` it depends on. Before each step starts ``should_stop`` is
        asked; once it says yes, ``cancel`` records every step not yet started."""
        stop = should_stop or _never
        if self.max_workers == 1 or len(order) == 1:
            return self._run_sequentially(order, upstream, execute, skip, cancel, stop)
        return self._run_in_pool(order, upstream, cpu, execute, skip, cancel, stop)

    @staticmethod
    def _run_sequentially(
        order: Sequence[str],
        upstream: Mapping[str, Sequence[str]],
        execute: Execute,
        skip: Skip,
        cancel: Cancel | None,
        stop: ShouldStop,
    ) -> dict[str, StepRun]:
        results: dict[str, StepRun] = {}
        for name in order:
            blocker = _blocker(upstream[name], results)
            if blocker is not None:
                results[name] = skip(name, blocker)
            elif cancel is not None and stop():
                results[name] = cancel(name)
            else:
                results[name] = execute(name)
        return results

    def _run_in_pool(
        self,
        order: Sequence[str],
        upstream: Mapping[str, Sequence[str]],
        cpu: Mapping[str, float],
        execute: Execute,
        skip: Skip,
        cancel: Cancel | None,
        stop: ShouldStop,
    ) -> dict[str, StepRun]:
        capacity = float(self.max_workers)
        need = {name: min(cpu[name], capacity) for name in order}
        # Enough threads for the most steps that can fit in the budget at once.
        threads = min(len(order), max(1, math.floor(capacity / min(need.values()))))
        results: dict[str, StepRun] = {}
        pending = list(order)
        running: dict[Future[StepRun], str] = {}
        used = 0.0
        with ThreadPoolExecutor(threads, thread_name_prefix="mlops-step") as pool:
            while pending or running:
                for name in list(pending):
                    if any(dep not in results for dep in upstream[name]):
                        continue
                    blocker = _blocker(upstream[name], results)
                    if blocker is not None:
                        results[name] = skip(name, blocker)
                        pending.remove(name)
                    elif cancel is not None and stop():
                        results[name] = cancel(name)
                        pending.remove(name)
                    elif not running or used + need[name] <= capacity:
                        running[pool.submit(execute, name)] = name
                        used += need[name]
                        pending.remove(name)
                if not running:
                    if pending:  # unreachable for a topological order; never spin
                        raise RuntimeError(f"steps {pending} cannot start; is the order valid?")
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    used -= need[name]
                    # execute() records step failures itself; what it raises is a failure
                    # of the platform (the tracking store), which ends the whole run.
                    results[name] = future.result()
        return results


def _blocker(dependencies: Sequence[str], results: Mapping[str, StepRun]) -> StepRun | None:
    """The first dependency that ended without an output, if any."""
    for dep in dependencies:
        if not results[dep].state.has_output:
            return results[dep]
    return None


def call_with_timeout(
    fn: Callable[..., Any], kwargs: Mapping[str, Any], timeout: float | None, name: str
) -> Any:
    """Call ``fn(**kwargs)``; past ``timeout`` seconds raise ``StepTimeout``.

    Python cannot kill a thread, so a step that times out keeps running in a daemon
    thread whose result is ignored; it holds no tracked run and writes no artifact.
    """
    if timeout is None:
        return fn(**kwargs)
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn(**kwargs)
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error
        finally:
            finished.set()

    thread = threading.Thread(target=target, name=f"mlops-step-{name}", daemon=True)
    thread.start()
    if not finished.wait(timeout):
        raise StepTimeout(
            f"step {name!r} did not finish within {timeout:g}s; its thread was abandoned "
            "(threads cannot be stopped). Raise @step(timeout=...) or make the step faster"
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
