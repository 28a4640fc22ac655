"""The scheduler of a pipeline run: start each step once its inputs are ready and its
CPUs fit in the budget, independent steps at the same time.

Each running step holds a thread of the driver, which does the step's tracking and
caching and waits while the step's backend (``_backends``) calls the function: in that
thread, in a worker process, or as a Ray task.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from mlops.errors import InvalidInput
from mlops.pipelines._backends import StepTimeout
from mlops.pipelines._results import StepRun, StepState

__all__ = ["LocalExecutor", "StepTimeout"]

#: Steps in flight at once when the budget is the cluster's (Ray), not this machine's.
MAX_IN_FLIGHT = 64

Execute = Callable[[str], StepRun]
Skip = Callable[[str, StepRun], StepRun]
Cancel = Callable[[str], StepRun]
ShouldStop = Callable[[], bool]


def _never() -> bool:
    return False


class LocalExecutor:
    """Runs steps in dependency order, independent ones at the same time.

    A step starts when the steps it depends on have succeeded and its ``cpu`` fits in
    what is left of ``max_workers`` (default: the machine's CPU count); a step that
    needs more than ``max_workers`` runs alone. ``max_workers=1`` runs every step in
    the calling thread, one after another. ``LocalExecutor.unbudgeted()`` starts every
    ready step (up to ``MAX_IN_FLIGHT``), for a cluster that places them itself.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise InvalidInput(
                f"max_workers must be a whole number of 1 or more, not {max_workers!r}"
            )
        self.max_workers = max_workers
        self._capacity = float(max_workers)

    @classmethod
    def unbudgeted(cls) -> LocalExecutor:
        """An executor that starts every ready step, leaving their placement to a cluster."""
        executor = cls(MAX_IN_FLIGHT)
        executor._capacity = math.inf
        return executor

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
        asked; once it says yes, ``cancel`` records every step not yet started (and
        the steps that wait on a cancelled one)."""
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
            if cancel is not None and _cancelled(blocker, stop):
                results[name] = cancel(name)
            elif blocker is not None:
                results[name] = skip(name, blocker)
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
        capacity = self._capacity
        need = {name: min(cpu[name], capacity) for name in order}
        # Enough threads for the most steps that can fit in the budget at once.
        fit = MAX_IN_FLIGHT if math.isinf(capacity) else capacity / min(need.values())
        threads = min(len(order), max(1, math.floor(fit)))
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
                    if cancel is not None and _cancelled(blocker, stop):
                        results[name] = cancel(name)
                        pending.remove(name)
                    elif blocker is not None:
                        results[name] = skip(name, blocker)
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


def _cancelled(blocker: StepRun | None, stop: ShouldStop) -> bool:
    """Whether a step not yet started is cancelled: it waits on a cancelled step, or it
    has all its inputs and the run is asked to stop. (A step whose input failed is
    skipped, stop or not: it could not have run anyway.)"""
    if blocker is not None:
        return blocker.state is StepState.CANCELLED
    return stop()


def _blocker(dependencies: Sequence[str], results: Mapping[str, StepRun]) -> StepRun | None:
    """The first dependency that ended without an output, if any."""
    for dep in dependencies:
        if not results[dep].state.has_output:
            return results[dep]
    return None
