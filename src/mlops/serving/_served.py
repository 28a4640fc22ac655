"""One loaded version compiled for the hot path: its converter, its predict call, its output."""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models import LoadedModel
from mlops.models._payload import is_dataframe, untyped_input

__all__ = ["INLINE_PREDICT_SECONDS", "Prediction", "ServedVersion", "compile_version"]

#: A version whose predict call averages less than this runs on the event loop for small
#: requests: a hop to the threadpool costs ~0.1 ms, more than such a call gains from it.
INLINE_PREDICT_SECONDS = 0.002
_WARMUP_CALLS = 3


@dataclass(slots=True)
class Prediction:
    """A model's answer as JSON-ready values: one prediction (and probabilities) per row."""

    predictions: Any
    probabilities: Any = None

    def slice(self, start: int, stop: int) -> Prediction:
        """The rows ``start:stop`` of a batched answer."""
        probabilities = self.probabilities
        return Prediction(
            self.predictions[start:stop],
            None if probabilities is None else probabilities[start:stop],
        )


class ServedVersion:
    """A registry version ready to answer: ``convert(payload)`` then ``predict(input)``.

    Both callables are compiled once at load time. ``convert`` raises ``InvalidInput``
    naming the column; ``predict`` is as thread-safe as the framework's own predict.
    """

    __slots__ = (
        "_infer",
        "batchable",
        "convert",
        "fast_path",
        "load_seconds",
        "loaded",
        "model",
        "predict_seconds",
        "version",
    )

    def __init__(
        self,
        model: str,
        version: int,
        loaded: LoadedModel,
        convert: Callable[[Any], Any],
        infer: Callable[[Any], dict[str, Any]],
        *,
        batchable: bool,
        fast_path: bool,
    ) -> None:
        self.model = model
        self.version = version
        self.loaded = loaded
        self.convert = convert
        self._infer = infer
        self.batchable = batchable
        self.fast_path = fast_path
        self.load_seconds = 0.0
        self.predict_seconds = 0.0

    def __repr__(self) -> str:
        return f"ServedVersion({self.model!r}, {self.version}, fast_path={self.fast_path})"

    @property
    def inline(self) -> bool:
        """Whether a small request is cheaper to predict on the event loop than in a thread."""
        return self.predict_seconds < INLINE_PREDICT_SECONDS

    def predict(self, model_input: Any) -> Prediction:
        """Predict on converted input; keeps a moving average of the call's duration."""
        started = time.perf_counter()
        output = self._infer(model_input)
        elapsed = time.perf_counter() - started
        self.predict_seconds += 0.1 * (elapsed - self.predict_seconds)
        return to_prediction(output)

    def run(self, payload: Any) -> Prediction:
        """Convert and predict in one call (for a worker thread)."""
        return self.predict(self.convert(payload))

    @staticmethod
    def rows(model_input: Any) -> int:
        return len(model_input)

    @staticmethod
    def concat(inputs: Sequence[Any]) -> Any:
        """Join converted inputs of several requests into one batch."""
        if len(inputs) == 1:
            return inputs[0]
        first = inputs[0]
        if isinstance(first, np.ndarray):
            return np.concatenate(inputs)
        if is_dataframe(first):
            import pandas as pd  # type: ignore[import-untyped,unused-ignore]

            return pd.concat(inputs, ignore_index=True)
        raise InvalidInput(f"cannot batch model inputs of type {type(first).__name__}")


def to_prediction(output: dict[str, Any]) -> Prediction:
    """A flavor's ``{"predictions", "probabilities"?}`` as lists."""
    probabilities = output.get("probabilities")
    return Prediction(
        as_rows(output["predictions"]), None if probabilities is None else as_rows(probabilities)
    )


def as_rows(values: Any) -> Any:
    """Arrays, Series and frames as lists (one item per row); other values as they are."""
    if isinstance(values, np.ndarray):
        return values.tolist()
    if is_dataframe(values):
        return values.to_dict("records")
    if hasattr(values, "to_numpy") and hasattr(values, "index"):  # a pandas Series
        return values.to_numpy().tolist()
    if isinstance(values, tuple):
        return list(values)
    return values


def compile_version(model: str, version: int, loaded: LoadedModel) -> ServedVersion:
    """Compile a loaded version's hot path and warm it up on its input example."""
    signature = loaded.signature
    flavor = loaded.flavor
    infer: Callable[[Any], dict[str, Any]] = partial(flavor.predict, loaded.native)
    if signature is None:
        convert: Callable[[Any], Any] = (
            (lambda data: data) if flavor.name == "python" else (untyped_input)
        )
        served = ServedVersion(
            model, version, loaded, convert, infer, batchable=False, fast_path=False
        )
    else:
        converter = signature.converter()
        served = ServedVersion(
            model, version, loaded, converter, infer, batchable=True, fast_path=False
        )
        fast = _numpy_fast_path(loaded)
        if fast is not None:
            served.convert, served._infer = fast
            served.fast_path = True
    _warm_up(served)
    return served


def _warm_up(served: ServedVersion) -> None:
    example = served.loaded.input_example
    if example is None:
        return
    timings = []
    for _ in range(_WARMUP_CALLS):
        started = time.perf_counter()
        served.run(example)
        timings.append(time.perf_counter() - started)
    served.predict_seconds = min(timings)


def _numpy_fast_path(
    loaded: LoadedModel,
) -> tuple[Callable[[Any], Any], Callable[[Any], dict[str, Any]]] | None:
    """A float-array path for a numeric scikit-learn model, if it answers the same."""
    # A model fitted on a DataFrame checks column names on every call, which costs more
    # than the prediction; with the names confirmed to be the signature's order here, a
    # copy without them takes the array the converter builds, and pandas stays out.
    signature = loaded.signature
    example = loaded.input_example
    if (
        loaded.flavor.name != "sklearn"
        or signature is None
        or signature.input_tensor is not None
        or not signature.is_numeric
        or example is None
    ):
        return None
    names = signature.input_names
    target = _without_feature_names(loaded.native, names)
    if target is None:
        return None
    converter = signature.converter()
    convert = partial(converter, as_numpy=True)
    infer = partial(loaded.flavor.predict, target)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fast = to_prediction(infer(convert(example)))
        reference = to_prediction(loaded.predict(example))
    except Exception:
        return None
    if caught or not (
        _same(fast.predictions, reference.predictions)
        and _same(fast.probabilities, reference.probabilities)
    ):
        return None
    return convert, infer


def _without_feature_names(estimator: Any, names: list[str]) -> Any:
    """A shallow copy whose input step forgets the column names it was fitted with."""
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        first_name, first = steps[0]
        stripped = _without_feature_names(first, names)
        if stripped is None:
            return None
        clone = copy.copy(estimator)
        clone.steps = [(first_name, stripped), *steps[1:]]
        return clone
    fitted = vars(estimator).get("feature_names_in_") if hasattr(estimator, "__dict__") else None
    if fitted is None:
        return estimator
    if [str(name) for name in fitted] != names:
        return None  # another order: only a DataFrame lines the columns up
    clone = copy.copy(estimator)
    del clone.feature_names_in_
    return clone


def _same(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is right
    try:
        a, b = np.asarray(left), np.asarray(right)
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            return bool(np.allclose(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    except (TypeError, ValueError):
        return bool(left == right)
