"""Alerting: rules, alert states, silences and notification channels.

``AlertManager`` stores rules, channels and silences and runs one evaluation tick;
``AlertEvaluator`` ticks it in the background on the leading replica. Signals are
measured by an injected ``SignalSource``.
"""

from mlops.monitoring.alerts._channels import (
    NOTIFIERS,
    Channel,
    EmailNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    check_notifier,
    notifier_from_params,
)
from mlops.monitoring.alerts._dispatch import NotificationRecord
from mlops.monitoring.alerts._engine import (
    Alert,
    AlertState,
    AlertTransition,
    Measurement,
    SignalSource,
)
from mlops.monitoring.alerts._evaluator import AlertEvaluator
from mlops.monitoring.alerts._manager import AlertManager
from mlops.monitoring.alerts._message import Notification
from mlops.monitoring.alerts._rules import COMPARISONS, SIGNALS, AlertRule, Severity, default_rules
from mlops.monitoring.alerts._silences import Matcher, Silence, SilenceState

__all__ = [
    "COMPARISONS",
    "NOTIFIERS",
    "SIGNALS",
    "Alert",
    "AlertEvaluator",
    "AlertManager",
    "AlertRule",
    "AlertState",
    "AlertTransition",
    "Channel",
    "EmailNotifier",
    "Matcher",
    "Measurement",
    "Notification",
    "NotificationRecord",
    "Notifier",
    "Severity",
    "SignalSource",
    "Silence",
    "SilenceState",
    "SlackNotifier",
    "WebhookNotifier",
    "check_notifier",
    "default_rules",
    "notifier_from_params",
]
