"""Every Python example in README.md and docs/ runs as written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: The documents with Python examples (docs/api.md, for one, has only shell examples).
DOCS = [
    path
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if BLOCK.search(path.read_text())
]


#: Runs a document's blocks in one interpreter, each in a fresh namespace (as a reader
#: pasting them one by one into a new session would): imports are paid once per document.
RUNNER = r"""
import json, sys, traceback
name, blocks = sys.argv[1], json.load(open(sys.argv[2], encoding="utf-8"))
for index, block in enumerate(blocks):
    try:
        exec(compile(block, f"<{name} block {index}>", "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc()
        print(f"{name} block {index} failed", file=sys.stderr)
        sys.exit(1)
"""


@pytest.mark.parametrize("document", DOCS, ids=[path.name for path in DOCS])
def test_examples_run_in_order(document: Path, tmp_path: Path) -> None:
    """A document's blocks run one after another on one fresh home, as a reader would."""
    blocks = [match.group(1) for match in BLOCK.finditer(document.read_text())]
    env = {**os.environ, "MLOPS_HOME": str(tmp_path / "home")}
    env.pop("MLOPS_DATABASE_URL", None)
    env.pop("MLOPS_ARTIFACT_ROOT", None)
    listed = tmp_path / "blocks.json"
    listed.write_text(json.dumps(blocks), encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, document.name, str(listed)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, f"{document.name} failed:\n{result.stderr[-5000:]}"
