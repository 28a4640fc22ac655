"""The python flavor: any object with ``load(context)`` and ``predict(inputs)``.

The instance is pickled (with cloudpickle when installed, so classes defined in a script
or notebook travel by value); extra files given as ``artifacts=`` are copied into the
package and handed back through ``ModelContext`` when it loads. As with any pickle, load
only packages you trust; the manifest's digests protect against later tampering.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.errors import IntegrityError, InvalidInput
from mlops.models._flavor import SaveContext
from mlops.models._manifest import ModelManifest, package_file
from mlops.models._sklearn import load_pickle

__all__ = ["ModelContext", "PythonFlavor", "PythonModel"]

_ARTIFACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class ModelContext:
    """What a ``PythonModel`` gets when it loads: the paths of its packaged artifacts."""

    artifacts: dict[str, Path] = field(default_factory=dict)


class PythonModel:
    """Base class for custom models: override ``predict``, and ``load`` to read artifacts.

    ``predict`` may return the predictions, or a dict with "predictions" (and optionally
    "probabilities").
    """

    def load(self, context: ModelContext) -> None:
        """Read what the model needs from ``context.artifacts``; called once after unpickling."""

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define predict(inputs)")


class PythonFlavor:
    """Custom Python models: ``PythonModel`` subclasses or duck-typed objects."""

    name = "python"
    extra = ""  # no framework: cloudpickle is used when installed
    requires = ()
    _FILE = "python_model.pkl"

    def can_handle(self, obj: Any) -> bool:
        if isinstance(obj, PythonModel):
            return True
        if isinstance(obj, type):
            return False
        return callable(getattr(obj, "load", None)) and callable(getattr(obj, "predict", None))

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        try:
            pickler: Any = importlib.import_module("cloudpickle")
            method = "cloudpickle"
        except ImportError:
            pickler, method = pickle, "pickle"
        with (folder / self._FILE).open("wb") as handle:
            pickler.dump(obj, handle, protocol=pickle.HIGHEST_PROTOCOL)
        files = [self._FILE]
        artifacts: dict[str, str] = {}
        for name, source in context.artifacts.items():
            artifacts[name] = _copy_artifact(name, Path(source), folder)
        for name in artifacts:
            files.extend(_files_below(folder, f"artifacts/{name}"))
        context.options.update(serialization=method, model_file=self._FILE, artifacts=artifacts)
        return files

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        options = manifest.flavor_options
        method = options.get("serialization", "pickle")
        if method not in {"pickle", "cloudpickle"}:
            raise IntegrityError(
                f"model package {folder} names the unknown serialization {method!r}"
            )
        path = package_file(folder, manifest, options.get("model_file", self._FILE))
        model = load_pickle(path, method)
        artifacts = {}
        for name, relative in dict(options.get("artifacts") or {}).items():
            if not _inside_listed(manifest, relative):
                raise IntegrityError(f"model package {folder} lists no files for artifact {name!r}")
            artifacts[name] = folder / relative
        load = getattr(model, "load", None)
        if callable(load):
            load(ModelContext(artifacts=artifacts))
        return model

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        output = native.predict(inputs)
        if isinstance(output, dict) and "predictions" in output:
            return output
        return {"predictions": output}

    def libraries(self) -> list[str]:
        return ["cloudpickle"]


def _copy_artifact(name: str, source: Path, folder: Path) -> str:
    if not isinstance(name, str) or not _ARTIFACT_NAME.match(name):
        raise InvalidInput(
            f"artifact name {name!r} is invalid; use letters, digits, '.', '_' and '-'"
        )
    if folder.resolve().is_relative_to(source.resolve()):
        raise InvalidInput(f"artifact {name!r}: {source} holds the package being written")
    if source.is_dir():
        shutil.copytree(source, folder / "artifacts" / name)
        return f"artifacts/{name}"
    if not source.is_file():
        raise InvalidInput(f"artifact {name!r}: {source} is neither a file nor a folder")
    target = folder / "artifacts" / name / source.name
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    return f"artifacts/{name}/{source.name}"


def _files_below(folder: Path, relative: str) -> list[str]:
    found: list[str] = []
    for current, _, names in os.walk(folder / relative):
        found.extend(Path(current, n).relative_to(folder).as_posix() for n in names)
    return sorted(found)


def _inside_listed(manifest: ModelManifest, relative: Any) -> bool:
    if not isinstance(relative, str) or ".." in relative.split("/") or relative.startswith("/"):
        return False
    return relative in manifest.files or any(
        path.startswith(relative.rstrip("/") + "/") for path in manifest.files
    )
