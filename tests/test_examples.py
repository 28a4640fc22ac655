"""Every script in examples/ runs on its own, in a fresh MLOPS_HOME, and says what it did."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SQLITE_ONLY = True

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py"))

# What the last line of each known example must say; a new example only needs "OK: ".
EXPECTED = {
    "01_track_and_register.py": "was trained by run",
    "02_promote.py": "rolled back, production is 1.0.0",
    "03_canary_deploy.py": "canary promoted",
    "04_ab_test.py": "verdict winner_b",
    "05_record_predictions.py": "over 300 labelled requests",
    "06_detect_drift.py": "alert churn-drift is firing",
    "07_scheduled_pipeline.py": "2 executions succeeded",
}


def test_the_examples_are_all_there() -> None:
    names = {path.name for path in EXAMPLES}
    assert len(names) >= 7
    assert set(EXPECTED) <= names
    assert (EXAMPLES_DIR / "README.md").is_file()


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    # Only the home is given: no database or artifact store of the caller's may leak in.
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLOPS_")}
    env["MLOPS_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.strip().splitlines()
    assert lines, f"{script.name} printed nothing"
    assert lines[-1].startswith("OK: "), done.stdout
    assert EXPECTED.get(script.name, "OK: ") in lines[-1], done.stdout
    assert home.is_dir()  # it worked in the home it was given
