"""ActiveRun: a handle on a RUNNING run, and a context manager that ends it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlops.artifacts import ArtifactInfo
from mlops.errors import MLOpsError
from mlops.tracking._entities import Dataset, Metric, Run, RunStatus
from mlops.tracking._writer import MetricLike, metric_point

if TYPE_CHECKING:
    from mlops.tracking._tracker import ExperimentTracker


class ActiveRun:
    """Log to one run. Leaving a ``with`` block ends it FINISHED, or FAILED on error.

    With ``async_logging=True`` metrics are buffered and written in batches by a
    background thread; they are flushed by ``flush()``, when the run ends, and at exit.
    """

    def __init__(
        self,
        tracker: ExperimentTracker,
        run_id: str,
        experiment_id: int,
        *,
        async_logging: bool = False,
    ) -> None:
        self._tracker = tracker
        self.id = run_id
        self.experiment_id = experiment_id
        self._buffer = tracker.open_buffer(run_id) if async_logging else None
        self._ended = False

    def __repr__(self) -> str:
        return f"<ActiveRun {self.id} experiment={self.experiment_id}>"

    @property
    def ended(self) -> bool:
        """Whether this handle has ended the run."""
        return self._ended

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._ended:
            return
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self._end_quietly(RunStatus.KILLED)
        else:
            self._end_quietly(RunStatus.FAILED)

    def _end_quietly(self, status: RunStatus) -> None:
        # The block's own exception is what the caller must see; a buffered write error
        # is lost with the failed run.
        self._ended = True
        with contextlib.suppress(MLOpsError):
            self._tracker.end_run(self.id, status)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Flush buffered metrics and end the run with ``status``."""
        self._ended = True
        self._tracker.end_run(self.id, status)

    def flush(self) -> None:
        """Write buffered metrics now (a no-op for synchronous runs)."""
        if self._buffer is not None:
            self._buffer.flush()

    @property
    def info(self) -> Run:
        """A fresh snapshot of the run (flushes buffered metrics first)."""
        self.flush()
        return self._tracker.get_run(self.id)

    def log_metric(
        self, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        if self._buffer is not None:
            self._buffer.add([metric_point(key, value, step, timestamp)])
        else:
            self._tracker.log_metric(self.id, key, value, step, timestamp)

    def log_metrics(
        self, values: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        if self._buffer is not None:
            rows = [metric_point(key, value, step, timestamp) for key, value in values.items()]
            self._buffer.add(rows)
        else:
            self._tracker.log_metrics(self.id, values, step, timestamp)

    def log_batch(
        self,
        metrics: Iterable[MetricLike] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        self._tracker.log_batch(self.id, metrics, params, tags)

    def log_param(self, key: str, value: Any) -> None:
        self._tracker.log_param(self.id, key, value)

    def log_params(self, values: Mapping[str, Any]) -> None:
        self._tracker.log_params(self.id, values)

    def set_tag(self, key: str, value: Any) -> None:
        self._tracker.set_tag(self.id, key, value)

    def set_tags(self, values: Mapping[str, Any]) -> None:
        self._tracker.set_tags(self.id, values)

    def log_input(self, dataset: Dataset, context: str = "training") -> None:
        self._tracker.log_input(self.id, dataset, context)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        return self._tracker.log_artifact(self.id, local_path, artifact_path)

    def log_text(self, text: str, artifact_file: str) -> ArtifactInfo:
        return self._tracker.log_text(self.id, text, artifact_file)

    def log_dict(self, data: Mapping[str, Any], artifact_file: str) -> ArtifactInfo:
        return self._tracker.log_dict(self.id, data, artifact_file)

    def get_metric_history(self, key: str) -> list[Metric]:
        self.flush()
        return self._tracker.get_metric_history(self.id, key)

    def start_child(self, name: str | None = None, **kwargs: Any) -> ActiveRun:
        """Start a nested run under this one, in the same experiment."""
        return self._tracker.start_run(name=name, parent=self.id, **kwargs)
