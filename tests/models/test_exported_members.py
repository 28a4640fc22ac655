"""mlops.models exports exactly its public names, sorted."""

from __future__ import annotations

import mlops.models


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.models.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(mlops.models) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mlops.models, name)).__name__ == "module"}
    assert set(exported) == public - modules


def test_every_name_resolves() -> None:
    for name in mlops.models.__all__:
        assert getattr(mlops.models, name) is not None
