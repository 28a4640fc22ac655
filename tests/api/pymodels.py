"""A tiny python-flavor model to register versions with (no ML framework needed)."""

from __future__ import annotations

from typing import Any


class Doubler:
    def load(self, context: Any) -> None:
        pass

    def predict(self, inputs: Any) -> Any:
        return [2 * value for value in inputs]
