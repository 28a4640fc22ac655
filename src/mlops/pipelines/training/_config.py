"""``PipelineConfig``: the training pipeline as a YAML file, checked strictly on load.

    config = PipelineConfig.from_file("churn.yaml")
    result = run_pipeline(ml, config.pipeline())

Relative data paths (and relative SQLite URLs) resolve against the config file's
folder; ``from_dict`` and ``from_yaml`` take ``base_dir`` (default: the working folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from mlops.errors import InvalidInput
from mlops.pipelines.training._algorithms import get_algorithm, hyperparameters
from mlops.pipelines.training._config_ops import DeployConfig, MonitorConfig
from mlops.pipelines.training._config_sections import (
    DataConfig,
    DerivedFeature,
    EvaluateConfig,
    PreprocessConfig,
    RegisterConfig,
    Strict,
    ValidateConfig,
)
from mlops.pipelines.training._config_train import TrainConfig
from mlops.pipelines.training._errors import ConfigProblem, UnknownKey, config_error
from mlops.pipelines.training._metrics import DEFAULT_METRIC, TASK_METRICS, UNSUPERVISED
from mlops.tracking._validation import check_name

if TYPE_CHECKING:
    from mlops.pipelines import Pipeline

__all__ = ["PipelineConfig"]


class PipelineConfig(Strict):
    """A training pipeline: data, validation, preprocessing, features, training,
    evaluation, and optionally registration, deployment and monitoring.

    Build one with ``from_file``, ``from_yaml`` or ``from_dict``; every mistake is one
    ``InvalidInput`` listing each problem with its place (``train.candidates[1].paramz``)
    and, for an unknown key, the keys allowed there.
    """

    name: str
    task: Literal["classification", "regression", "anomaly_detection"]
    label: str | None = None
    positive_label: str | int | bool | None = None
    metric: str | None = None
    seed: int = 0
    data: DataConfig
    validation: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    preprocess: PreprocessConfig = Field(default_factory=PreprocessConfig)
    features: list[DerivedFeature] = Field(default_factory=list)
    train: TrainConfig
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    registration: RegisterConfig | None = Field(default=None, alias="register")
    deploy: DeployConfig | None = None
    monitor: MonitorConfig | None = None

    # -- loading ------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PipelineConfig:
        """Read a YAML config; relative paths in it resolve against its folder."""
        file = Path(path)
        if not file.is_file():
            raise InvalidInput(f"pipeline config {file} does not exist or is not a file")
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput(f"cannot read pipeline config {file}: {error}") from None
        return cls._parse(text, source=str(file), base_dir=file.resolve().parent)

    @classmethod
    def from_yaml(
        cls, text: str, *, base_dir: str | os.PathLike[str] | None = None
    ) -> PipelineConfig:
        """Parse YAML text; relative paths resolve against ``base_dir`` (default: cwd)."""
        return cls._parse(text, source=None, base_dir=_base(base_dir))

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, base_dir: str | os.PathLike[str] | None = None
    ) -> PipelineConfig:
        """Check a mapping (as parsed from YAML or JSON) and build the config."""
        return cls._build(data, source=None, base_dir=_base(base_dir))

    @classmethod
    def _parse(cls, text: str, *, source: str | None, base_dir: Path) -> PipelineConfig:
        where = source or "the YAML text"
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error)
            raise InvalidInput(f"{where} is not valid YAML{at}: {problem}") from None
        return cls._build(data, source=source, base_dir=base_dir)

    @classmethod
    def _build(cls, data: Any, *, source: str | None, base_dir: Path) -> PipelineConfig:
        if not isinstance(data, Mapping):
            raise InvalidInput(
                f"a pipeline config is a mapping with name, task, data, train, ...; "
                f"{source or 'the input'} holds {type(data).__name__}"
            )
        try:
            config = cls.model_validate(dict(data))
        except ValidationError as error:
            raise config_error(error, cls, source) from None
        return config._resolved(base_dir)

    def _resolved(self, base_dir: Path) -> PipelineConfig:
        data = self.data
        if data.path is not None and not Path(data.path).is_absolute():
            data = data.model_copy(update={"path": str(base_dir / data.path)})
        if data.sql is not None and data.sql.url.startswith("sqlite:///"):
            database = data.sql.url.removeprefix("sqlite:///")
            if database and database != ":memory:" and not Path(database).is_absolute():
                sql = data.sql.model_copy(update={"url": f"sqlite:///{base_dir / database}"})
                data = data.model_copy(update={"sql": sql})
        return self.model_copy(update={"data": data})

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, in the form ``from_dict`` reads."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def pipeline(self) -> Pipeline:
        """The ``mlops.pipelines.Pipeline`` this config describes, named ``name``."""
        from mlops.pipelines.training._steps import build_pipeline

        return build_pipeline(self)

    @property
    def primary_metric(self) -> str:
        """The metric the search optimizes and the champion comparison uses."""
        return self.metric or DEFAULT_METRIC[self.task]

    # -- checks across sections ---------------------------------------------------------

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        try:
            return check_name("pipeline", name)
        except InvalidInput as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        self._check_label_and_metric()
        self._check_candidates()
        self._check_features()
        if self.deploy is not None and self.registration is None:
            raise ConfigProblem(
                "deploy needs a register section: only a registered version can be deployed",
                at=("deploy",),
            )
        if self.monitor is not None and self.monitor.endpoint is None and self.deploy is None:
            raise ConfigProblem(
                "monitor needs an endpoint: set monitor.endpoint, or add a deploy section",
                at=("monitor",),
            )
        return self

    def _check_label_and_metric(self) -> None:
        if self.label is None and self.task != "anomaly_detection":
            raise ConfigProblem(
                f"{self.task} needs the label column: set label to the column to predict",
                at=("label",),
            )
        if self.metric is None:
            return
        allowed = [name for name in TASK_METRICS[self.task] if name not in UNSUPERVISED]
        if self.task == "anomaly_detection" and self.label is None:
            raise ConfigProblem(
                "an anomaly detector without a label column can only report; remove metric, "
                "or set label to a column that marks the known anomalies",
                at=("metric",),
            )
        if self.metric not in allowed:
            raise ConfigProblem(
                f"{self.metric!r} is not a {self.task} metric; use one of {', '.join(allowed)}",
                at=("metric",),
            )

    def _check_candidates(self) -> None:
        for index, candidate in enumerate(self.train.candidates):
            at = ("train", "candidates", index)
            try:
                algorithm = get_algorithm(self.task, candidate.algorithm)
            except InvalidInput as error:
                raise ConfigProblem(str(error), at=(*at, "algorithm")) from None
            known = hyperparameters(algorithm)
            for section in ("params", "search"):
                for key in getattr(candidate, section):
                    if key not in known:
                        raise UnknownKey(key, known, at=(*at, section))
        if self.task == "anomaly_detection" and self.label is None:
            candidates = self.train.candidates
            if len(candidates) > 1 or candidates[0].search:
                raise ConfigProblem(
                    "without a label column nothing can score anomaly detectors against each "
                    "other; keep one candidate with fixed params, or set label to a column "
                    "that marks the known anomalies",
                    at=("train", "candidates"),
                )

    def _check_features(self) -> None:
        names: set[str] = set()
        for index, feature in enumerate(self.features):
            if feature.name in names:
                raise ConfigProblem(
                    f"two features are called {feature.name!r}", at=("features", index, "name")
                )
            if self.label is not None and self.label in feature.columns:
                raise ConfigProblem(
                    f"uses the label {self.label!r}; a feature computed from the label is not "
                    "available when the model serves",
                    at=("features", index, "expr"),
                )
            if feature.name in (self.label, *self.preprocess.drop):
                raise ConfigProblem(
                    f"{feature.name!r} is the label or a dropped column; pick another name",
                    at=("features", index, "name"),
                )
            names.add(feature.name)


def _base(base_dir: str | os.PathLike[str] | None) -> Path:
    return Path.cwd() if base_dir is None else Path(base_dir).resolve()
