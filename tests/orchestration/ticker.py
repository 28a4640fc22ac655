"""A scheduler process for the exactly-once test: ``python -m orchestration.ticker``.

Ticks the same due times as its siblings, then polls triggers until the test writes
``done``; prints how many executions its ticks created.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import mlops
from mlops.orchestration import PipelineOrchestrator

MINUTE = 60_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--go-at", type=float, required=True)
    parser.add_argument("--start", type=int, required=True)
    parser.add_argument("--minutes", type=int, required=True)
    args = parser.parse_args()
    ml = mlops.connect(
        args.url, artifacts=str(args.folder / "artifacts"), home=str(args.folder / "home")
    )
    orchestrator = PipelineOrchestrator(ml)
    created = 0
    time.sleep(max(0.0, args.go_at - time.time()))  # start with the siblings
    for minute in range(1, args.minutes + 1):
        created += len(orchestrator.tick(args.start + minute * MINUTE))
    end = args.start + args.minutes * MINUTE
    done = args.folder / "done"
    while not done.exists():
        created += len(orchestrator.tick(end))
    created += len(orchestrator.tick(end))  # every event committed before `done`
    ml.close()
    print(json.dumps({"created": created}))


if __name__ == "__main__":
    main()
