"""AlertManager: rules, channels, silences and alerts of one store, and one evaluation tick."""

from __future__ import annotations

import builtins
import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import AlreadyExists, Conflict, InvalidInput, MLOpsError, NotFound
from mlops.monitoring.alerts._channels import (
    Channel,
    Notifier,
    WebhookNotifier,
    masked_params,
    notifier_from_params,
)
from mlops.monitoring.alerts._dispatch import Dispatcher, NotificationRecord, list_notifications
from mlops.monitoring.alerts._engine import (
    Alert,
    AlertState,
    AlertTransition,
    SignalSource,
    alert_from_row,
    alerts_query,
    apply_measurements,
    claim_rule,
    end_alerts,
)
from mlops.monitoring.alerts._rules import AlertRule, check_name, default_rules, duration_seconds
from mlops.monitoring.alerts._silences import (
    Matcher,
    Silence,
    SilenceState,
    check_matchers,
    create_silence,
    expire_silence,
    is_silenced,
    list_silences,
)
from mlops.registry._audited import audit
from mlops.store import Store
from mlops.store._schema import alert_channels, alert_rules, alerts

__all__ = ["AlertManager"]

_log = logging.getLogger(__name__)

_RULES_HINT = "see the rules with `mlops alerts rules` or AlertManager.rules()"
_CHANNELS_HINT = "see the channels with `mlops alerts channels` or AlertManager.channels()"


class AlertManager:
    """The alerting of one mlops installation (``ml.monitor.alerts``); thread-safe.

    ``signals`` measures rules for ``evaluate()``; without it the manager still manages
    rules, channels, silences and stored alerts. ``evaluation_interval`` is how often a
    rule without its own interval is measured; ``max_attempts`` bounds the retries of a
    failing notification; ``clock`` (seconds since the epoch) is the default "now".
    """

    def __init__(
        self,
        store: Store,
        *,
        signals: SignalSource | None = None,
        actor: str | None = None,
        http_timeout: float = 5.0,
        evaluation_interval: float | str = 30.0,
        max_attempts: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if signals is not None and not isinstance(signals, SignalSource):
            raise InvalidInput(
                f"signals must have a measure(rule, now_ms) method; got {type(signals).__name__}"
            )
        if (
            isinstance(http_timeout, bool)
            or not isinstance(http_timeout, (int, float))
            or not (http_timeout > 0)
        ):
            raise InvalidInput(f"http_timeout must be a positive number; got {http_timeout!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
            raise InvalidInput(f"max_attempts must be a positive integer; got {max_attempts!r}")
        self._store = store
        self._signals = signals
        self.actor = actor
        self._evaluation_interval = duration_seconds(evaluation_interval, "evaluation_interval")
        self._clock = clock
        self._dispatcher = Dispatcher(
            store, http_timeout=float(http_timeout), max_attempts=max_attempts
        )

    def close(self) -> None:
        """Close the HTTP connections kept for notifications (the manager stays usable)."""
        self._dispatcher.close()

    def now_ms(self) -> int:
        """The manager's clock, in ms since the epoch."""
        return self._now()

    def _now(self, now_ms: int | None = None) -> int:
        return math.floor(self._clock() * 1000) if now_ms is None else int(now_ms)

    # -- rules -------------------------------------------------------------------------

    def create_rule(self, rule: AlertRule, *, actor: str | None = None) -> AlertRule:
        """Store a new rule; AlreadyExists if its name is taken.

        ``actor`` is who the rule and the audit log record (default: the manager's actor).
        """
        if not isinstance(rule, AlertRule):
            raise InvalidInput(f"create_rule takes an AlertRule; got {type(rule).__name__}")
        who = actor or self.actor
        now = self._now()
        try:
            with self._store.write() as connection:
                self._check_channels(connection, rule)
                if self._rule_row(connection, rule.name) is not None:
                    raise AlreadyExists(
                        f"alert rule {rule.name!r} exists; change it with update_rule() or "
                        "`mlops alerts rules add --replace`, or pick another name"
                    )
                connection.execute(
                    alert_rules.insert().values(
                        **self._rule_columns(rule),
                        created_by=who,
                        created_at=now,
                        updated_at=now,
                    )
                )
                audit(
                    connection,
                    "alert_rule.created",
                    _rule_target(rule.name),
                    actor=who,
                    after=rule.get_params(),
                )
        except Conflict as error:  # a concurrent create of the same name
            raise AlreadyExists(f"alert rule {rule.name!r} exists ({error})") from None
        return rule

    def update_rule(self, name: str, /, *, actor: str | None = None, **changes: Any) -> AlertRule:
        """Change fields of a rule, e.g. ``update_rule("latency-p95", threshold=800)``.

        Disabling a rule ends its active alerts (firing ones resolve). ``actor`` is who the
        audit log records (default: the manager's actor).
        """
        if "name" in changes:
            raise InvalidInput("a rule cannot be renamed; create a new rule and delete this one")
        now = self._now()
        with self._store.write() as connection:
            current = self._stored_rule(connection, name)
            try:
                updated = replace(current, **changes)
            except TypeError as error:
                raise InvalidInput(f"cannot update rule {name!r}: {error}") from None
            self._check_channels(connection, updated)
            connection.execute(
                alert_rules.update()
                .where(alert_rules.c.name == name)
                .values(**self._rule_columns(updated), updated_at=now)
            )
            if current.enabled and not updated.enabled:
                end_alerts(self._store, connection, updated, now)
            audit(
                connection,
                "alert_rule.updated",
                _rule_target(name),
                actor=actor or self.actor,
                before=current.get_params(),
                after=updated.get_params(),
            )
        return updated

    def delete_rule(self, name: str, *, actor: str | None = None) -> None:
        """Delete a rule; its active alerts end (no notification: their channels went with
        it). ``actor`` is who the audit log records (default: the manager's actor)."""
        now = self._now()
        with self._store.write() as connection:
            rule = self._stored_rule(connection, name)
            end_alerts(self._store, connection, rule, now)
            connection.execute(alert_rules.delete().where(alert_rules.c.name == name))
            audit(
                connection,
                "alert_rule.deleted",
                _rule_target(name),
                actor=actor or self.actor,
                before=rule.get_params(),
            )

    def get_rule(self, name: str) -> AlertRule:
        with self._store.read() as connection:
            return self._stored_rule(connection, name)

    def rules(self, *, enabled: bool | None = None) -> builtins.list[AlertRule]:
        """Every rule, by name; ``enabled`` filters."""
        return [rule for _, rule, _ in self._load_rules(enabled=enabled)]

    def install_default_rules(self) -> builtins.list[AlertRule]:
        """Create the default rules that do not exist yet; returns the ones created."""
        created = []
        for rule in default_rules():
            try:
                created.append(self.create_rule(rule))
            except AlreadyExists:
                continue
        return created

    def _stored_rule(self, connection: Connection, name: str) -> AlertRule:
        row = self._rule_row(connection, name)
        if row is None:
            raise NotFound(f"there is no alert rule {name!r}; {_RULES_HINT}")
        return AlertRule.from_params(json.loads(row.spec))

    @staticmethod
    def _rule_row(connection: Connection, name: str) -> Any:
        query = sa.select(alert_rules).where(alert_rules.c.name == name)
        return connection.execute(query).first()

    @staticmethod
    def _rule_columns(rule: AlertRule) -> dict[str, Any]:
        return {
            "name": rule.name,
            "signal": rule.signal,
            "endpoint": rule.endpoint,
            "severity": rule.severity,
            "enabled": int(rule.enabled),
            "spec": json.dumps(rule.get_params(), sort_keys=True),
        }

    @staticmethod
    def _check_channels(connection: Connection, rule: AlertRule) -> None:
        if not rule.channels:
            return
        query = sa.select(alert_channels.c.name)
        known = set(connection.execute(query).scalars())
        if missing := [name for name in rule.channels if name not in known]:
            raise InvalidInput(
                f"rule {rule.name!r} names channels that do not exist: {missing}; create them "
                f"first with AlertManager.create_channel or `mlops alerts channels add` "
                f"({_CHANNELS_HINT})"
            )

    def _load_rules(self, *, enabled: bool | None) -> builtins.list[tuple[int, AlertRule, Any]]:
        query = sa.select(alert_rules.c.id, alert_rules.c.spec, alert_rules.c.evaluated_at)
        if enabled is not None:
            query = query.where(alert_rules.c.enabled == int(enabled))
        with self._store.read() as connection:
            rows = connection.execute(query.order_by(alert_rules.c.name)).all()
        loaded = []
        for row in rows:
            try:
                loaded.append(
                    (int(row.id), AlertRule.from_params(json.loads(row.spec)), row.evaluated_at)
                )
            except (InvalidInput, ValueError) as error:
                _log.warning(
                    "skipping stored alert rule %d, which no longer loads: %s", row.id, error
                )
        return loaded

    # -- channels ----------------------------------------------------------------------

    def create_channel(self, name: str, notifier: Notifier, *, actor: str | None = None) -> Channel:
        """Store a notifier under ``name``. A webhook without a secret gets a generated
        one, handed out only here (``Channel.secret``): keep it to verify signatures.
        ``actor`` is who the channel and the audit log record (default: the manager's
        actor); the audit log keeps the parameters without credentials."""
        check_name("channel", name)
        if not isinstance(notifier, Notifier):
            raise InvalidInput(
                f"a channel needs a notifier (SlackNotifier, WebhookNotifier, EmailNotifier); "
                f"got {type(notifier).__name__}"
            )
        notifier.validate()
        secret = None
        if isinstance(notifier, WebhookNotifier):
            secret = notifier.secret or secrets.token_urlsafe(32)
            notifier = notifier_from_params(
                WebhookNotifier.kind, {**notifier.get_params(), "secret": secret}
            )
        who = actor or self.actor
        now = self._now()
        try:
            with self._store.write() as connection:
                if connection.execute(
                    sa.select(alert_channels.c.id).where(alert_channels.c.name == name)
                ).first():
                    raise AlreadyExists(
                        f"channel {name!r} exists; remove it first "
                        f"(`mlops alerts channels remove {name}`) or pick another name"
                    )
                inserted = connection.execute(
                    alert_channels.insert().values(
                        name=name,
                        kind=notifier.kind,
                        config=json.dumps(notifier.get_params()),
                        created_by=who,
                        created_at=now,
                        updated_at=now,
                    )
                )
                channel_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
                audit(
                    connection,
                    "alert_channel.created",
                    _channel_target(name),
                    actor=who,
                    after={"kind": notifier.kind, "params": masked_params(notifier)},
                )
        except Conflict as error:
            raise AlreadyExists(f"channel {name!r} exists ({error})") from None
        return Channel(
            channel_id, name, notifier.kind, masked_params(notifier), who, now, secret=secret
        )

    def channels(self) -> builtins.list[Channel]:
        """Every channel, by name, without credentials."""
        with self._store.read() as connection:
            rows = connection.execute(sa.select(alert_channels).order_by(alert_channels.c.name))
            return [self._channel(row) for row in rows]

    def get_channel(self, name: str) -> Channel:
        with self._store.read() as connection:
            query = sa.select(alert_channels).where(alert_channels.c.name == name)
            row = connection.execute(query).first()
        if row is None:
            raise NotFound(f"there is no channel {name!r}; {_CHANNELS_HINT}")
        return self._channel(row)

    def delete_channel(self, name: str, *, force: bool = False, actor: str | None = None) -> None:
        """Remove a channel; Conflict if rules name it, unless ``force`` (which takes it
        out of those rules). ``actor`` is who the audit log records (default: the
        manager's actor)."""
        now = self._now()
        query = sa.select(alert_channels).where(alert_channels.c.name == name)
        with self._store.write() as connection:
            stored = connection.execute(query).first()
            deleted = connection.execute(
                alert_channels.delete().where(alert_channels.c.name == name)
            ).rowcount
            if stored is None or not deleted:
                raise NotFound(f"there is no channel {name!r}; {_CHANNELS_HINT}")
            rows = connection.execute(sa.select(alert_rules.c.name, alert_rules.c.spec)).all()
            users = [row for row in rows if name in json.loads(row.spec).get("channels", [])]
            if users and not force:
                names = ", ".join(row.name for row in users)
                raise Conflict(
                    f"channel {name!r} is used by rules {names}; take it out of them first "
                    f"(update_rule(..., channels=[...])), or remove it with force=True "
                    f"(`mlops alerts channels remove {name} --force`)"
                )
            for row in users:
                spec = json.loads(row.spec)
                spec["channels"] = [item for item in spec["channels"] if item != name]
                connection.execute(
                    alert_rules.update()
                    .where(alert_rules.c.name == row.name)
                    .values(spec=json.dumps(spec, sort_keys=True), updated_at=now)
                )
            channel = self._channel(stored)
            audit(
                connection,
                "alert_channel.deleted",
                _channel_target(name),
                actor=actor or self.actor,
                before={"kind": channel.kind, "params": dict(channel.params)},
                after={"removed_from_rules": sorted(row.name for row in users)} if users else None,
            )

    @staticmethod
    def _channel(row: Any) -> Channel:
        try:
            params = masked_params(notifier_from_params(row.kind, json.loads(row.config)))
        except (InvalidInput, ValueError):
            params = {}
        return Channel(int(row.id), row.name, row.kind, params, row.created_by, int(row.created_at))

    # -- silences ----------------------------------------------------------------------

    def silence(
        self,
        matchers: Mapping[str, str] | Sequence[str | Matcher],
        *,
        comment: str,
        duration: float | str | None = None,
        ends_at: int | None = None,
        starts_at: int | None = None,
        created_by: str | None = None,
    ) -> Silence:
        """Mute notifications of matching alerts, e.g.
        ``silence({"endpoint": "churn"}, duration="2h", comment="maintenance")``.

        Give ``duration`` or ``ends_at`` (ms since the epoch); ``starts_at`` defaults to now.
        """
        checked = check_matchers(matchers)
        now = self._now()
        start = now if starts_at is None else _epoch_ms("starts_at", starts_at)
        if (duration is None) == (ends_at is None):
            raise InvalidInput("give a silence either a duration (e.g. '2h') or ends_at, not both")
        if duration is not None:
            end = start + round(duration_seconds(duration, "silence duration") * 1000)
        else:
            end = _epoch_ms("ends_at", ends_at)
        return create_silence(
            self._store,
            checked,
            starts_at=start,
            ends_at=end,
            comment=comment,
            created_by=created_by or self.actor,
            now_ms=now,
        )

    def silences(self, *, state: SilenceState | str | None = None) -> builtins.list[Silence]:
        """Silences, newest first; ``state``: pending, active or expired (now)."""
        return list_silences(self._store, self._now(), state=state)

    def expire_silence(self, silence_id: int, *, actor: str | None = None) -> Silence:
        """End a silence now; the next tick notifies what it was holding back.

        ``actor`` is who the audit log records (default: the manager's actor).
        """
        return expire_silence(self._store, silence_id, self._now(), actor=actor or self.actor)

    # -- alerts ------------------------------------------------------------------------

    def alerts(
        self,
        *,
        state: AlertState | str | None = None,
        rule: str | None = None,
        endpoint: str | None = None,
        labels: Mapping[str, str] | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Alert episodes, newest first. ``state`` is pending, firing, resolved or
        "active" (pending or firing); ``labels`` must all be equal; ``since``/``until``
        (ms) keep the episodes that overlap that time."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer; got {limit!r}")
        query = alerts_query(
            self._store,
            state=state,
            rule=rule,
            endpoint=endpoint,
            labels=labels,
            since=None if since is None else _epoch_ms("since", since),
            until=None if until is None else _epoch_ms("until", until),
        )
        now = self._now()
        with self._store.read() as connection:
            rows = connection.execute(query.limit(limit)).all()
        silences = list_silences(self._store, now, state=SilenceState.ACTIVE)
        return [
            alert_from_row(
                row,
                silenced=bool(row.active_key)
                and is_silenced(json.loads(row.labels), silences, now),
            )
            for row in rows
        ]

    def get_alert(self, alert_id: int) -> Alert:
        with self._store.read() as connection:
            row = connection.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"there is no alert with id {alert_id!r}; see `mlops alerts list`")
        return alert_from_row(row)

    # -- evaluation --------------------------------------------------------------------

    def evaluate(self, now_ms: int | None = None) -> builtins.list[AlertTransition]:
        """One tick: measure every enabled rule that is due, move its alerts along
        (recording ``alert.firing``/``alert.resolved`` events), then send notifications.

        A rule whose signal source fails is skipped this tick; the others go on.
        """
        if self._signals is None:
            raise InvalidInput(
                "this AlertManager has no signal source to measure rules with; create it as "
                "AlertManager(store, signals=...) (ml.monitor.alerts has one)"
            )
        now = self._now(now_ms)
        transitions: builtins.list[AlertTransition] = []
        loaded = self._load_rules(enabled=None)
        for rule_id, rule, evaluated_at in loaded:
            if not rule.enabled:
                continue
            interval = rule.evaluation_interval_ms(self._evaluation_interval)
            if evaluated_at is not None and now - evaluated_at < interval:
                continue
            if not claim_rule(self._store, rule_id, now, interval):
                continue
            try:
                measurements = self._signals.measure(rule, now)
            except Exception:  # a broken signal must not stop the other rules
                _log.exception("alert rule %r: measuring %s failed", rule.name, rule.signal)
                continue
            try:
                transitions += apply_measurements(self._store, rule, measurements, now)
            except MLOpsError as error:
                _log.warning("alert rule %r was not evaluated: %s", rule.name, error)
        self._dispatcher.dispatch({rule.name: rule for _, rule, _ in loaded}, now)
        return transitions

    def notify(self, now_ms: int | None = None) -> builtins.list[NotificationRecord]:
        """Send the notifications owed now without measuring (``evaluate`` does this too)."""
        return self._dispatcher.dispatch(
            {rule.name: rule for rule in self.rules()}, self._now(now_ms)
        )

    def notifications(
        self,
        *,
        channel: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> builtins.list[NotificationRecord]:
        """The delivery log, newest first; ``status`` sent or failed, ``kind`` firing or
        resolved."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer; got {limit!r}")
        return list_notifications(
            self._store, channel=channel, status=status, kind=kind, limit=limit
        )


def _rule_target(name: str) -> str:
    """A rule as the audit log names it."""
    return f"alert_rules/{name}"


def _channel_target(name: str) -> str:
    """A channel as the audit log names it."""
    return f"alert_channels/{name}"


def _epoch_ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{name} must be milliseconds since the epoch (an int); got {value!r}")
    return value
