"""Custom models for the serving tests (importable, so they pickle by reference)."""

from __future__ import annotations

import time
from typing import Any

from mlops.models import PythonModel

#: A tenure value that makes ``FailsOnMarker`` raise.
MARKER = -999.0


class FailsOnMarker(PythonModel):
    """Predicts ``tenure * 2``; raises when a row's tenure is the marker value."""

    def predict(self, inputs: Any) -> Any:
        values = [float(value) for value in inputs["tenure"]]
        if MARKER in values:
            raise ValueError("the marker value reached the model")
        return [value * 2 for value in values]


class AlwaysFails(PythonModel):
    """Raises on every call (registered without an input example)."""

    def predict(self, inputs: Any) -> Any:
        raise RuntimeError("this shadow model is broken")


class BatchEcho(PythonModel):
    """Answers each row with ``[x * 2, rows in this call]`` after a short pause."""

    def __init__(self, pause: float = 0.02) -> None:
        self.pause = pause

    def predict(self, inputs: Any) -> Any:
        time.sleep(self.pause)  # lets concurrent requests pile up behind the call
        rows = len(inputs)
        return [[float(value) * 2, rows] for value in inputs["x"]]
