"""mlops.governance exports exactly its public names, constants first, sorted."""

from __future__ import annotations

import mlops.governance


def _order(name: str) -> tuple[bool, str]:
    return (not name.isupper(), name)


def test_all_is_sorted_and_complete() -> None:
    exported = mlops.governance.__all__
    assert exported == sorted(exported, key=_order)
    public = {name for name in vars(mlops.governance) if not name.startswith("_")}
    modules = {
        name for name in public if type(getattr(mlops.governance, name)).__name__ == "module"
    }
    assert set(exported) == public - modules
    assert {"AccessControl", "AuditLog", "PERMISSIONS", "ROLES", "sign_digest"} <= set(exported)
