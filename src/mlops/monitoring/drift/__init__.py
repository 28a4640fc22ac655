"""Drift detection: per-column tests, method selection, reports."""
