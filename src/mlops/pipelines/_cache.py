"""Step outputs as artifacts with content hashes, and the cache that finds them again.

A step run's tags say where its output is and what it hashes to, so a later run (or a
cache lookup) needs only the tracking store:

    mlops.step.cache_key    what the output was computed from (code, params, inputs)
    mlops.step.output_run   the run holding the ``output.pkl`` artifact (itself, or the
                            run a cached step reused)
    mlops.step.output_hash  the SHA-256 of that artifact
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pickle
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.errors import IntegrityError, InvalidInput, NotFound
from mlops.tracking import ExperimentTracker, Run

__all__ = [
    "NONE_HASH",
    "OUTPUT_FILE",
    "TAG_CACHED",
    "TAG_CACHE_KEY",
    "TAG_OUTPUT_HASH",
    "TAG_OUTPUT_RUN",
    "TAG_PIPELINE",
    "TAG_STATE",
    "TAG_STEP",
    "OutputRef",
    "cache_key",
    "find_cached",
    "latest_output",
    "pickler",
    "serialize",
    "serialize_output",
    "value_hash",
]

OUTPUT_FILE = "output.pkl"
TAG_PIPELINE = "mlops.pipeline"
TAG_STEP = "mlops.step"
TAG_STATE = "mlops.step.state"
TAG_CACHED = "mlops.step.cached"
TAG_CACHE_KEY = "mlops.step.cache_key"
TAG_OUTPUT_RUN = "mlops.step.output_run"
TAG_OUTPUT_HASH = "mlops.step.output_hash"

_CACHE_KEY_VERSION = 1


def _find_pickler() -> Any:
    try:  # cloudpickle pickles lambdas and classes defined in __main__ or a notebook
        return importlib.import_module("cloudpickle")
    except ImportError:  # pragma: no cover - cloudpickle is a core dependency
        return pickle


#: cloudpickle where installed, else pickle: what outputs and worker requests are written with.
pickler = _find_pickler()

#: The hash recorded for a step that returned None; no artifact is stored for it.
NONE_HASH = hashlib.sha256(pickle.dumps(None, protocol=pickle.HIGHEST_PROTOCOL)).hexdigest()


def serialize(step: str, value: Any) -> bytes:
    """Pickle a step's output (with cloudpickle where installed)."""
    try:
        return bytes(pickler.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as error:
        raise InvalidInput(
            f"step {step!r} returned a {type(value).__name__} that cannot be pickled "
            f"({type(error).__name__}: {error}); return data (arrays, frames, models, "
            "dicts) rather than open files, locks or connections"
        ) from error


def serialize_output(step: str, outputs: tuple[str, ...], value: Any) -> bytes:
    """Check a step's output against its declared ``outputs``, then pickle it."""
    if outputs and (not isinstance(value, Mapping) or set(value) != set(outputs)):
        got = sorted(value) if isinstance(value, Mapping) else type(value).__name__
        raise InvalidInput(
            f"step {step!r} declares outputs {list(outputs)} but returned "
            f"{got}; return a dict with exactly those keys"
        )
    return serialize(step, value)


def value_hash(what: str, value: Any) -> str:
    """SHA-256 of a param value's pickle, for cache keys."""
    try:
        data = pickler.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise InvalidInput(
            f"{what} holds a {type(value).__name__} that cannot be pickled, so it cannot "
            f"be part of a cache key ({error}); pass plain data as params"
        ) from error
    return hashlib.sha256(data).hexdigest()


def cache_key(
    step: str, code_hash: str, params: Mapping[str, str], inputs: Mapping[str, str]
) -> str:
    """The key of a step's output: its code, its params' and its inputs' hashes."""
    document = {
        "version": _CACHE_KEY_VERSION,
        "step": step,
        "code": code_hash,
        "params": dict(sorted(params.items())),
        "inputs": dict(sorted(inputs.items())),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


class OutputRef:
    """A stored step output: the run holding it and its hash; loads (once) on demand.

    Thread-safe: concurrent consumers of one output load it once.
    """

    __slots__ = ("_lock", "_tracker", "_value", "output_hash", "run_id", "step")

    _MISSING: Any = object()

    def __init__(
        self,
        tracker: ExperimentTracker,
        step: str,
        run_id: str,
        output_hash: str,
        value: Any = _MISSING,
    ) -> None:
        self._tracker = tracker
        self.step = step
        self.run_id = run_id
        self.output_hash = output_hash
        self._value = value
        self._lock = threading.Lock()

    def load(self) -> Any:
        """The output value: kept from this run, or read from the artifact and verified."""
        with self._lock:
            if self._value is OutputRef._MISSING:
                self._value = None if self.output_hash == NONE_HASH else self._read()
            return self._value

    def _read(self) -> Any:
        with tempfile.TemporaryDirectory(prefix="mlops-step-") as folder:
            try:
                path = self._tracker.download_artifacts(self.run_id, OUTPUT_FILE, folder)
            except NotFound as error:
                raise NotFound(
                    f"the output of step {self.step!r} (run '{self.run_id}') is missing from "
                    "the artifact store; run the step again without the cache "
                    "(@step(cache=False) or a changed param)"
                ) from error
            data = Path(path).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self.output_hash:
            raise IntegrityError(
                f"the output of step {self.step!r} (run '{self.run_id}') hashes to {digest}, "
                f"not the recorded {self.output_hash}; the artifact was changed after it was "
                "written, so run the step again"
            )
        # Outputs are read from this installation's own artifact store, which is trusted
        # like the code it runs.
        return pickle.loads(data)


def store_output(tracker: ExperimentTracker, run_id: str, data: bytes, scratch: Path) -> str:
    """Log ``data`` as the run's ``output.pkl`` (staged in the empty folder ``scratch``);
    return its SHA-256."""
    scratch.mkdir(parents=True)
    path = scratch / OUTPUT_FILE
    try:
        path.write_bytes(data)
        (info,) = tracker.log_artifact(run_id, path)
    finally:
        path.unlink(missing_ok=True)
        scratch.rmdir()
    return info.sha256


def find_cached(
    tracker: ExperimentTracker, step: str, key: str, expiry: float | None
) -> OutputRef | None:
    """The newest successful run of ``step`` that computed the output for ``key``."""
    clauses = [
        f"tags.{TAG_CACHE_KEY} = {_quote(key)}",
        f"tags.{TAG_CACHED} = 'false'",
        "attributes.status = 'FINISHED'",
    ]
    if expiry is not None:
        oldest = int((time.time() - expiry) * 1000)
        clauses.append(f"attributes.start_time >= {oldest}")
    found = tracker.search_runs(
        filter=" and ".join(clauses), order_by="attributes.start_time DESC", max_results=1
    )
    return _ref(tracker, step, found[0]) if found else None


def latest_output(tracker: ExperimentTracker, pipeline: str, step: str) -> OutputRef | None:
    """The output of the newest successful run of ``step`` in ``pipeline`` (cached too)."""
    clauses = [
        f"tags.{TAG_PIPELINE} = {_quote(pipeline)}",
        f"tags.{TAG_STEP} = {_quote(step)}",
        f"tags.{TAG_OUTPUT_RUN} is not null",
        "attributes.status = 'FINISHED'",
    ]
    found = tracker.search_runs(
        filter=" and ".join(clauses), order_by="attributes.start_time DESC", max_results=1
    )
    return _ref(tracker, step, found[0]) if found else None


def output_of(tracker: ExperimentTracker, step: str, run: Run) -> OutputRef | None:
    """The output a finished step run recorded, if any."""
    return _ref(tracker, step, run) if TAG_OUTPUT_RUN in run.tags else None


def has_output(tracker: ExperimentTracker, ref: OutputRef) -> bool:
    """Whether the output of ``ref`` can still be loaded (its artifact was not deleted)."""
    return ref.output_hash == NONE_HASH or bool(tracker.list_artifacts(ref.run_id, OUTPUT_FILE))


def _ref(tracker: ExperimentTracker, step: str, run: Run) -> OutputRef:
    return OutputRef(tracker, step, run.tags[TAG_OUTPUT_RUN], run.tags[TAG_OUTPUT_HASH])


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
