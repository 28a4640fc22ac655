"""Where a pipeline comes from: "package.module:attribute" or a YAML config, in any process."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from mlops.errors import InvalidInput
from mlops.pipelines import Pipeline

__all__ = ["normalize_source", "resolve_source", "source_of"]

_YAML_SUFFIXES = (".yaml", ".yml")


def resolve_source(source: str) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline ``source`` names, and the default params to run it with.

    ``source`` is "package.module:attribute" naming a ``Pipeline`` (or a function of no
    arguments returning one), or the path of a YAML pipeline config. The params are
    those the source adds to the pipeline's own (none for now: a Pipeline carries its
    params itself).
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(
            f"a pipeline source is 'package.module:attribute' or a YAML path; got {source!r}"
        )
    if source.endswith(_YAML_SUFFIXES):
        return _from_yaml(source), {}
    module_name, separator, attribute = source.partition(":")
    if not separator or not module_name or not attribute:
        raise InvalidInput(
            f"pipeline source {source!r} is neither 'package.module:attribute' nor a .yaml "
            "path; e.g. 'myproject.pipelines:nightly' or 'pipelines/churn.yaml'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InvalidInput(
            f"pipeline source {source!r}: cannot import module {module_name!r} ({error}); "
            "install the package, or put its folder on PYTHONPATH of every process that "
            "runs pipelines"
        ) from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise InvalidInput(
                f"pipeline source {source!r}: module {module_name!r} has no attribute {part!r}"
            )
        target = getattr(target, part)
    if not isinstance(target, Pipeline) and callable(target):
        try:
            target = target()
        except TypeError as error:
            raise InvalidInput(
                f"pipeline source {source!r} is a callable that needs arguments ({error}); "
                "name a Pipeline or a function of no arguments that returns one"
            ) from None
    if not isinstance(target, Pipeline):
        raise InvalidInput(
            f"pipeline source {source!r} is a {type(target).__name__}, not a Pipeline; name a "
            "mlops.pipelines.Pipeline or a function of no arguments that returns one"
        )
    return target, {}


def _from_yaml(source: str) -> Pipeline:
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(
            f"pipeline config {source!r} does not exist; give the path of a YAML file"
        )
    # Imported when needed (and by name, while that module is young): the training
    # pipeline pulls in its own dependencies.
    training = importlib.import_module("mlops.pipelines.training")
    pipeline = training.PipelineConfig.from_file(path).pipeline()
    if not isinstance(pipeline, Pipeline):  # pragma: no cover - the config's contract
        raise InvalidInput(f"pipeline config {source!r} did not build a Pipeline")
    return pipeline


def normalize_source(source: str | Pipeline) -> str:
    """The source as stored: a YAML path made absolute, a Pipeline as "module:attr"."""
    if isinstance(source, Pipeline):
        return source_of(source)
    if not isinstance(source, str):
        raise InvalidInput(
            f"source must be 'package.module:attribute', a YAML path or a Pipeline; "
            f"got {type(source).__name__}"
        )
    if source.endswith(_YAML_SUFFIXES):
        return str(Path(source).expanduser().resolve())
    return source.strip()


def source_of(pipeline: Pipeline) -> str:
    """ "module:attr" for a Pipeline bound to a module-level name of an importable module."""
    modules = dict.fromkeys(getattr(step.fn, "__module__", None) for step in pipeline.steps).keys()
    for module_name in modules:
        if module_name is None or module_name == "__main__":
            continue
        module = sys.modules.get(module_name)
        for attribute, value in vars(module or object()).items():
            if value is pipeline:
                return f"{module_name}:{attribute}"
    raise InvalidInput(
        f"pipeline {pipeline.name!r} is not a module-level name of an importable module, so "
        "other processes cannot load it; define it in a module and register it as "
        "source='package.module:attribute'"
    )
