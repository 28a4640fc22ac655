"""`mlops alerts …`: alerts, rules, silences and notification channels."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from mlops.cli._common import (
    format_duration,
    format_time,
    get_state,
    print_json,
    stdout_console,
)
from mlops.errors import InvalidInput
from mlops.monitoring.alerts import (
    NOTIFIERS,
    Alert,
    AlertManager,
    AlertRule,
    Channel,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)

__all__ = ["alerts_app"]

alerts_app = typer.Typer(
    no_args_is_help=True,
    help="Alerts: list them, and manage rules, notification channels and silences.",
)
rules_app = typer.Typer(
    help="Alert rules: list them (no sub-command), add, delete, enable, disable, defaults."
)
channels_app = typer.Typer(help="Notification channels: list them (no sub-command), add, remove.")
alerts_app.add_typer(rules_app, name="rules")
alerts_app.add_typer(channels_app, name="channels")

_STATE_STYLES = {"firing": "bold red", "pending": "yellow", "resolved": "green"}
_SEVERITY_STYLES = {"critical": "bold red", "warning": "yellow", "info": "blue"}
_JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _alerts(ctx: typer.Context) -> AlertManager:
    """The alert manager of this invocation's connection."""
    manager: AlertManager = get_state(ctx).connect().monitor.alerts
    return manager


def _count(items: list[Any], noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _pairs(option: str, items: list[str] | None, *, values_json: bool = False) -> dict[str, Any]:
    """``key=value`` options as a dict (values parsed as JSON when ``values_json``)."""
    pairs: dict[str, Any] = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        if not separator or not key:
            raise InvalidInput(f"{option} {item!r} is not key=value")
        if values_json:
            try:
                pairs[key] = json.loads(value)
            except json.JSONDecodeError:
                pairs[key] = value
        else:
            pairs[key] = value
    return pairs


# -- alerts --------------------------------------------------------------------------------


@alerts_app.command("list")
def list_alerts(
    ctx: typer.Context,
    state: Annotated[
        str | None, typer.Option(help="firing, pending, resolved, or active (pending+firing).")
    ] = None,
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint.")] = None,
    rule: Annotated[str | None, typer.Option(help="Only this rule.")] = None,
    label: Annotated[
        list[str] | None, typer.Option("--label", "-l", help="Only alerts with label=value.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_output: _JSON = False,
) -> None:
    """Alert episodes, newest first."""
    found = _alerts(ctx).alerts(
        state=state, endpoint=endpoint, rule=rule, labels=_pairs("--label", label), limit=limit
    )
    if json_output:
        print_json([alert.to_json() for alert in found])
        return
    table = Table(title=_count(found, "alert"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "state", "severity", "rule", "labels", "value", "started", "ended"):
        table.add_column(column, overflow="fold")
    for alert in found:
        table.add_row(
            str(alert.id),
            _state_text(alert),
            Text(alert.severity, style=_SEVERITY_STYLES.get(alert.severity, "")),
            alert.rule,
            ", ".join(f"{k}={v}" for k, v in alert.labels.items() if k not in ("rule", "severity")),
            "—" if alert.value is None else f"{alert.value:.4g}",
            format_time(alert.started_at),
            format_time(alert.resolved_at),
        )
    stdout_console().print(table)


def _state_text(alert: Alert) -> Text:
    text = Text(alert.state.value, style=_STATE_STYLES[alert.state.value])
    if alert.state.value == "resolved" and alert.fired_at is None:
        text.append(" (never fired)", style="dim")
    if alert.silenced:
        text.append(" (silenced)", style="dim")
    return text


# -- rules ---------------------------------------------------------------------------------


@rules_app.callback(invoke_without_command=True)
def rules(ctx: typer.Context, json_output: _JSON = False) -> None:
    """List the alert rules (or run a sub-command)."""
    if ctx.invoked_subcommand is not None:
        return
    found = _alerts(ctx).rules()
    if json_output:
        print_json([rule.get_params() for rule in found])
        return
    table = Table(title=_count(found, "alert rule"), title_justify="left", box=box.SIMPLE_HEAD)
    columns = ("name", "condition", "endpoint", "for", "severity", "channels", "enabled")
    for column in columns:
        table.add_column(column, overflow="fold", style="bold" if column == "name" else None)
    for rule in found:
        table.add_row(
            rule.name,
            rule.condition,
            rule.endpoint or "(every)",
            format_duration(rule.for_ms) if rule.for_ms else "—",
            Text(rule.severity, style=_SEVERITY_STYLES.get(rule.severity, "")),
            ", ".join(rule.channels) or "—",
            "yes" if rule.enabled else Text("no", style="dim"),
        )
    stdout_console().print(table)


@rules_app.command("add")
def add_rule(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Rule name, e.g. latency-p95.")],
    signal: Annotated[str, typer.Option(help="What to measure, e.g. latency_p95_ms.")],
    threshold: Annotated[float, typer.Option(help="The value the signal is compared with.")],
    comparison: Annotated[str, typer.Option(help="One of > >= < <= == !=.")] = ">",
    endpoint: Annotated[str | None, typer.Option(help="Only this endpoint (default all).")] = None,
    window: Annotated[str, typer.Option(help="Measurement window: 5m, 1h.")] = "5m",
    for_: Annotated[
        str, typer.Option("--for", help="How long the condition holds before firing.")
    ] = "0",
    keep_firing_for: Annotated[str, typer.Option(help="Hold firing through false spells.")] = "0",
    severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    channel: Annotated[
        list[str] | None, typer.Option("--channel", "-c", help="Notify this channel; repeat.")
    ] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Extra label k=v.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="Signal parameter k=v, e.g. column=age.")
    ] = None,
    group_by: Annotated[
        list[str] | None, typer.Option("--group-by", help="Group notifications by these labels.")
    ] = None,
    repeat_interval: Annotated[str, typer.Option(help="Remind of a firing alert every.")] = "4h",
    description: Annotated[str, typer.Option(help="Text; $value, $endpoint are filled.")] = "",
    disabled: Annotated[bool, typer.Option(help="Create it switched off.")] = False,
    replace: Annotated[bool, typer.Option(help="Overwrite an existing rule of that name.")] = False,
    json_output: _JSON = False,
) -> None:
    """Add an alert rule, e.g. `add slow --signal latency_p95_ms --threshold 800 -c ops`."""
    rule = AlertRule(
        name=name,
        signal=signal,
        threshold=threshold,
        comparison=comparison,
        endpoint=endpoint,
        window=window,
        for_=for_,
        keep_firing_for=keep_firing_for,
        severity=severity,
        channels=tuple(channel or ()),
        labels=_pairs("--label", label),
        params=_pairs("--param", param, values_json=True),
        group_by=tuple(group_by) if group_by else ("rule", "endpoint"),
        repeat_interval=repeat_interval,
        description=description,
        enabled=not disabled,
    )
    manager = _alerts(ctx)
    existing = {stored.name for stored in manager.rules()}
    if replace and name in existing:
        changes = {key: value for key, value in rule.get_params().items() if key != "name"}
        rule = manager.update_rule(name, **changes)
    else:
        rule = manager.create_rule(rule)
    if json_output:
        print_json(rule.get_params())
        return
    stdout_console().print(f"rule {rule.name}: {rule.condition} → {rule.severity}")


@rules_app.command("delete")
def delete_rule(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Rule name.")]
) -> None:
    """Delete a rule (its active alerts end)."""
    _alerts(ctx).delete_rule(name)
    stdout_console().print(f"deleted rule {name}")


@rules_app.command("enable")
def enable_rule(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Rule name.")]
) -> None:
    """Switch a rule on."""
    _alerts(ctx).update_rule(name, enabled=True)
    stdout_console().print(f"rule {name} enabled")


@rules_app.command("disable")
def disable_rule(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Rule name.")]
) -> None:
    """Switch a rule off (its active alerts end)."""
    _alerts(ctx).update_rule(name, enabled=False)
    stdout_console().print(f"rule {name} disabled")


@rules_app.command("defaults")
def install_defaults(ctx: typer.Context) -> None:
    """Create the default rules that are missing (accuracy drop, p95 latency, pipelines)."""
    created = _alerts(ctx).install_default_rules()
    names = ", ".join(rule.name for rule in created)
    stdout_console().print(f"created {names}" if created else "the default rules exist already")


# -- silences ------------------------------------------------------------------------------


@alerts_app.command("silence")
def silence(
    ctx: typer.Context,
    match: Annotated[
        list[str],
        typer.Option("--match", "-m", help="label=value (or !=, =~ regex, !~); repeat."),
    ],
    comment: Annotated[str, typer.Option(help="Why, e.g. 'maintenance of churn'.")],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "2h",
    author: Annotated[str | None, typer.Option(help="Who (default: MLOPS_USER).")] = None,
    json_output: _JSON = False,
) -> None:
    """Mute notifications of the alerts that match every --match for a while."""
    manager = _alerts(ctx)
    created = manager.silence(match, duration=duration, comment=comment, created_by=author)
    if json_output:
        print_json(created.to_json(created.created_at))
        return
    matchers = ", ".join(str(matcher) for matcher in created.matchers)
    stdout_console().print(
        f"silence {created.id}: {matchers} until {format_time(created.ends_at)} "
        f"(end it early: mlops alerts unsilence {created.id})"
    )


@alerts_app.command("silences")
def silences(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    json_output: _JSON = False,
) -> None:
    """Pending and active silences (with --all, expired ones too)."""
    manager = _alerts(ctx)
    found = manager.silences()
    now = manager.now_ms()
    if not all_:
        found = [item for item in found if item.state(now).value != "expired"]
    if json_output:
        print_json([item.to_json(now) for item in found])
        return
    table = Table(title=_count(found, "silence"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "matchers", "state", "starts", "ends", "comment", "by"):
        table.add_column(column, overflow="fold")
    for item in found:
        table.add_row(
            str(item.id),
            ", ".join(str(matcher) for matcher in item.matchers),
            item.state(now).value,
            format_time(item.starts_at),
            format_time(item.ends_at),
            item.comment,
            item.created_by or "—",
        )
    stdout_console().print(table)


@alerts_app.command("unsilence")
def unsilence(
    ctx: typer.Context, silence_id: Annotated[int, typer.Argument(help="Silence id.")]
) -> None:
    """End a silence now."""
    _alerts(ctx).expire_silence(silence_id)
    stdout_console().print(f"silence {silence_id} expired")


# -- channels ------------------------------------------------------------------------------


@channels_app.callback(invoke_without_command=True)
def channels(ctx: typer.Context, json_output: _JSON = False) -> None:
    """List the notification channels (or run a sub-command); credentials are hidden."""
    if ctx.invoked_subcommand is not None:
        return
    found = _alerts(ctx).channels()
    if json_output:
        print_json([item.to_json() for item in found])
        return
    table = Table(title=_count(found, "channel"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("name", "kind", "settings", "created"):
        table.add_column(column, overflow="fold", style="bold" if column == "name" else None)
    for item in found:
        settings = ", ".join(f"{k}={v}" for k, v in item.params.items() if v not in (None, False))
        table.add_row(item.name, item.kind, settings, format_time(item.created_at))
    stdout_console().print(table)


@channels_app.command("add")
def add_channel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Channel name, e.g. ops-slack.")],
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(NOTIFIERS)}.")],
    url: Annotated[str | None, typer.Option(help="slack/webhook: the URL to POST to.")] = None,
    secret: Annotated[
        str | None, typer.Option(help="webhook: HMAC secret (default: generated).")
    ] = None,
    smtp_host: Annotated[str | None, typer.Option(help="email: SMTP server.")] = None,
    smtp_port: Annotated[int, typer.Option(help="email: SMTP port.")] = 25,
    sender: Annotated[str | None, typer.Option(help="email: From address.")] = None,
    to: Annotated[list[str] | None, typer.Option("--to", help="email: recipient; repeat.")] = None,
    username: Annotated[str | None, typer.Option(help="email: SMTP login.")] = None,
    password: Annotated[str | None, typer.Option(help="email: SMTP password.")] = None,
    starttls: Annotated[bool, typer.Option(help="email: upgrade with STARTTLS.")] = False,
    ssl: Annotated[bool, typer.Option(help="email: connect with TLS.")] = False,
    timeout: Annotated[float | None, typer.Option(help="Seconds to wait for delivery.")] = None,
    json_output: _JSON = False,
) -> None:
    """Add a channel: --kind slack|webhook --url URL, or --kind email --smtp-host … --to …."""
    notifier: Notifier
    if kind in (SlackNotifier.kind, WebhookNotifier.kind):
        if url is None:
            raise InvalidInput(f"a {kind} channel needs --url")
        notifier = (
            SlackNotifier(url, timeout=timeout)
            if kind == SlackNotifier.kind
            else WebhookNotifier(url, secret=secret, timeout=timeout)
        )
    elif kind == EmailNotifier.kind:
        if smtp_host is None or sender is None or not to:
            raise InvalidInput("an email channel needs --smtp-host, --sender and --to")
        notifier = EmailNotifier(
            smtp_host, port=smtp_port, sender=sender, recipients=to, username=username,
            password=password, starttls=starttls, ssl=ssl, timeout=timeout,
        )  # fmt: skip
    else:
        raise InvalidInput(f"--kind {kind!r} is unknown; use one of {', '.join(NOTIFIERS)}")
    created = _alerts(ctx).create_channel(name, notifier)
    _show_channel(created, json_output)


def _show_channel(channel: Channel, json_output: bool) -> None:
    if json_output:
        print_json({**channel.to_json(), "secret": channel.secret})
        return
    console = stdout_console()
    console.print(f"channel {channel.name} ({channel.kind}) added")
    if channel.secret is not None:
        console.print(f"secret: {channel.secret}")
        console.print("keep it: receivers check X-MLOps-Signature with it; it is not shown again")


@channels_app.command("remove")
def remove_channel(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Channel name.")],
    force: Annotated[bool, typer.Option(help="Also take it out of the rules that use it.")] = False,
) -> None:
    """Remove a channel."""
    _alerts(ctx).delete_channel(name, force=force)
    stdout_console().print(f"removed channel {name}")


@alerts_app.command("notifications")
def notifications(
    ctx: typer.Context,
    channel: Annotated[str | None, typer.Option(help="Only this channel.")] = None,
    status: Annotated[str | None, typer.Option(help="sent or failed.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json_output: _JSON = False,
) -> None:
    """The notification delivery log, newest first."""
    found = _alerts(ctx).notifications(channel=channel, status=status, limit=limit)
    if json_output:
        print_json([item.to_json() for item in found])
        return
    table = Table(title=_count(found, "notification"), title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("id", "time", "channel", "kind", "status", "alerts", "error"):
        table.add_column(column, overflow="fold")
    for item in found:
        table.add_row(
            str(item.id),
            format_time(item.created_at),
            item.channel,
            item.kind,
            Text(item.status, style="green" if item.status == "sent" else "bold red"),
            ", ".join(str(alert_id) for alert_id in item.alert_ids),
            item.error or "",
        )
    stdout_console().print(table)
