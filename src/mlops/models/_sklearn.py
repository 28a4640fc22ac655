"""The sklearn flavor: any scikit-learn estimator or Pipeline, kept with skops or pickle.

Security: a pickle runs code when it is read, so load only packages you trust. The
manifest's SHA-256 of every file, checked before anything is read, protects a package
against tampering after it was saved; it cannot make an untrusted author's pickle safe.
skops files are read with only the types recorded when the package was saved.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlops.errors import IntegrityError, InvalidInput, MissingDependency
from mlops.models._flavor import SaveContext
from mlops.models._json import require
from mlops.models._manifest import ModelManifest, package_file

__all__ = ["SERIALIZATIONS", "SklearnFlavor", "load_pickle", "predict_estimator"]

#: How the sklearn flavor can store a model: "auto" takes skops when it is installed.
SERIALIZATIONS = ("auto", "skops", "pickle")
_FILES = {"skops": "model.skops", "pickle": "model.pkl", "cloudpickle": "model.pkl"}


class SklearnFlavor:
    """scikit-learn estimators and pipelines; ``predict_proba`` output when available."""

    name = "sklearn"
    extra = "sklearn"
    requires = ("sklearn",)

    def __init__(self, serialization: str = "auto") -> None:
        self.serialization = serialization

    def get_params(self) -> dict[str, Any]:
        return {"serialization": self.serialization}

    def can_handle(self, obj: Any) -> bool:
        base = sys.modules.get("sklearn.base")
        if base is None or isinstance(obj, type):
            return False
        return isinstance(obj, base.BaseEstimator)

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        if self.serialization not in SERIALIZATIONS:
            raise InvalidInput(
                f"serialization must be one of {', '.join(SERIALIZATIONS)}, "
                f"not {self.serialization!r}"
            )
        sklearn = require("sklearn", self.extra, "Saving a scikit-learn model")
        context.options["sklearn_version"] = str(sklearn.__version__)
        method = self.serialization
        if method in {"auto", "skops"}:
            try:
                skops_io = require("skops.io", "sklearn", "Saving with skops")
            except MissingDependency:
                if method == "skops":
                    raise _no_skops("Saving with serialization='skops'") from None
            else:
                try:
                    return self._save_skops(skops_io, obj, folder, context)
                except Exception:
                    if method == "skops":
                        raise
                    with contextlib.suppress(OSError):
                        (folder / _FILES["skops"]).unlink()
        target = folder / _FILES["pickle"]
        with target.open("wb") as handle:
            pickle.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        context.options.update(serialization="pickle", model_file=_FILES["pickle"])
        return [_FILES["pickle"]]

    def _save_skops(self, skops_io: Any, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        target = folder / _FILES["skops"]
        skops_io.dump(obj, target)
        trusted = sorted(skops_io.get_untrusted_types(file=target))
        context.options.update(
            serialization="skops", model_file=_FILES["skops"], trusted_types=trusted
        )
        return [_FILES["skops"]]

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        require("sklearn", self.extra, "Loading a scikit-learn model")
        options = manifest.flavor_options
        method = options.get("serialization", "pickle")
        path = package_file(folder, manifest, options.get("model_file", _FILES.get(method)))
        if method == "skops":
            return _load_skops(path, list(options.get("trusted_types") or []))
        if method in {"pickle", "cloudpickle"}:
            return load_pickle(path, method)
        raise IntegrityError(f"model package {folder} names the unknown serialization {method!r}")

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        return predict_estimator(native, inputs)

    def libraries(self) -> list[str]:
        return ["scikit-learn", "scipy", "joblib", "skops", "cloudpickle"]


def predict_estimator(native: Any, inputs: Any) -> dict[str, Any]:
    """``predict`` and, where the estimator offers it, ``predict_proba``."""
    result: dict[str, Any] = {"predictions": np.asarray(native.predict(inputs))}
    if hasattr(native, "predict_proba"):
        with contextlib.suppress(AttributeError, NotImplementedError):
            result["probabilities"] = np.asarray(native.predict_proba(inputs))
    return result


def load_pickle(path: Path, method: str) -> Any:
    """Unpickle a verified file; cloudpickle files need cloudpickle importable."""
    if method == "cloudpickle":
        try:
            require("cloudpickle", "sklearn", "Loading a cloudpickle model")
        except MissingDependency:
            raise MissingDependency(
                "Loading this model needs the 'cloudpickle' package (it was saved with "
                "cloudpickle), which is not installed; install it with: pip install cloudpickle"
            ) from None
    with path.open("rb") as handle:
        return pickle.load(handle)  # verified against the manifest first


def _load_skops(path: Path, trusted: list[str]) -> Any:
    try:
        skops_io = require("skops.io", "sklearn", "Loading a skops model")
    except MissingDependency:
        raise _no_skops("Loading this model (saved with skops)") from None
    found = set(skops_io.get_untrusted_types(file=path))
    unexpected = sorted(found - set(trusted))
    if unexpected:
        raise IntegrityError(
            f"{path} holds types not recorded when it was saved: {', '.join(unexpected)}; "
            "the file was changed, so do not load it"
        )
    return skops_io.load(path, trusted=sorted(found))


def _no_skops(purpose: str) -> MissingDependency:
    return MissingDependency(
        f"{purpose} needs the 'skops' package, which is not installed; "
        "install it with: pip install skops"
    )
