"""Save a model as a package folder, atomically; load it back after verifying every file."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.errors import InvalidInput, MLOpsError, NotFound
from mlops.models._environment import capture_environment
from mlops.models._flavor import Flavor, SaveContext, flavor_for, get_flavor
from mlops.models._infer import (
    describe_output,
    example_to_json,
    infer_signature,
    without_categories,
)
from mlops.models._json import canonical_json, jsonable, require
from mlops.models._manifest import (
    INPUT_EXAMPLE_FILE,
    MANIFEST_FILE,
    REFERENCE_PROFILE_FILE,
    ModelManifest,
    hash_folder,
    read_manifest,
    verify_package,
)
from mlops.models._payload import untyped_input
from mlops.models._profile import build_reference_profile
from mlops.models._signature import Signature

__all__ = ["PARTIAL_SUFFIX", "LoadedModel", "load_model", "save_model", "write_package"]

#: A package being written lives in ".<name>.<uuid><PARTIAL_SUFFIX>" beside its target.
PARTIAL_SUFFIX = ".mlops-partial"


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    flavor: str | Flavor | None = None,
    input_example: Any = None,
    signature: Signature | None = None,
    reference_data: Any = None,
    metadata: Mapping[str, Any] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
) -> ModelManifest:
    """Write ``model`` as a package folder at ``path`` and return its manifest.

    ``path`` must not exist or be an empty folder. The package is built in a sibling
    temporary folder and renamed into place, so a failure leaves nothing behind. The
    flavor is detected from the object unless given. With ``input_example``, the
    signature is inferred (unless given) and the saved model is loaded back and run on
    the example before the package lands. ``reference_data`` (the training data) adds a
    reference profile and is where string columns' categories come from: without it
    they accept any string. ``artifacts`` (python flavor only) maps names
    to extra files or folders handed to ``PythonModel.load``.
    """
    target = Path(path)
    _check_target(target)
    chosen = _choose_flavor(model, flavor)
    if artifacts and chosen.name != "python":
        raise InvalidInput(f"artifacts= is for the python flavor, not {chosen.name}")
    input_signature = signature
    if input_signature is None and input_example is not None:
        input_signature = infer_signature(input_example, reference_data=reference_data)
        if reference_data is None:
            # A few example rows do not tell a column's full set of categories.
            input_signature = without_categories(input_signature)
    model_input = None
    if input_example is not None and input_signature is not None:
        model_input = input_signature.converter("allow")(input_example)

    def populate(folder: Path) -> dict[str, Any]:
        context = SaveContext(
            model_input=model_input,
            artifacts={name: Path(source) for name, source in (artifacts or {}).items()},
        )
        try:
            chosen.save(model, folder, context)
        except MLOpsError:
            raise
        except Exception as error:
            raise InvalidInput(
                f"the {chosen.name} flavor could not save the {type(model).__name__}: {error}"
            ) from error
        final_signature = input_signature
        if model_input is not None:
            draft = _draft_manifest(chosen.name, context.options, folder)
            output = chosen.predict(chosen.load(folder, draft), model_input)
            if signature is None and input_signature is not None:
                try:
                    outputs, output_tensor = describe_output(output["predictions"])
                except InvalidInput:
                    outputs, output_tensor = (), None  # e.g. a custom model's free-form output
                final_signature = Signature(
                    input_signature.inputs, outputs, input_signature.input_tensor, output_tensor
                )
            assert final_signature is not None  # inferred or given with the example
            example = example_to_json(input_example, final_signature)
            _write_json(folder / INPUT_EXAMPLE_FILE, example)
        if reference_data is not None:
            names = _profile_names(final_signature)
            profile = build_reference_profile(reference_data, columns=names)
            _write_json(folder / REFERENCE_PROFILE_FILE, profile)
        return {
            "flavor": chosen.name,
            "flavor_options": context.options,
            "signature": final_signature,
            "environment": capture_environment(chosen),
            "metadata": jsonable(dict(metadata or {})),
            "has_input_example": model_input is not None,
            "has_reference_profile": reference_data is not None,
        }

    return write_package(target, populate)


def write_package(target: Path, populate: Any) -> ModelManifest:
    """Build a package in a temporary sibling folder with ``populate``, then rename it.

    ``populate(folder)`` writes the files and returns the manifest fields other than
    ``files`` and ``created_at``. On any error the temporary folder is removed.
    """
    _check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}"
    temporary.mkdir()
    try:
        fields = populate(temporary)
        manifest = ModelManifest(
            files=hash_folder(temporary),
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            **fields,
        )
        (temporary / MANIFEST_FILE).write_text(manifest.to_json(), encoding="utf-8")
        _fsync_tree(temporary)
        try:
            os.rename(temporary, target)
        except OSError as error:
            raise InvalidInput(
                f"cannot put the model package at {target}: {error.strerror}; "
                "choose a path that does not exist or is an empty folder"
            ) from error
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    _fsync_directory(target.parent)
    return manifest


def load_model(
    path: str | os.PathLike[str], *, verify: bool = True, unknown_category: str = "error"
) -> LoadedModel:
    """Load a package: verify every file's SHA-256 first (unless ``verify=False``).

    Raises ``IntegrityError`` naming changed, missing or unlisted files before anything
    is deserialized, ``NotFound`` when there is no package, ``MissingDependency`` when
    the flavor's framework is not installed. ``unknown_category`` is the converter's
    policy for strings outside a column's categories ("error" or "allow").
    """
    folder = Path(path)
    manifest = verify_package(folder) if verify else read_manifest(folder)
    flavor = get_flavor(manifest.flavor)
    native = flavor.load(folder, manifest)
    example = _read_json(folder / INPUT_EXAMPLE_FILE) if manifest.has_input_example else None
    profile = (
        _read_json(folder / REFERENCE_PROFILE_FILE) if manifest.has_reference_profile else None
    )
    return LoadedModel(folder, manifest, flavor, native, example, profile, unknown_category)


class LoadedModel:
    """A loaded package: its manifest, the native model, and ``predict``.

    ``predict`` converts with the signature's converter (compiled once) and is as
    thread-safe as the framework's own predict.
    """

    def __init__(
        self,
        path: Path,
        manifest: ModelManifest,
        flavor: Flavor,
        native: Any,
        input_example: Any,
        reference_profile: dict[str, Any] | None,
        unknown_category: str = "error",
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.flavor = flavor
        self.native = native
        self.input_example = input_example
        self.reference_profile = reference_profile
        signature = manifest.signature
        self._convert = None if signature is None else signature.converter(unknown_category)

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    def __repr__(self) -> str:
        return f"LoadedModel(path={str(self.path)!r}, flavor={self.flavor.name!r})"

    def predict(self, data: Any) -> dict[str, Any]:
        """Validate and convert ``data`` with the signature, then predict.

        Returns ``{"predictions": ..., "probabilities": ...}`` (the latter when the model
        gives them). Without a signature, recognized payloads become a DataFrame or an
        array unchecked (python models get ``data`` as is).
        """
        if self._convert is not None:
            model_input = self._convert(data)
        elif self.flavor.name == "python":
            model_input = data
        else:
            model_input = untyped_input(data)
        return self.flavor.predict(self.native, model_input)

    def predict_raw(self, model_input: Any) -> dict[str, Any]:
        """Predict on input already in the model's format, skipping validation."""
        return self.flavor.predict(self.native, model_input)


def _choose_flavor(model: Any, flavor: str | Flavor | None) -> Flavor:
    if flavor is None:
        return flavor_for(model)
    chosen = get_flavor(flavor)
    for module in getattr(chosen, "requires", ()):
        require(module, chosen.extra, f"The {chosen.name} flavor")
    if not chosen.can_handle(model):
        raise InvalidInput(
            f"the {chosen.name} flavor cannot package a {type(model).__name__}; "
            "leave flavor= out to detect the flavor from the object"
        )
    return chosen


def _check_target(target: Path) -> None:
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise InvalidInput(f"cannot save a model package at {target}: a file is there")
    if target.is_dir() and any(target.iterdir()):
        raise InvalidInput(
            f"cannot save a model package into {target}: the folder is not empty; "
            "choose a new path or an empty folder"
        )


def _draft_manifest(flavor: str, options: dict[str, Any], folder: Path) -> ModelManifest:
    return ModelManifest(
        flavor=flavor,
        flavor_options=dict(options),
        signature=None,
        environment={},
        files=hash_folder(folder),
        created_at="",
    )


def _profile_names(signature: Signature | None) -> list[str] | None:
    if signature is None or signature.input_tensor is None:
        return None
    return signature.input_names or None


def _write_json(path: Path, value: Any) -> None:
    path.write_text(canonical_json(jsonable(value)), encoding="utf-8")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise NotFound(f"model package file {path} is missing")
    return json.loads(path.read_text(encoding="utf-8"))


def _fsync_tree(folder: Path) -> None:
    for current, _, names in os.walk(folder):
        for name in names:
            descriptor = os.open(Path(current, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_directory(Path(current))


def _fsync_directory(folder: Path) -> None:
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
