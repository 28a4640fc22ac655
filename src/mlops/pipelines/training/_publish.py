"""The ``register``, ``deploy`` and ``monitor`` logic: what reaches the registry, the
endpoints and the alert rules once a challenger has won."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlops.deployment import Direct
from mlops.errors import Conflict, MLOpsError, NotFound, PolicyViolation
from mlops.pipelines.training._config_ops import (
    DeployConfig,
    MonitorConfig,
    alert_rule,
    build_strategy,
)
from mlops.pipelines.training._config_sections import RegisterConfig
from mlops.pipelines.training._data import (
    Evaluation,
    PreparedData,
    Registration,
    Rollout,
    TrainedModel,
)
from mlops.pipelines.training._metrics import finite
from mlops.registry import ApprovalRequest

if TYPE_CHECKING:
    from mlops._client import MLOps

__all__ = ["apply_rules", "deploy_version", "register_challenger"]

_EXAMPLE_ROWS = 5


def _stale_verdict(ml: MLOps, model: str, evaluation: Evaluation) -> str | None:
    """Why the evaluation no longer holds, if the champion changed since it was made
    (a rerun of ``register`` alone on an old evaluation, or another pipeline's version)."""
    if evaluation.compared_with is None:
        return None
    try:
        current: int | None = ml.registry.get_version(model, evaluation.compared_with).number
    except NotFound:
        current = None
    if current == evaluation.champion_version:
        return None
    then = (
        "none" if evaluation.champion_version is None else f"version {evaluation.champion_version}"
    )
    return (
        f"the evaluation compared the challenger with {then} of {model!r} at "
        f"{evaluation.compared_with}, which is now version {current}; evaluate again (run "
        "the pipeline, or its evaluate stage) before registering"
    )


def register_challenger(
    ml: MLOps,
    prepared: PreparedData,
    trained: TrainedModel,
    evaluation: Evaluation,
    config: RegisterConfig,
    *,
    pipeline: str,
    run_id: str | None,
) -> Registration:
    """Register the challenger if it won (then promote it and set the alias, if asked).

    Everything that can refuse the version is checked before it is registered, so a
    failure leaves no new version behind: the policy of a production promotion is
    evaluated first, and registration itself is atomic.
    """
    if not evaluation.challenger_wins:
        return Registration(False, f"not registered: {evaluation.reason}")
    registry = ml.registry
    stale = _stale_verdict(ml, config.model, evaluation)
    if stale is not None:
        return Registration(False, f"not registered: {stale}")
    metrics = finite(evaluation.metrics)
    if trained.metric is not None and trained.cv_score is not None:
        metrics[f"cv_{trained.metric}"] = trained.cv_score
    if config.stage == "production":
        _check_policy(ml, config.model, metrics)
    metadata: dict[str, Any] = {
        "pipeline": pipeline,
        "pipeline_run": run_id,
        "candidate": trained.candidate,
        "algorithm": trained.algorithm,
        "params": trained.params,
        "derived_features": [list(pair) for pair in prepared.derived],
        "champion_version": evaluation.champion_version,
        "verdict": evaluation.reason,
        **config.metadata,
    }
    features = prepared.features
    version = registry.register_model(
        config.model,
        trained.model,
        metrics=metrics,
        metadata=metadata,
        input_example=features(prepared.holdout).head(_EXAMPLE_ROWS),
        reference_data=features(prepared.train),
        run=run_id,
        datasets=[(prepared.dataset, "training")],
        description=config.description,
    )
    stage = version.stage.value
    request = None
    if config.stage is not None:
        try:
            promoted = registry.promote_to_stage(
                config.model,
                version.number,
                config.stage,
                reason=f"pipeline {pipeline}: {evaluation.reason}",
            )
        except MLOpsError as error:  # checked above; this is a change made meanwhile
            raise Conflict(
                f"registered {config.model} version {version.number} ({version.semver}), but "
                f"promoting it to {config.stage} failed: {error}; promote it once that is "
                f"fixed: ml.registry.promote_to_stage({config.model!r}, {version.number}, "
                f"{config.stage!r})"
            ) from error
        if isinstance(promoted, ApprovalRequest):
            request = promoted.id
        else:
            stage = promoted.stage.value
    if config.alias is not None and request is None:
        registry.set_alias(
            config.model, config.alias, version.number, reason=f"pipeline {pipeline}"
        )
    pending = (
        f"; promotion to {config.stage} awaits approval (request {request})" if request else ""
    )
    return Registration(
        True,
        f"registered {config.model} version {version.number} ({version.semver}){pending}",
        model=config.model,
        version=version.number,
        semver=version.semver,
        stage=stage,
        approval_request=request,
    )


def _check_policy(ml: MLOps, model: str, metrics: dict[str, float]) -> None:
    try:
        policy = ml.registry.get_policy(model)
    except NotFound:
        return
    if policy is None:
        return
    if policy.require_signature:
        raise PolicyViolation(
            f"model {model!r} requires signed versions in production, and the training "
            "pipeline does not sign; register without register.stage: production and "
            "promote a signed version yourself"
        )
    try:
        current = ml.registry.get_version(model, "production")
        production: tuple[str, dict[str, float]] | None = (current.semver, dict(current.metrics))
    except NotFound:
        production = None
    policy.check(model, "(the challenger)", metrics, production)


def deploy_version(ml: MLOps, registration: Registration, config: DeployConfig) -> Rollout:
    """Roll the registered version out with the configured strategy; the endpoint's very
    first version goes out directly (there is nothing to canary against yet)."""
    if not registration.registered or registration.version is None:
        return Rollout(False, "nothing was registered, so nothing is deployed")
    if registration.approval_request is not None:
        return Rollout(
            False,
            f"version {registration.version} waits for approval (request "
            f"{registration.approval_request}); deploy it once approved",
        )
    assert registration.model is not None
    strategy = build_strategy(config.strategy, config.settings)
    note = ""
    if _serves_nothing(ml, config.endpoint) and not isinstance(strategy, Direct):
        strategy = Direct()
        note = f" (directly: the endpoint served nothing, so there is no {config.strategy} yet)"
    deployment = ml.deployments.deploy(
        config.endpoint, registration.model, registration.version, strategy=strategy
    )
    return Rollout(
        True,
        f"deploying {registration.model} version {registration.version} to "
        f"{config.endpoint!r} with {deployment.strategy}{note}",
        endpoint=config.endpoint,
        deployment_id=deployment.id,
        strategy=deployment.strategy,
        state=deployment.state.value,
    )


def _serves_nothing(ml: MLOps, endpoint: str) -> bool:
    try:
        latest = ml.deployments.status(endpoint)
    except NotFound:
        return True
    return (
        latest.stable_version is None
        and not latest.state.active
        and latest.state.value != "succeeded"
    )


def apply_rules(ml: MLOps, config: MonitorConfig, endpoint: str | None) -> dict[str, str]:
    """Create each rule, or update it to the config if it exists: rule name → what happened."""
    alerts = ml.monitor.alerts
    target = config.endpoint or endpoint
    outcome: dict[str, str] = {}
    for spec in config.rules:
        rule = alert_rule(spec, target)
        try:
            alerts.get_rule(rule.name)
        except NotFound:
            alerts.create_rule(rule)
            outcome[rule.name] = "created"
            continue
        changes = {k: v for k, v in rule.get_params().items() if k != "name"}
        alerts.update_rule(rule.name, **changes)
        outcome[rule.name] = "updated"
    return outcome
