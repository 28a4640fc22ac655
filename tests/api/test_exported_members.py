"""mlops.api exports exactly its public names, sorted."""

from __future__ import annotations

import mlops.api


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.api.__all__
    assert exported == sorted(exported)
    public = {name for name in vars(mlops.api) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mlops.api, name)).__name__ == "module"}
    assert set(exported) == public - modules
