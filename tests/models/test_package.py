"""Package format: manifest, atomic save, integrity verification, errors, environment."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlops.errors import IntegrityError, InvalidInput, MissingDependency, NotFound
from mlops.models import (
    MANIFEST_FILE,
    SIGNATURE_FILE,
    ModelContext,
    ModelManifest,
    PythonModel,
    SaveContext,
    capture_environment,
    load_model,
    save_model,
    verify_package,
)
from mlops.models._manifest import ModelManifest as _Manifest
from mlops.models._sklearn import SklearnFlavor


class Doubler(PythonModel):
    def predict(self, inputs: Any) -> Any:
        return inputs.to_numpy().ravel() * 2


class MakesMarker:
    """Unpickling this creates a folder: proof that a pickle ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture
def package(tmp_path: Path) -> Path:
    import pandas as pd

    path = tmp_path / "doubler"
    save_model(Doubler(), path, input_example=pd.DataFrame({"x": [1.0, 2.0]}))
    return path


def test_layout_and_manifest(package: Path) -> None:
    names = sorted(p.name for p in package.iterdir())
    assert names == ["input_example.json", MANIFEST_FILE, "python_model.pkl"]
    manifest = verify_package(package)
    assert set(manifest.files) == {"input_example.json", "python_model.pkl"}
    for name, digest in manifest.files.items():
        assert hashlib.sha256((package / name).read_bytes()).hexdigest() == digest
    assert manifest.format_version == 1
    assert manifest.flavor == "python"
    assert manifest.has_input_example
    assert not manifest.has_reference_profile
    assert manifest.created_at.endswith("+00:00")
    assert manifest.signature is not None
    assert manifest.signature.input_names == ["x"]
    assert manifest.signature.outputs[0].name == "prediction"


def test_manifest_json_is_canonical_and_digest_matches_the_file(package: Path) -> None:
    text = (package / MANIFEST_FILE).read_text()
    manifest = ModelManifest.from_json(text)
    assert manifest.to_json() == text
    assert json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n" == text
    assert manifest.digest == hashlib.sha256((package / MANIFEST_FILE).read_bytes()).hexdigest()
    assert ModelManifest.from_json(manifest.to_json()) == manifest


def test_manifest_rejects_newer_formats_and_garbage() -> None:
    with pytest.raises(InvalidInput, match="newer"):
        _Manifest.from_json(json.dumps({"format_version": 2}))
    with pytest.raises(InvalidInput, match="not valid JSON"):
        _Manifest.from_json("{")
    with pytest.raises(InvalidInput, match="files"):
        _Manifest.from_json(json.dumps({"format_version": 1, "files": [1]}))


def test_signature_file_is_allowed_beside_the_manifest(package: Path) -> None:
    (package / SIGNATURE_FILE).write_text("signed")
    assert load_model(package).predict({"x": [3.0]})["predictions"].tolist() == [6.0]


def test_tampered_pickle_is_refused_before_unpickling(package: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pickle-ran"
    (package / "python_model.pkl").write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(IntegrityError, match=r"changed since it was packaged: python_model\.pkl"):
        load_model(package)
    assert not marker.exists()
    with pytest.raises(IntegrityError):
        verify_package(package)
    assert not marker.exists()
    load_model(package, verify=False)  # what verification prevents: the payload runs
    assert marker.exists()


def test_tampered_sklearn_pickle_is_refused(numeric_data: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    features, labels = numeric_data
    path = tmp_path / "clf"
    save_model(
        LogisticRegression().fit(features, labels),
        path,
        flavor=SklearnFlavor(serialization="pickle"),
    )
    marker = tmp_path / "pickle-ran"
    (path / "model.pkl").write_bytes(pickle.dumps(MakesMarker(marker)))
    with pytest.raises(IntegrityError, match=r"model\.pkl"):
        load_model(path)
    assert not marker.exists()


def test_extra_and_missing_files_are_named(package: Path) -> None:
    (package / "notes.txt").write_text("hello")
    (package / "sub").mkdir()
    (package / "sub" / "more.bin").write_bytes(b"x")
    (package / "input_example.json").unlink()
    with pytest.raises(IntegrityError) as caught:
        load_model(package)
    message = str(caught.value)
    assert "missing: input_example.json" in message
    assert "not listed in the manifest: notes.txt, sub/more.bin" in message


def test_symlinks_are_refused(package: Path, tmp_path: Path) -> None:
    (tmp_path / "outside").write_text("x")
    (package / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(IntegrityError, match="symbolic link 'link'"):
        verify_package(package)


def test_a_changed_manifest_is_caught(package: Path) -> None:
    manifest_path = package / MANIFEST_FILE
    data = json.loads(manifest_path.read_text())
    data["files"]["python_model.pkl"] = "0" * 64
    manifest_path.write_text(json.dumps(data))
    with pytest.raises(IntegrityError, match=r"python_model\.pkl"):
        load_model(package)
    manifest_path.write_text("not json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        load_model(package)


def test_not_a_package(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotFound, match=r"has no mlops-model\.json"):
        verify_package(tmp_path / "empty")


def test_save_into_a_non_empty_folder_or_file(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    with pytest.raises(InvalidInput, match="not empty"):
        save_model(Doubler(), tmp_path / "busy")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="a file is there"):
        save_model(Doubler(), tmp_path / "file")


def test_save_into_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    save_model(Doubler(), tmp_path / "empty")
    assert verify_package(tmp_path / "empty").flavor == "python"


class BrokenFlavor:
    name = "broken"
    extra = ""

    def can_handle(self, obj: Any) -> bool:
        return True

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        (folder / "half-written.bin").write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        raise AssertionError("never loaded")

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        raise AssertionError("never called")

    def libraries(self) -> list[str]:
        return []


def test_failure_midway_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="disk on fire"):
        save_model(object(), tmp_path / "m", flavor=BrokenFlavor())
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput):
        save_model(object(), tmp_path / "empty", flavor=BrokenFlavor())
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]
    assert list((tmp_path / "empty").iterdir()) == []


def test_an_example_the_model_cannot_run_leaves_nothing(tmp_path: Path) -> None:
    class Failing(PythonModel):
        def predict(self, inputs: Any) -> Any:
            raise ValueError("bad model")

    with pytest.raises(ValueError, match="bad model"):
        save_model(Failing(), tmp_path / "m", input_example=[{"x": 1.0}])
    assert list(tmp_path.iterdir()) == []


def test_unsupported_object_names_the_flavors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        save_model(object(), tmp_path / "m")
    for name in ("sklearn", "xgboost", "lightgbm", "torch", "onnx", "python"):
        assert f"{name}:" in str(caught.value)
    assert not (tmp_path / "m").exists()


def test_wrong_explicit_flavor(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="the sklearn flavor cannot package a Doubler"):
        save_model(Doubler(), tmp_path / "m", flavor="sklearn")
    with pytest.raises(InvalidInput, match="unknown flavor 'keras'"):
        save_model(Doubler(), tmp_path / "m", flavor="keras")
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(InvalidInput, match="artifacts= is for the python flavor, not sklearn"):
        save_model(LogisticRegression(), tmp_path / "m", artifacts={"a": tmp_path})
    with pytest.raises(InvalidInput, match="holds the package being written"):
        save_model(Doubler(), tmp_path / "m", artifacts={"a": tmp_path})
    assert list(tmp_path.iterdir()) == []


def test_missing_framework_names_the_extra(
    numeric_data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    xgb = pytest.importorskip("xgboost")
    features, labels = numeric_data
    model = xgb.XGBClassifier(n_estimators=2, max_depth=2, n_jobs=1).fit(features, labels)
    save_model(model, tmp_path / "saved")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # import xgboost now fails
    with pytest.raises(MissingDependency, match=r"pip install 'mlops\[xgboost\]'"):
        save_model(model, tmp_path / "m", flavor="xgboost")
    with pytest.raises(MissingDependency, match=r"mlops\[xgboost\]"):
        load_model(tmp_path / "saved")
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    ("flavor", "module"),
    [
        ("sklearn", "sklearn"),
        ("xgboost", "xgboost"),
        ("lightgbm", "lightgbm"),
        ("onnx", "onnxruntime"),
        ("torch", "torch"),
    ],
)
def test_every_flavor_names_its_extra(
    flavor: str, module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependency, match=rf"pip install 'mlops\[{flavor}\]'"):
        save_model(object(), tmp_path / "m", flavor=flavor)
    assert list(tmp_path.iterdir()) == []


def test_missing_skops_falls_back_to_pickle(
    numeric_data: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    features, labels = numeric_data
    model = LogisticRegression().fit(features, labels)
    save_model(model, tmp_path / "skops")
    monkeypatch.setitem(sys.modules, "skops", None)
    monkeypatch.setitem(sys.modules, "skops.io", None)
    manifest = save_model(model, tmp_path / "pickle")
    assert manifest.flavor_options["serialization"] == "pickle"
    with pytest.raises(MissingDependency, match="pip install skops"):
        load_model(tmp_path / "skops")


def test_python_model_context_paths(tmp_path: Path) -> None:
    folder = tmp_path / "vocab"
    folder.mkdir()
    (folder / "words.txt").write_text("a\nb")

    class Vocabulary(PythonModel):
        def load(self, context: ModelContext) -> None:
            self.words = (context.artifacts["vocab"] / "words.txt").read_text().split()

        def predict(self, inputs: Any) -> Any:
            return [word in self.words for word in inputs]

    manifest = save_model(Vocabulary(), tmp_path / "m", artifacts={"vocab": folder})
    assert "artifacts/vocab/words.txt" in manifest.files
    assert load_model(tmp_path / "m").predict(["a", "z"])["predictions"] == [True, False]
    with pytest.raises(InvalidInput, match=r"artifact name '\.\./x' is invalid"):
        save_model(Vocabulary(), tmp_path / "n", artifacts={"../x": folder})
    assert not (tmp_path / "n").exists()


def test_categories_come_from_reference_data(tmp_path: Path) -> None:
    import pandas as pd

    class Echo(PythonModel):
        def predict(self, inputs: Any) -> Any:
            return inputs["plan"].to_numpy()

    example = pd.DataFrame({"plan": ["pro"]})
    reference = pd.DataFrame({"plan": ["basic", "pro", "team"]})
    without = save_model(Echo(), tmp_path / "a", input_example=example)
    assert without.signature is not None
    assert without.signature.inputs[0].categories is None
    assert load_model(tmp_path / "a").predict([{"plan": "other"}])["predictions"] == ["other"]
    with_reference = save_model(
        Echo(), tmp_path / "b", input_example=example, reference_data=reference
    )
    assert with_reference.signature is not None
    assert with_reference.signature.inputs[0].categories == ("basic", "pro", "team")
    with pytest.raises(InvalidInput, match="unknown category 'other'"):
        load_model(tmp_path / "b").predict([{"plan": "other"}])
    allowing = load_model(tmp_path / "b", unknown_category="allow")
    assert allowing.predict([{"plan": "other"}])["predictions"] == ["other"]


def test_environment_lists_the_flavor_libraries() -> None:
    import sklearn

    environment = capture_environment("sklearn")
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert f"scikit-learn=={sklearn.__version__}" in environment["requirements"]
    assert f"numpy=={np.__version__}" in environment["requirements"]
    assert any(r.startswith("mlops==") for r in environment["requirements"])
    assert environment["platform"]


def test_metadata_must_be_json(tmp_path: Path) -> None:
    manifest = save_model(Doubler(), tmp_path / "m", metadata={"owner": "risk", "auc": 0.9})
    assert load_model(tmp_path / "m").manifest.metadata == {"owner": "risk", "auc": 0.9}
    assert manifest.metadata["owner"] == "risk"
    with pytest.raises(InvalidInput, match="cannot store a object"):
        save_model(Doubler(), tmp_path / "n", metadata={"bad": object()})
    assert not (tmp_path / "n").exists()
