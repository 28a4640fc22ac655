"""mlops.api exports exactly its public names, constants first, sorted."""

from __future__ import annotations

import mlops.api


def _order(name: str) -> tuple[bool, str]:
    return (not name.isupper(), name)


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.api.__all__
    assert exported == sorted(exported, key=_order)
    public = {name for name in vars(mlops.api) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mlops.api, name)).__name__ == "module"}
    assert set(exported) == public - modules
