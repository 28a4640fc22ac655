"""The ``deploy`` and ``monitor`` sections, checked against the real strategy and rule types.

deploy:
  endpoint: churn
  strategy: canary            # canary | blue_green | rolling | ab | shadow | direct
  steps_percent: [10, 50, 100]  # any setting of that strategy, inline
  interval_seconds: 5m
  gate: {max_error_rate: 0.05}
monitor:
  rules:
    - {name: churn-accuracy-drop, signal: accuracy_drop, threshold: 0.05, window: 1h}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mlops.deployment import ABTest, Analysis, BlueGreen, Canary, Direct, Rolling, Shadow, Strategy
from mlops.errors import InvalidInput
from mlops.monitoring.alerts import AlertRule
from mlops.pipelines.training._config_sections import Strict
from mlops.pipelines.training._errors import ConfigProblem, UnknownKey

__all__ = ["STRATEGIES", "DeployConfig", "MonitorConfig", "alert_rule", "build_strategy"]

#: Strategy names in a config, and the deployment strategy each one builds.
STRATEGIES: dict[str, type[Any]] = {
    "canary": Canary,
    "blue_green": BlueGreen,
    "rolling": Rolling,
    "ab": ABTest,
    "shadow": Shadow,
    "direct": Direct,
}
_DEPLOY_KEYS = ("endpoint", "strategy")


class DeployConfig(BaseModel):
    """Roll the registered version out to ``endpoint``; other keys configure the strategy."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True)

    endpoint: str = Field(min_length=1)
    strategy: Literal["canary", "blue_green", "rolling", "ab", "shadow", "direct"] = "canary"

    @model_validator(mode="after")
    def _strategy_settings(self) -> DeployConfig:
        build_strategy(self.strategy, self.settings)
        return self

    @property
    def settings(self) -> dict[str, Any]:
        """The strategy's own settings (every key besides endpoint and strategy)."""
        return dict(self.model_extra or {})


def build_strategy(name: str, settings: Mapping[str, Any]) -> Strategy:
    """The strategy object for a config's ``strategy`` name and settings."""
    cls = STRATEGIES[name]
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in settings:
        if key not in allowed:
            raise UnknownKey(key, [*_DEPLOY_KEYS, *allowed])
    arguments = dict(settings)
    if "gate" in arguments and arguments["gate"] is not None:
        arguments["gate"] = _analysis(arguments["gate"])
    try:
        strategy: Strategy = cls(**arguments)
    except InvalidInput as error:
        raise ConfigProblem(f"the {name} strategy: {error}") from None
    except TypeError as error:
        raise ConfigProblem(f"the {name} strategy: {error}") from None
    return strategy


def _analysis(gate: Any) -> Analysis:
    if not isinstance(gate, Mapping):
        raise ConfigProblem("expected a mapping of analysis settings", at=("gate",))
    allowed = [f.name for f in dataclasses.fields(Analysis)]
    for key in gate:
        if key not in allowed:
            raise UnknownKey(str(key), allowed, at=("gate",))
    try:
        return Analysis(**gate)
    except (InvalidInput, TypeError) as error:
        raise ConfigProblem(str(error), at=("gate",)) from None


_RULE_KEYS = [
    "for" if f.name == "for_" else f.name for f in dataclasses.fields(AlertRule) if f.init
]


def alert_rule(spec: Mapping[str, Any], endpoint: str | None) -> AlertRule:
    """An ``AlertRule`` from a config entry (``for`` stands for the field ``for_``)."""
    arguments = {("for_" if key == "for" else key): value for key, value in spec.items()}
    arguments.setdefault("endpoint", endpoint)
    return AlertRule(**arguments)


class MonitorConfig(Strict):
    """Alert rules to create, or update, for the endpoint (default: deploy's endpoint)."""

    endpoint: str | None = None
    rules: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _rules(cls, rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names: set[str] = set()
        for index, spec in enumerate(rules):
            for key in spec:
                if key not in _RULE_KEYS:
                    raise UnknownKey(key, _RULE_KEYS, at=(index,))
            for key in ("name", "signal", "threshold"):
                if key not in spec:
                    raise ConfigProblem("required, but missing", at=(index, key))
            try:
                rule = alert_rule(spec, "validation")
            except (InvalidInput, TypeError) as error:
                raise ConfigProblem(str(error), at=(index,)) from None
            if rule.name in names:
                raise ConfigProblem(f"two rules are called {rule.name!r}", at=(index, "name"))
            names.add(rule.name)
        return rules
