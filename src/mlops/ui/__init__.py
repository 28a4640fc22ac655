"""The dashboard at ``/ui`` of ``mlops server`` (needs the ``ui`` extra: Jinja2, plotly)."""

from mlops.ui._app import UI_PREFIX, create_ui, ui_available, ui_routes

__all__ = ["UI_PREFIX", "create_ui", "ui_available", "ui_routes"]
