"""mlops.pipelines exports exactly its public names, constants first, sorted."""

from __future__ import annotations

import mlops.pipelines


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.pipelines.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(mlops.pipelines) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mlops.pipelines, name)).__name__ == "module"}
    assert set(exported) == public - modules
