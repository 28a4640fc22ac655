"""``RemoteAlertManager``: ``ml.monitor.alerts`` over a server's REST API: rules,
silences and alerts; the server evaluates rules and sends notifications."""

import builtins
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from mlops.errors import AlreadyExists, InvalidInput, NotFound
from mlops.monitoring.alerts import (
    Alert,
    AlertManager,
    AlertRule,
    AlertState,
    AlertTransition,
    Channel,
    Matcher,
    NotificationRecord,
    Notifier,
    Silence,
    SilenceState,
    default_rules,
)
from mlops.monitoring.alerts._silences import check_matchers
from mlops.remote._http import ApiClient
from mlops.remote._operations import _float, _server_runs
from mlops.remote._tracking import path_part

__all__ = ["RemoteAlertManager"]


def rule_of(body: Mapping[str, Any]) -> AlertRule:
    params = {key: value for key, value in body.items() if key != "condition"}
    params["for_"] = params.pop("for")
    return AlertRule.from_params(params)


def alert_of(body: Mapping[str, Any]) -> Alert:
    return Alert(
        id=body["id"],
        rule=body["rule"],
        fingerprint=body["fingerprint"],
        state=AlertState(body["state"]),
        severity=body["severity"],
        labels=dict(body["labels"]),
        annotations=dict(body["annotations"]),
        value=_float(body["value"]),
        threshold=float(body["threshold"]),
        started_at=body["started_at"],
        fired_at=body["fired_at"],
        resolved_at=body["resolved_at"],
        evaluated_at=body["evaluated_at"],
        silenced=body["silenced"],
    )


def silence_of(body: Mapping[str, Any]) -> Silence:
    return Silence(
        id=body["id"],
        matchers=tuple(
            Matcher(name=m["name"], value=m["value"], op=m["op"]) for m in body["matchers"]
        ),
        starts_at=body["starts_at"],
        ends_at=body["ends_at"],
        comment=body["comment"],
        created_by=body["created_by"],
        created_at=body["created_at"],
    )


def channel_of(body: Mapping[str, Any]) -> Channel:
    return Channel(
        id=body["id"],
        name=body["name"],
        kind=body["kind"],
        params=dict(body["params"]),
        created_by=body["created_by"],
        created_at=body["created_at"],
    )


def _rule_body(rule: AlertRule) -> dict[str, Any]:
    params = rule.get_params()
    params["for"] = params.pop("for_")
    del params["name"]
    return params


class RemoteAlertManager(AlertManager):
    """Alert rules, silences, alerts and channels of a remote server (``ml.monitor.alerts``):
    the same methods and results as the embedded ``AlertManager``. The server evaluates
    rules and sends notifications; channels are managed on the server."""

    def __init__(self, api: ApiClient, *, actor: str | None = None) -> None:
        self._api = api
        self.actor = actor

    def __repr__(self) -> str:
        return f"<RemoteAlertManager {self._api.url}>"

    def close(self) -> None:
        """Nothing to close: notifications are sent by the server."""

    def now_ms(self) -> int:
        """This machine's clock, in ms since the epoch."""
        return math.floor(time.time() * 1000)

    # -- rules -------------------------------------------------------------------------

    def _who(self, actor: str | None) -> str | None:
        return actor or self.actor

    def create_rule(self, rule: AlertRule, *, actor: str | None = None) -> AlertRule:
        if not isinstance(rule, AlertRule):
            raise InvalidInput(f"create_rule takes an AlertRule; got {type(rule).__name__}")
        body = {"name": rule.name, **_rule_body(rule)}
        return rule_of(self._api.post("/alerts/rules", json=body, actor=self._who(actor)))

    def update_rule(self, name: str, /, *, actor: str | None = None, **changes: Any) -> AlertRule:
        if "name" in changes:
            raise InvalidInput("a rule cannot be renamed; create a new rule and delete this one")
        current = self.get_rule(name)
        try:
            updated = replace(current, **changes)
        except TypeError as error:
            raise InvalidInput(f"cannot update rule {name!r}: {error}") from None
        found = self._api.put(
            f"/alerts/rules/{path_part(name)}", json=_rule_body(updated), actor=self._who(actor)
        )
        return rule_of(found)

    def delete_rule(self, name: str, *, actor: str | None = None) -> None:
        self._api.delete(f"/alerts/rules/{path_part(name)}", actor=self._who(actor))

    def get_rule(self, name: str) -> AlertRule:
        return rule_of(self._api.get(f"/alerts/rules/{path_part(name)}"))

    def rules(self, *, enabled: bool | None = None) -> builtins.list[AlertRule]:
        return [
            rule_of(item)
            for item in self._api.pages("/alerts/rules", "rules", {"enabled": enabled})
        ]

    def install_default_rules(self) -> builtins.list[AlertRule]:
        created = []
        for rule in default_rules():
            try:
                created.append(self.create_rule(rule))
            except AlreadyExists:
                continue
        return created

    # -- channels ----------------------------------------------------------------------

    def create_channel(self, name: str, notifier: Notifier, *, actor: str | None = None) -> Channel:
        raise InvalidInput(
            "notification channels hold credentials and are added on the server: run "
            f"`mlops alerts channels add {name} ...` there"
        )

    def channels(self) -> builtins.list[Channel]:
        return [channel_of(item) for item in self._api.get("/alerts/channels")["channels"]]

    def get_channel(self, name: str) -> Channel:
        for channel in self.channels():
            if channel.name == name:
                return channel
        raise NotFound(
            f"there is no channel {name!r}; see the channels with `mlops alerts channels` or "
            "AlertManager.channels()"
        )

    def delete_channel(self, name: str, *, force: bool = False, actor: str | None = None) -> None:
        raise InvalidInput(
            "notification channels are removed on the server: run "
            f"`mlops alerts channels remove {name}{' --force' if force else ''}` there"
        )

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
        checked = check_matchers(matchers)
        if (duration is None) == (ends_at is None):
            raise InvalidInput("give a silence either a duration (e.g. '2h') or ends_at, not both")
        body = {
            "matchers": [matcher.to_json() for matcher in checked],
            "comment": comment,
            "duration": duration,
            "ends_at": ends_at,
            "starts_at": starts_at,
        }
        found = self._api.post(
            "/alerts/silences",
            json={k: v for k, v in body.items() if v is not None},
            actor=self._who(created_by),
        )
        return silence_of(found)

    def silences(self, *, state: SilenceState | str | None = None) -> builtins.list[Silence]:
        if state is not None and state not in set(SilenceState):
            choices = ", ".join(item.value for item in SilenceState)
            raise InvalidInput(f"silence state {state!r} is unknown; use one of {choices}")
        params = {"state": None if state is None else SilenceState(state).value}
        return [
            silence_of(item) for item in self._api.pages("/alerts/silences", "silences", params)
        ]

    def expire_silence(self, silence_id: int, *, actor: str | None = None) -> Silence:
        if isinstance(silence_id, bool) or not isinstance(silence_id, int):
            raise InvalidInput(f"a silence id is an int; got {silence_id!r}")
        if silence_id < 1:
            raise NotFound(f"there is no silence {silence_id}; see `mlops alerts silences`")
        self._api.delete(f"/alerts/silences/{silence_id}", actor=self._who(actor))
        for silence in self.silences(state=SilenceState.EXPIRED):
            if silence.id == silence_id:
                return silence
        raise NotFound(f"silence {silence_id} was expired but is no longer listed")

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
        """As embedded; ``labels``, ``since`` and ``until`` filter here, after the server
        filtered by ``state``, ``rule`` and ``endpoint``."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a positive integer; got {limit!r}")
        for name, value in dict(labels or {}).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidInput(f"label filters map strings to strings; got {name!r}: {value!r}")
        for bound_name, bound in (("since", since), ("until", until)):
            if bound is not None and (
                isinstance(bound, bool) or not isinstance(bound, int) or bound < 0
            ):
                raise InvalidInput(
                    f"{bound_name} must be milliseconds since the epoch (an int); got {bound!r}"
                )
        params = {
            "state": None if state is None else str(getattr(state, "value", state)),
            "rule": rule,
            "endpoint": endpoint,
        }
        found: builtins.list[Alert] = []
        for item in self._api.pages("/alerts", "alerts", params):
            alert = alert_of(item)
            if labels and any(alert.labels.get(k) != v for k, v in labels.items()):
                continue
            if since is not None and alert.resolved_at is not None and alert.resolved_at < since:
                continue
            if until is not None and alert.started_at > until:
                continue
            found.append(alert)
            if len(found) == limit:
                break
        return found

    def get_alert(self, alert_id: int) -> Alert:
        if isinstance(alert_id, bool) or not isinstance(alert_id, int) or alert_id < 1:
            raise NotFound(f"there is no alert with id {alert_id!r}; see `mlops alerts list`")
        return alert_of(self._api.get(f"/alerts/{alert_id}"))

    # -- evaluation --------------------------------------------------------------------

    def evaluate(self, now_ms: int | None = None) -> builtins.list[AlertTransition]:
        _server_runs("alert evaluation", "its evaluator measures the rules on a schedule")

    def notify(self, now_ms: int | None = None) -> builtins.list[NotificationRecord]:
        _server_runs("sending notifications", "its evaluator sends them after each tick")

    def notifications(
        self,
        *,
        channel: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> builtins.list[NotificationRecord]:
        raise InvalidInput(
            "the server's notification log is not offered by its API; run "
            "`mlops alerts notifications` on the server"
        )
