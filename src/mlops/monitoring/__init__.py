"""Monitoring: performance windows over the prediction log, data drift, alerting."""

__all__: list[str] = []
