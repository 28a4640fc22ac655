"""What the CLI tests share: a clean MLOPS_* environment, a home folder, an invoker."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlops.cli import app

_MLOPS_VARIABLES = ("MLOPS_HOME", "MLOPS_DATABASE_URL", "MLOPS_ARTIFACT_ROOT", "MLOPS_USER")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _MLOPS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def invoke(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run ``mlops --home HOME ARGS`` in-process, on a wide terminal."""
    return CliRunner().invoke(
        app, ["--home", str(home), *args], env={"COLUMNS": "250", **(env or {})}
    )


def ok(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``invoke``, asserting that the command succeeded."""
    result = invoke(home, *args, env=env)
    assert result.exit_code == 0, result.output
    return result
