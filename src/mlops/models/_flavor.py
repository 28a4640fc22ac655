"""The ``Flavor`` interface, the built-in flavors in detection order, and ``check_flavor``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._manifest import ModelManifest, hash_folder

__all__ = [
    "Flavor",
    "SaveContext",
    "check_flavor",
    "flavor_for",
    "flavor_names",
    "get_flavor",
]

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(slots=True)
class SaveContext:
    """What ``Flavor.save`` gets besides the object, and where it records its options.

    ``model_input`` is the input example already converted to model input (or None);
    ``artifacts`` maps names to extra files or folders to package (python flavor);
    the flavor fills ``options`` with JSON values, stored as the manifest's
    ``flavor_options`` and handed back to ``load``.
    """

    model_input: Any = None
    artifacts: Mapping[str, Path] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Flavor(Protocol):
    """How to save, load and call one kind of model.

    A flavor holds no state besides its constructor parameters, so one instance may
    serve many threads; whether ``predict`` on one native model is thread-safe is up to
    the framework. A flavor imports its framework only when used, raising
    ``MissingDependency`` naming ``extra`` when it is not installed; malformed input is
    ``InvalidInput`` and a package that does not match its manifest ``IntegrityError``.
    """

    #: The name recorded in manifests, e.g. "sklearn".
    name: str
    #: The pip extra that installs the framework, e.g. "sklearn" for mlops[sklearn]; "" if none.
    extra: str

    def can_handle(self, obj: Any) -> bool:
        """Whether ``obj`` is a model of this flavor (never imports the framework)."""
        ...

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        """Write the model into the existing empty ``folder``; return the relative paths."""
        ...

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        """Read the native model from a verified package folder."""
        ...

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        """Call the model: ``{"predictions": ..., "probabilities": ...}`` (the latter optional)."""
        ...

    def libraries(self) -> list[str]:
        """Distribution names whose versions the package environment records."""
        ...


def _builtin_flavors() -> list[Flavor]:
    # Detection order matters: xgboost/lightgbm sklearn-API models are sklearn estimators.
    from mlops.models._boosting import LightGBMFlavor, XGBoostFlavor
    from mlops.models._onnx import OnnxFlavor
    from mlops.models._python import PythonFlavor
    from mlops.models._sklearn import SklearnFlavor
    from mlops.models._torch import TorchFlavor

    return [
        PythonFlavor(),
        TorchFlavor(),
        OnnxFlavor(),
        XGBoostFlavor(),
        LightGBMFlavor(),
        SklearnFlavor(),
    ]


_DESCRIPTIONS = {
    "python": "a PythonModel subclass or any object with load(context) and predict(inputs)",
    "torch": "a torch.nn.Module (saved as TorchScript)",
    "onnx": "an onnx.ModelProto or a path to a .onnx file",
    "xgboost": "an xgboost Booster, XGBClassifier or XGBRegressor",
    "lightgbm": "a lightgbm Booster, LGBMClassifier or LGBMRegressor",
    "sklearn": "a scikit-learn estimator or Pipeline",
}


def flavor_names() -> list[str]:
    """The built-in flavor names, in detection order."""
    return [flavor.name for flavor in _builtin_flavors()]


def get_flavor(name: str | Flavor) -> Flavor:
    """The built-in flavor called ``name`` (a ``Flavor`` instance is returned as is)."""
    if not isinstance(name, str):
        if isinstance(name, Flavor):
            return name
        raise InvalidInput(f"flavor must be a name or a Flavor, not {type(name).__name__}")
    for flavor in _builtin_flavors():
        if flavor.name == name:
            return flavor
    raise InvalidInput(f"unknown flavor {name!r}; the flavors are {', '.join(flavor_names())}")


def flavor_for(obj: Any) -> Flavor:
    """The first built-in flavor that handles ``obj``, or ``InvalidInput`` listing them."""
    for flavor in _builtin_flavors():
        if flavor.can_handle(obj):
            return flavor
    supported = "; ".join(f"{name}: {text}" for name, text in _DESCRIPTIONS.items())
    raise InvalidInput(
        f"cannot package a {type(obj).__module__}.{type(obj).__qualname__}: no flavor handles "
        f"it. Supported flavors — {supported}. Wrap other models in a mlops.models.PythonModel"
    )


def check_flavor(
    flavor: Flavor, model: Any, model_input: Any, folder: Path, **context: Any
) -> dict[str, Any]:
    """Check that ``flavor`` keeps the ``Flavor`` contract for ``model``; return its prediction.

    Saves into ``folder`` (which must not exist or be empty), loads, predicts on
    ``model_input`` and raises ``AssertionError`` at the first broken rule. Extra keyword
    arguments go into the ``SaveContext``.
    """
    _expect(isinstance(flavor, Flavor), f"{flavor!r} lacks a Flavor attribute or method")
    _expect(bool(_NAME.match(str(flavor.name))), f"flavor name {flavor.name!r} is not a-z0-9_")
    _expect(isinstance(flavor.extra, str), "extra must name a pip extra ('' for none)")
    libraries = flavor.libraries()
    _expect(
        isinstance(libraries, list) and all(isinstance(n, str) for n in libraries),
        "libraries() must return a list of distribution names",
    )
    _expect(flavor.can_handle(model) is True, f"can_handle() refused its own model {model!r}")
    _expect(flavor.can_handle(object()) is False, "can_handle() accepted a bare object()")
    folder.mkdir(parents=True, exist_ok=True)
    _expect(not any(folder.iterdir()), f"{folder} must be empty")
    save_context = SaveContext(model_input=model_input, **context)
    files = flavor.save(model, folder, save_context)
    _expect(isinstance(files, list), "save() must return a list of relative paths")
    written = hash_folder(folder)
    _expect(sorted(files) == sorted(written), f"save() returned {files}, wrote {sorted(written)}")
    _expect(_is_json(save_context.options), "save() set options that are not JSON")
    manifest = ModelManifest(
        flavor=flavor.name,
        flavor_options=save_context.options,
        signature=None,
        environment={},
        files=written,
        created_at="",
    )
    native = flavor.load(folder, manifest)
    result = flavor.predict(native, model_input)
    _expect(isinstance(result, dict) and "predictions" in result, "predict() needs predictions")
    rows = _rows(model_input)
    for key in ("predictions", "probabilities"):
        if key in result and rows is not None:
            _expect(len(result[key]) == rows, f"{key} has {len(result[key])} rows, not {rows}")
    return result


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _rows(model_input: Any) -> int | None:
    length: Callable[[], int] | None = getattr(model_input, "__len__", None)
    if isinstance(model_input, np.ndarray) and model_input.ndim == 0:
        return None
    return None if length is None else length()
