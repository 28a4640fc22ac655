"""Every Python example in README.md and docs/ runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("document", DOCS, ids=[path.name for path in DOCS])
def test_examples_run_in_order(document: Path, tmp_path: Path) -> None:
    """A document's blocks run one after another on one fresh home, as a reader would."""
    blocks = [match.group(1) for match in BLOCK.finditer(document.read_text())]
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    env.pop("MLOPS_DATABASE_URL", None)
    env.pop("MLOPS_ARTIFACT_ROOT", None)
    for index, block in enumerate(blocks):
        result = subprocess.run(
            [sys.executable, "-c", block], env=env, cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{document.name} block {index} failed:\n{result.stderr}"
