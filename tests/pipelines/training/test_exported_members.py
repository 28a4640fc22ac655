"""mlops.pipelines.training exports exactly its public names, constants first, sorted."""

from __future__ import annotations

import mlops.pipelines.training


def test_all_is_sorted_and_complete() -> None:
    module = mlops.pipelines.training
    exported = module.__all__
    assert exported == sorted(exported, key=lambda name: (not name.isupper(), name))
    public = {name for name in vars(module) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(module, name)).__name__ == "module"}
    assert set(exported) == public - modules


def test_importing_the_package_leaves_the_ml_libraries_for_later() -> None:
    import subprocess
    import sys

    code = (
        "import sys, mlops.pipelines.training as t; "
        "t.PipelineConfig; print(sorted(m for m in ('sklearn', 'optuna', 'xgboost', 'lightgbm') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
