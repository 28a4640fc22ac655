"""``mlops models``: registered models, versions, stages, aliases, policies and approvals."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from mlops.cli._common import (
    first_keys,
    format_number,
    format_time,
    get_state,
    print_json,
    stdout_console,
)
from mlops.registry import (
    ApprovalRequest,
    ApprovalStatus,
    ModelRegistry,
    ModelVersion,
    PromotionPolicy,
    RegisteredModel,
    Stage,
    Transition,
)

__all__ = ["model_json", "models_app", "version_json"]

models_app = typer.Typer(
    help="Registered models: versions, stages, aliases, promotion policies and approvals. "
    "A VERSION is a number (3), a semantic version (1.2.0), a stage, @alias or latest.",
    no_args_is_help=True,
)

NameArgument = Annotated[str, typer.Argument(metavar="NAME", help="Registered model name.")]
VersionArgument = Annotated[
    str,
    typer.Argument(metavar="VERSION", help="3, 1.2.0, production, @champion or latest."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON to stdout instead.")]
ActorOption = Annotated[
    str | None,
    typer.Option(
        "--actor", metavar="NAME", help="Identity recorded for the change (default: MLOPS_USER)."
    ),
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why; recorded in the history.")
]
CommentOption = Annotated[
    str | None, typer.Option("--comment", "-c", help="Recorded with the decision.")
]

_STAGE_STYLES = {
    Stage.PRODUCTION: "bold white on green",
    Stage.STAGING: "bold black on yellow",
    Stage.ARCHIVED: "dim",
    Stage.NONE: "dim",
}
_APPROVAL_STYLES = {"pending": "bold yellow", "approved": "green", "rejected": "red"}
_SHOWN_METRICS = 3
_BEST = "bold green"


def _registry(ctx: typer.Context) -> ModelRegistry:
    return get_state(ctx).connect().registry


# -- JSON ---------------------------------------------------------------------------------


def model_json(model: RegisteredModel, versions: Sequence[ModelVersion]) -> dict[str, Any]:
    """A model as JSON-ready data, with the semantic versions of its latest and production."""
    return dataclasses.asdict(model) | {
        "latest_semver": _semver(versions, model.latest_version),
        "production_semver": _semver(versions, model.production_version),
    }


def version_json(version: ModelVersion, *, trusted: bool | None = None) -> dict[str, Any]:
    """A version as JSON-ready data; ``trusted``: it carries a signature that verifies."""
    data = dataclasses.asdict(version)
    del data["signature"]  # never filled in by the registry; signed_by names the key
    return data | {
        "uri": version.uri,
        "datasets": [
            {"name": name, "digest": digest, "context": context}
            for name, digest, context in version.datasets
        ],
        "signed": version.signed_by is not None,
        "signature_trusted": trusted,
    }


def _policy_json(policy: PromotionPolicy | None) -> dict[str, Any] | None:
    return None if policy is None else dict(json.loads(policy.to_json()))


# -- cells --------------------------------------------------------------------------------


def _semver(versions: Sequence[ModelVersion], number: int | None) -> str | None:
    return next((v.semver for v in versions if v.number == number), None)


def _version_label(versions: Sequence[ModelVersion], number: int | None) -> str:
    if number is None:
        return "—"
    semver = _semver(versions, number)
    return str(number) if semver is None else f"{number} ({semver})"


def _count(items: Sequence[object], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _describe(version: ModelVersion) -> str:
    return f"'{version.model_name}' version {version.number} ({version.semver})"


def _stage_badge(stage: Stage) -> Text:
    return Text(f" {stage.value} ", style=_STAGE_STYLES[stage])


def _signed_cell(version: ModelVersion, trusted: bool) -> Text:
    if version.signed_by is None:
        return Text("—", style="dim")
    if trusted:
        return Text("✓ trusted", style="green")
    return Text("untrusted", style="bold red")


def _trust(registry: ModelRegistry, versions: Sequence[ModelVersion]) -> dict[int, bool]:
    return {
        v.number: v.signed_by is not None and registry.verify_version(v.model_name, v.number)
        for v in versions
    }


def _versions_table(versions: Sequence[ModelVersion], trust: Mapping[int, bool]) -> Table:
    metric_keys = first_keys([v.metrics for v in versions], _SHOWN_METRICS)
    table = Table(
        title=_count(versions, "version"), title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False
    )
    table.add_column("version", justify="right", style="cyan", no_wrap=True)
    table.add_column("semver", style="bold", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    table.add_column("aliases", overflow="fold", min_width=7)
    table.add_column("flavor", no_wrap=True)
    for key in metric_keys:
        table.add_column(key, justify="right", header_style="bold green", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("signed", no_wrap=True)
    for version in versions:
        metrics = [
            format_number(version.metrics[key]) if key in version.metrics else ""
            for key in metric_keys
        ]
        table.add_row(
            str(version.number),
            version.semver,
            _stage_badge(version.stage),
            ", ".join(f"@{alias}" for alias in version.aliases),
            version.flavor,
            *metrics,
            format_time(version.created_at),
            _signed_cell(version, trust.get(version.number, False)),
        )
    return table


# -- listing and showing ------------------------------------------------------------------


@models_app.command("list")
def list_models(
    ctx: typer.Context,
    stage: Annotated[
        str | None,
        typer.Option(
            "--stage", "-s", metavar="STAGE", help="Only models with a version in this stage."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models with their latest and production versions."""
    registry = _registry(ctx)
    found = [
        (model, registry.list_versions(model.name)) for model in registry.list_models(stage=stage)
    ]
    if as_json:
        print_json({"models": [model_json(model, versions) for model, versions in found]})
        return
    if not found:
        stdout_console().print(
            f"no model has a {stage} version"
            if stage
            else "no models yet; register one with ml.registry.register_model(name, model)"
        )
        return
    table = Table(title=_count(found, "model"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "latest", "production", "aliases", "updated"):
        table.add_column(column, style="bold" if column == "name" else None, overflow="fold")
    for model, versions in found:
        aliases = ", ".join(f"@{alias}→{number}" for alias, number in sorted(model.aliases.items()))
        table.add_row(
            model.name,
            _version_label(versions, model.latest_version),
            Text(
                _version_label(versions, model.production_version),
                style="green" if model.production_version else "dim",
            ),
            aliases,
            format_time(model.updated_at),
        )
    stdout_console().print(table)


@models_app.command("show")
def show_model(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Show a model: description, owner, tags, policy, and its versions."""
    registry = _registry(ctx)
    model = registry.get_model(name)
    versions = registry.list_versions(name)
    policy = registry.get_policy(name)
    trust = _trust(registry, versions)
    if as_json:
        data = model_json(model, versions) | {
            "policy": _policy_json(policy),
            "versions": [version_json(v, trusted=trust[v.number]) for v in versions],
        }
        print_json(data)
        return
    attributes = Table.grid(padding=(0, 2))
    attributes.add_column(style="bold")
    attributes.add_column(overflow="fold")
    for key, value in (
        ("description", model.description or "—"),
        ("owner", model.owner or "—"),
        ("created", format_time(model.created_at)),
        ("updated", format_time(model.updated_at)),
        ("latest", _version_label(versions, model.latest_version)),
        ("production", _version_label(versions, model.production_version)),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(model.tags.items())) or "—"),
        ("policy", "none" if policy is None else "; ".join(_policy_lines(policy))),
    ):
        attributes.add_row(key, value)
    parts: list[Any] = [Panel(attributes, title=f"model {model.name}", title_align="left")]
    parts.append(_versions_table(versions, trust) if versions else Text("no versions", style="dim"))
    stdout_console().print(Group(*parts))


@models_app.command("versions")
def list_versions(
    ctx: typer.Context,
    name: NameArgument,
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Metrics of every version side by side, best in green."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the versions of a model, oldest first."""
    registry = _registry(ctx)
    versions = registry.compare_versions(name) if compare else registry.list_versions(name)
    trust = _trust(registry, versions)
    policy = registry.get_policy(name) or PromotionPolicy()
    if as_json:
        data: dict[str, Any] = {
            "versions": [version_json(v, trusted=trust[v.number]) for v in versions]
        }
        if compare:
            keys = sorted({key for v in versions for key in v.metrics})
            data["best_metrics"] = {key: _best_versions(versions, key, policy) for key in keys}
        print_json(data)
    elif not versions:
        stdout_console().print(f"model '{name}' has no versions")
    elif compare:
        stdout_console().print(_compare_table(name, versions, policy))
    else:
        stdout_console().print(_versions_table(versions, trust))


def _best_versions(
    versions: Sequence[ModelVersion], metric: str, policy: PromotionPolicy
) -> list[int]:
    """Numbers of the versions with the best finite value of ``metric`` (ties all count)."""
    values = {
        v.number: v.metrics[metric]
        for v in versions
        if metric in v.metrics and math.isfinite(v.metrics[metric])
    }
    if not values:
        return []
    best = min(values.values()) if policy.is_lower_better(metric) else max(values.values())
    return [number for number, value in values.items() if value == best]


def _compare_table(name: str, versions: Sequence[ModelVersion], policy: PromotionPolicy) -> Table:
    table = Table(title=f"versions of {name}", title_justify="left")
    table.add_column("", style="bold", no_wrap=True)
    for version in versions:
        table.add_column(
            f"{version.number} ({version.semver})", justify="right", header_style="cyan"
        )
    table.add_row("stage", *(_stage_badge(v.stage) for v in versions))
    table.add_row("aliases", *(", ".join(f"@{a}" for a in v.aliases) for v in versions))
    table.add_row("flavor", *(v.flavor for v in versions))
    table.add_row("created", *(format_time(v.created_at) for v in versions))
    table.add_section()
    for key in sorted({key for v in versions for key in v.metrics}):
        best = set(_best_versions(versions, key, policy))
        cells = [
            Text(
                format_number(v.metrics[key]) if key in v.metrics else "—",
                style=_BEST if v.number in best else "",
            )
            for v in versions
        ]
        arrow = "↓" if policy.is_lower_better(key) else "↑"
        table.add_row(Text(f"{key} {arrow}"), *cells)
    return table


# -- stages and aliases -------------------------------------------------------------------


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    name: NameArgument,
    version: VersionArgument,
    stage: Annotated[
        str, typer.Argument(metavar="STAGE", help="none, staging, production or archived.")
    ],
    reason: ReasonOption = None,
    actor: ActorOption = None,
) -> None:
    """Move a version to a stage; production archives the previous production version."""
    registry = _registry(ctx)
    before = registry.get_version(name, version)
    previous = registry.get_model(name).production_version
    result = registry.promote_to_stage(name, before.number, stage, reason=reason, actor=actor)
    if isinstance(result, ApprovalRequest):
        stdout_console().print(
            f"approval requested: #{result.id} (ask another identity to run "
            f"`mlops models approve {result.id}`)"
        )
        return
    _print_transition(result, before.stage)
    if result.stage is Stage.PRODUCTION and previous not in (None, result.number):
        stdout_console().print(f"version {previous} of '{name}' archived")


def _print_transition(version: ModelVersion, before: Stage) -> None:
    if version.stage is before:
        stdout_console().print(f"{_describe(version)} is already in {before.value}")
        return
    stdout_console().print(
        Text.assemble(
            f"{_describe(version)}: ",
            _stage_badge(before),
            " → ",
            _stage_badge(version.stage),
        )
    )


@models_app.command("rollback")
def rollback(
    ctx: typer.Context, name: NameArgument, reason: ReasonOption = None, actor: ActorOption = None
) -> None:
    """Put back the production version that the current one replaced."""
    registry = _registry(ctx)
    current = registry.get_model(name).production_version
    restored = registry.rollback(name, reason=reason, actor=actor)
    archived = "" if current is None else f" (version {current} archived)"
    stdout_console().print(f"rolled back: {_describe(restored)} is in production again{archived}")


@models_app.command("alias")
def alias(
    ctx: typer.Context,
    name: NameArgument,
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. champion.")],
    version: Annotated[
        str | None,
        typer.Argument(metavar="VERSION", help="The version it points at (not with --delete)."),
    ] = None,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the alias instead.")] = False,
    reason: ReasonOption = None,
    actor: ActorOption = None,
) -> None:
    """Point an alias (models:/NAME@ALIAS) at a version, moving it if already set."""
    registry = _registry(ctx)
    if delete:
        if version is not None:
            raise typer.BadParameter("give no VERSION with --delete", param_hint="VERSION")
        registry.delete_alias(name, alias_name.lstrip("@"), actor=actor)
        stdout_console().print(f"deleted alias @{alias_name.lstrip('@')} of '{name}'")
        return
    if version is None:
        raise typer.BadParameter("give the VERSION the alias points at", param_hint="VERSION")
    found = registry.set_alias(name, alias_name.lstrip("@"), version, reason=reason, actor=actor)
    stdout_console().print(
        f"models:/{name}@{alias_name.lstrip('@')} → version {found.number} ({found.semver})"
    )


@models_app.command("history")
def history(ctx: typer.Context, name: NameArgument, as_json: JsonOption = False) -> None:
    """Every stage and alias change of a model, oldest first."""
    transitions = _registry(ctx).history(name)
    if as_json:
        print_json({"model": name, "history": [dataclasses.asdict(t) for t in transitions]})
        return
    if not transitions:
        stdout_console().print(f"model '{name}' has no stage or alias changes yet")
        return
    table = Table(title=f"history of {name}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("when", "version", "change", "actor", "reason"):
        table.add_column(
            column, overflow="fold", justify="right" if column == "version" else "left"
        )
    for transition in transitions:
        table.add_row(
            format_time(transition.created_at),
            str(transition.version),
            _change_text(transition),
            transition.actor or "—",
            transition.reason or "",
        )
    stdout_console().print(table)


def _change_text(transition: Transition) -> Text:
    if transition.kind == "alias":
        before, after = transition.from_value or "—", transition.to_value or "deleted"
        return Text(f"@{transition.name}: {before} → {after}")
    text = Text.assemble(
        _stage_badge(Stage.parse(transition.from_value)),
        " → ",
        _stage_badge(Stage.parse(transition.to_value)),
    )
    if transition.replaced_version is not None:
        text.append(f" (replaced version {transition.replaced_version})", style="dim")
    return text


@models_app.command("lineage")
def lineage(
    ctx: typer.Context, name: NameArgument, version: VersionArgument, as_json: JsonOption = False
) -> None:
    """Where a version came from: its run, datasets and parent versions."""
    data = _registry(ctx).lineage(name, version)
    if as_json:
        print_json(data)
        return
    tree = Tree(Text(f"{name} version {data['version']} ({data['semver']})", style="bold"))
    run = data["run"]
    if run is None:
        tree.add(Text("run: none recorded", style="dim"))
    else:
        tree.add(
            f"run {run['id'][:8]} '{run['name']}' (experiment {run['experiment_id']}, "
            f"{str(run['status']).lower()})"
        )
    datasets = tree.add("datasets" if data["datasets"] else Text("datasets: none", style="dim"))
    for item in data["datasets"]:
        datasets.add(f"{item['name']} [{item['context']}] {item['digest'][:12]}")
    branch = tree
    for parent in data["parents"]:
        branch = branch.add(f"parent: version {parent['version']} ({parent['semver']})")
    stdout_console().print(tree)


# -- approvals ----------------------------------------------------------------------------


@models_app.command("approvals")
def approvals(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(metavar="[NAME]", help="Only this model.")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Include approved and rejected requests.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List approval requests for production (pending ones by default)."""
    found = _registry(ctx).list_approvals(name, status=None if show_all else "pending")
    if as_json:
        print_json({"approvals": [dataclasses.asdict(request) for request in found]})
        return
    if not found:
        stdout_console().print(
            "no approval requests" if show_all else "no pending approval requests"
        )
        return
    table = Table(
        title=_count(found, "approval request"), title_justify="left", box=box.SIMPLE_HEAD
    )
    table.add_column("id", style="cyan", no_wrap=True)
    table.add_column("transition", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("requested", overflow="fold")
    table.add_column("decided", overflow="fold")
    table.add_column("reason / comment", overflow="fold")
    for request in found:
        decided = request.decided_by or "—", format_time(request.decided_at)
        table.add_row(
            f"#{request.id}",
            f"{request.model_name} {request.version} ({request.semver}) → {request.to_stage.value}",
            Text(request.status.value, style=_APPROVAL_STYLES.get(request.status.value, "")),
            f"{request.requested_by or '—'}, {format_time(request.created_at)}",
            "—" if request.decided_at is None else ", ".join(decided),
            " / ".join(text for text in (request.reason, request.comment) if text),
        )
    stdout_console().print(table)


RequestArgument = Annotated[int, typer.Argument(metavar="ID", help="Approval request id.")]


@models_app.command("approve")
def approve(
    ctx: typer.Context,
    request_id: RequestArgument,
    comment: CommentOption = None,
    actor: ActorOption = None,
) -> None:
    """Approve a pending request (not your own) and apply its transition."""
    _print_decision(_registry(ctx).approve(request_id, comment=comment, actor=actor))


@models_app.command("reject")
def reject(
    ctx: typer.Context,
    request_id: RequestArgument,
    comment: CommentOption = None,
    actor: ActorOption = None,
) -> None:
    """Reject a pending request; the version stays where it is."""
    _print_decision(_registry(ctx).reject(request_id, comment=comment, actor=actor))


def _print_decision(request: ApprovalRequest) -> None:
    outcome = "is in" if request.status is ApprovalStatus.APPROVED else "stays out of"
    stdout_console().print(
        f"{request.status.value} #{request.id} by {request.decided_by or 'unknown'}: "
        f"'{request.model_name}' version {request.version} ({request.semver}) {outcome} "
        f"{request.to_stage.value}"
    )


# -- policies -----------------------------------------------------------------------------


def _metric_values(items: Sequence[str] | None, option: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not sep or not key.strip() or not math.isfinite(value):
            raise typer.BadParameter(
                f"{item!r} is not METRIC=NUMBER, e.g. f1=0.8", param_hint=option
            )
        values[key.strip()] = value
    return values


def _policy_lines(policy: PromotionPolicy) -> list[str]:
    lines = []
    for metric, value in sorted(policy.thresholds.items()):
        lines.append(f"{metric} {'≤' if policy.is_lower_better(metric) else '≥'} {value:g}")
    for metric, value in sorted(policy.max_regression.items()):
        lines.append(f"{metric} at most {value:g} worse than production")
    if policy.lower_is_better is not None:
        lines.append("lower is better: " + (", ".join(sorted(policy.lower_is_better)) or "none"))
    if policy.require_approval:
        lines.append("a second identity approves")
    if policy.require_signature:
        lines.append("signed by a trusted key")
    return lines or ["no rules"]


@models_app.command("policy")
def policy(
    ctx: typer.Context,
    name: NameArgument,
    minimum: Annotated[
        list[str] | None,
        typer.Option(
            "--min",
            metavar="METRIC=VALUE",
            help="The metric must reach VALUE (≥, or ≤ for lower-is-better metrics); repeatable.",
        ),
    ] = None,
    max_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--max-regression",
            metavar="METRIC=DELTA",
            help="At most DELTA worse than the production version; repeatable.",
        ),
    ] = None,
    lower_is_better: Annotated[
        list[str] | None,
        typer.Option(
            "--lower-is-better",
            metavar="METRIC",
            help="Metrics where smaller wins (default: names with loss, error, rmse…).",
        ),
    ] = None,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="A second identity approves production.")
    ] = False,
    require_signature: Annotated[
        bool, typer.Option("--require-signature", help="Production needs a trusted signature.")
    ] = False,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the policy.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Set the promotion policy that gates production (replacing any), or show it."""
    registry = _registry(ctx)
    changing = (
        bool(minimum or max_regression or lower_is_better) or require_approval or require_signature
    )
    if clear and changing:
        raise typer.BadParameter("--clear takes no other policy option", param_hint="--clear")
    if clear:
        registry.set_policy(name, None)
    elif changing:
        registry.set_policy(
            name,
            PromotionPolicy(
                thresholds=_metric_values(minimum, "--min"),
                max_regression=_metric_values(max_regression, "--max-regression"),
                lower_is_better=None if not lower_is_better else frozenset(lower_is_better),
                require_approval=require_approval,
                require_signature=require_signature,
            ),
        )
    current = registry.get_policy(name)
    if as_json:
        print_json({"model": name, "policy": _policy_json(current)})
        return
    verb = "removed" if clear else "set" if changing else "current"
    if current is None:
        stdout_console().print(
            f"model '{name}' has no promotion policy" + (" now" if clear else "")
        )
        return
    stdout_console().print(Text(f"{verb} promotion policy of '{name}':", style="bold"))
    for line in _policy_lines(current):
        stdout_console().print(f"  {line}")


# -- import -------------------------------------------------------------------------------


@models_app.command("import-mlflow")
def import_mlflow(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            metavar="PATH",
            exists=True,
            file_okay=False,
            help="An MLflow model folder (with MLmodel).",
        ),
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Register under this model name.")],
    metric: Annotated[
        list[str] | None,
        typer.Option("--metric", "-m", metavar="METRIC=VALUE", help="A metric; repeatable."),
    ] = None,
    description: Annotated[
        str | None, typer.Option("--description", "-d", help="What this version is.")
    ] = None,
    actor: ActorOption = None,
) -> None:
    """Register an MLflow model folder as a new version (files hashed, flavor converted)."""
    version = _registry(ctx).register_model(
        name,
        path,
        metrics=_metric_values(metric, "--metric"),
        description=description,
        actor=actor,
    )
    stdout_console().print(
        f"registered {_describe(version)} from MLflow model {path} "
        f"(flavor {version.flavor}; {version.uri})"
    )
