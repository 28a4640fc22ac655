"""The package manifest (``mlops-model.json``) and integrity verification of a package."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.artifacts._base import iter_local_file
from mlops.errors import IntegrityError, InvalidInput, NotFound
from mlops.models._json import canonical_json, jsonable
from mlops.models._signature import Signature

__all__ = [
    "FORMAT_VERSION",
    "INPUT_EXAMPLE_FILE",
    "MANIFEST_FILE",
    "REFERENCE_PROFILE_FILE",
    "SIGNATURE_FILE",
    "ModelManifest",
    "hash_file",
    "hash_folder",
    "package_file",
    "read_manifest",
    "verify_package",
]

#: The manifest's file name at the package root.
MANIFEST_FILE = "mlops-model.json"
#: A detached signature of the manifest (written by the registry), not listed in ``files``.
SIGNATURE_FILE = "mlops-model.sig"
INPUT_EXAMPLE_FILE = "input_example.json"
REFERENCE_PROFILE_FILE = "reference_profile.json"
#: The package format this version writes; it reads this and older ones.
FORMAT_VERSION = 1
_UNLISTED = frozenset({MANIFEST_FILE, SIGNATURE_FILE})


@dataclass(frozen=True)
class ModelManifest:
    """What a package holds: flavor, signature, environment and the SHA-256 of every file.

    ``files`` maps each file's relative POSIX path to its hex SHA-256, for every file in
    the package except the manifest itself and ``mlops-model.sig``.
    """

    flavor: str
    flavor_options: Mapping[str, Any]
    signature: Signature | None
    environment: Mapping[str, Any]
    files: Mapping[str, str]
    created_at: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    has_input_example: bool = False
    has_reference_profile: bool = False
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "flavor": self.flavor,
            "flavor_options": jsonable(dict(self.flavor_options)),
            "signature": None if self.signature is None else self.signature.to_dict(),
            "environment": jsonable(dict(self.environment)),
            "files": dict(sorted(self.files.items())),
            "created_at": self.created_at,
            "metadata": jsonable(dict(self.metadata)),
            "has_input_example": self.has_input_example,
            "has_reference_profile": self.has_reference_profile,
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, fixed layout): the exact bytes of the manifest file."""
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        """Hex SHA-256 of ``to_json()``; equal to the SHA-256 of the manifest file."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelManifest:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise InvalidInput(f"the model manifest is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise InvalidInput("the model manifest must be a JSON object")
        version = data.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise InvalidInput(f"the model manifest has no valid format_version ({version!r})")
        if version > FORMAT_VERSION:
            raise InvalidInput(
                f"the model package has format version {version}, newer than the "
                f"{FORMAT_VERSION} this mlops reads; upgrade mlops to load it"
            )
        files = data.get("files")
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise InvalidInput("the model manifest's files must map paths to SHA-256 strings")
        for key in ("flavor", "created_at"):
            if not isinstance(data.get(key), str):
                raise InvalidInput(f"the model manifest has no {key}")
        signature = data.get("signature")
        return cls(
            flavor=data["flavor"],
            flavor_options=dict(data.get("flavor_options") or {}),
            signature=None if signature is None else Signature.from_dict(signature),
            environment=dict(data.get("environment") or {}),
            files=files,
            created_at=data["created_at"],
            metadata=dict(data.get("metadata") or {}),
            has_input_example=bool(data.get("has_input_example")),
            has_reference_profile=bool(data.get("has_reference_profile")),
            format_version=version,
        )


def hash_file(path: Path) -> str:
    """Hex SHA-256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter_local_file(path):
        digest.update(chunk)
    return digest.hexdigest()


def hash_folder(folder: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every file below ``folder`` except manifest and .sig.

    Raises ``IntegrityError`` for a symbolic link (it could point outside the package).
    """
    hashes: dict[str, str] = {}
    for current, dirs, names in os.walk(folder):
        for name in [*dirs, *names]:
            if Path(current, name).is_symlink():
                relative = Path(current, name).relative_to(folder).as_posix()
                raise IntegrityError(
                    f"model package {folder} holds the symbolic link {relative!r}; "
                    "packages hold regular files only"
                )
        for name in names:
            full = Path(current, name)
            relative = full.relative_to(folder).as_posix()
            if relative not in _UNLISTED:
                hashes[relative] = hash_file(full)
    return dict(sorted(hashes.items()))


def read_manifest(folder: Path) -> ModelManifest:
    """Parse a package's manifest without checking its files."""
    if not folder.is_dir():
        raise NotFound(f"no model package at {folder}: the folder does not exist")
    manifest_path = folder / MANIFEST_FILE
    if not manifest_path.is_file():
        raise NotFound(
            f"{folder} is not a model package: it has no {MANIFEST_FILE} "
            "(write one with mlops.models.save_model)"
        )
    try:
        return ModelManifest.from_json(manifest_path.read_bytes())
    except InvalidInput as error:
        raise IntegrityError(f"model package {folder}: {error}") from None


def verify_package(path: str | os.PathLike[str]) -> ModelManifest:
    """Check every file of a package against its manifest; return the manifest.

    Raises ``IntegrityError`` naming every changed, missing or unlisted file, and
    ``NotFound`` when ``path`` holds no package. Reads no model file beyond hashing it.
    """
    folder = Path(path)
    manifest = read_manifest(folder)
    actual = hash_folder(folder)
    expected = dict(manifest.files)
    missing = sorted(set(expected) - set(actual))
    unlisted = sorted(set(actual) - set(expected))
    changed = sorted(name for name in set(expected) & set(actual) if expected[name] != actual[name])
    problems = []
    if changed:
        problems.append(f"changed since it was packaged: {', '.join(changed)}")
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unlisted:
        problems.append(f"not listed in the manifest: {', '.join(unlisted)}")
    if problems:
        raise IntegrityError(
            f"model package {folder} failed verification; {'; '.join(problems)}. "
            "Do not load it: restore the package from its registry or save the model again"
        )
    return manifest


def package_file(folder: Path, manifest: ModelManifest, relative: Any) -> Path:
    """The path of a file the manifest lists, or ``IntegrityError`` for any other name."""
    if not isinstance(relative, str) or relative not in manifest.files:
        raise IntegrityError(
            f"model package {folder} refers to {relative!r}, which its manifest does not list"
        )
    return folder / relative
