"""mlops.serving exports exactly its public names, sorted."""

from __future__ import annotations

import mlops.serving


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.serving.__all__
    assert exported == sorted(exported)
    public = {name for name in vars(mlops.serving) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mlops.serving, name)).__name__ == "module"}
    assert set(exported) == public - modules


def test_every_name_resolves() -> None:
    for name in mlops.serving.__all__:
        assert getattr(mlops.serving, name) is not None
