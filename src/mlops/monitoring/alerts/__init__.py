"""Alerting: rules, alert states, silences and notification channels."""
