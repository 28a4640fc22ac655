"""The monitoring packages export exactly their public names, constants first, sorted."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["mlops.monitoring", "mlops.monitoring.drift", "mlops.monitoring.alerts"]


def _order(name: str) -> tuple[bool, str]:
    return (not name.isupper(), name)


@pytest.mark.parametrize("package", PACKAGES)
def test_all_is_sorted_and_complete(package: str) -> None:
    module = importlib.import_module(package)
    exported = module.__all__
    assert exported == sorted(exported, key=_order)
    public = {name for name in vars(module) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(module, name)).__name__ == "module"}
    assert set(exported) == public - modules
    for name in exported:
        assert getattr(module, name) is not None
