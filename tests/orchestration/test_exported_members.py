"""mlops.orchestration exports exactly its public names, constants first, sorted."""

from __future__ import annotations

import mlops.orchestration


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.orchestration.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(mlops.orchestration) if not name.startswith("_")}
    modules = {
        name for name in public if type(getattr(mlops.orchestration, name)).__name__ == "module"
    }
    assert set(exported) == public - modules
