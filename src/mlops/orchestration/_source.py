"""Where a pipeline comes from: "package.module:attribute" or a YAML config, in any process."""

from __future__ import annotations

import copy
import importlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlops.errors import InvalidInput
from mlops.pipelines import Pipeline

__all__ = ["normalize_source", "resolve_source", "source_of"]

_YAML_SUFFIXES = (".yaml", ".yml")


def resolve_source(
    source: str, params: Mapping[str, Any] | None = None
) -> tuple[Pipeline, dict[str, Any]]:
    """The pipeline ``source`` names with ``params`` applied, and the params to run it with.

    ``source`` is "package.module:attribute" naming a ``Pipeline`` (or a function of no
    arguments returning one), or the path of a YAML pipeline config.

    For a ``Pipeline``, ``params`` are its params (checked by name) and come back as
    they are. For a YAML config they change the config before it is checked and built:
    ``{"train.trials": 50, "seed": 7}`` (dotted keys reach into sections) or nested
    ``{"train": {"trials": 50}}``; a mistake is reported as in the file. The pipeline then
    carries them, and the params returned are empty.
    """
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(
            f"a pipeline source is 'package.module:attribute' or a YAML path; got {source!r}"
        )
    params = dict(params or {})
    if source.endswith(_YAML_SUFFIXES):
        return _from_yaml(source, params), {}
    pipeline = _from_module(source)
    unknown = sorted(set(params) - pipeline.param_names)
    if unknown:
        raise InvalidInput(
            f"pipeline {pipeline.name!r} ({source}) takes no param {unknown[0]!r}; its params "
            f"are {', '.join(sorted(pipeline.param_names)) or 'none'}"
        )
    return pipeline, params


def _from_module(source: str) -> Pipeline:
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
    return target


def _from_yaml(source: str, overrides: Mapping[str, Any]) -> Pipeline:
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(
            f"pipeline config {source!r} does not exist; give the path of a YAML file"
        )
    from mlops.pipelines.training import PipelineConfig

    if not overrides:
        return PipelineConfig.from_file(path).pipeline()
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"pipeline config {source!r} cannot be read: {error}") from None
    if not isinstance(raw, dict):
        raise InvalidInput(f"pipeline config {source!r} is not a mapping of sections")
    for key, value in overrides.items():
        _override(raw, key, value, source)
    return PipelineConfig.from_dict(raw, base_dir=path.parent).pipeline()


def _override(raw: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set ``raw[a][b] = value`` for the key "a.b" (sections made as needed)."""
    parts = key.split(".")
    if not all(part.strip() for part in parts):
        raise InvalidInput(
            f"param {key!r} for config {source!r} is not a config key; give a dotted path "
            "such as 'train.trials' or 'seed'"
        )
    target = raw
    for depth, part in enumerate(parts[:-1]):
        section = target.setdefault(part, {})
        if not isinstance(section, dict):
            where = ".".join(parts[: depth + 1])
            raise InvalidInput(
                f"param {key!r}: {where!r} in config {source!r} is not a section, so it has "
                f"no key {parts[depth + 1]!r}; set {where!r} itself"
            )
        target = section
    last = parts[-1]
    if isinstance(value, Mapping) and isinstance(target.get(last), dict):
        merged = copy.deepcopy(target[last])
        merged.update(value)
        target[last] = merged
    else:
        target[last] = value


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
