"""Screenshots of a running dashboard for the README (``docs/images/``).

Start the demo first (``mlops demo --port 8765``), then::

    python scripts/dashboard_screenshots.py --url http://127.0.0.1:8765 --out docs/images

It drives Debian's chromium through Playwright (``--chromium`` to point elsewhere) and
finds the pages to show through the REST API: the demo's experiment and best run, its
model, the latest canary, the monitored endpoint and the training pipeline.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright

_CHART = "n => document.querySelectorAll('.chart[data-drawn=\"1\"] svg.main-svg').length >= n"


def _pages(api: httpx.Client) -> list[tuple[str, str, int]]:
    """(file name, dashboard path, charts to wait for) of what the store holds."""
    pages = [("overview", "/ui/", 0)]
    experiments = api.get("/experiments").json()["experiments"]
    demo = next((e for e in experiments if e["name"] == "demo-churn"), None)
    if demo is not None:
        chosen = "?x=learning_rate&y=val_f1"  # the sweep's knob against its score
        pages.append(("experiment", f"/ui/experiments/{demo['id']}{chosen}", 2))
        runs = api.post(
            "/runs/search",
            json={
                "experiment_ids": [demo["id"]],
                "filter": "metrics.val_f1 > 0",
                "order_by": ["metrics.val_f1 DESC"],
                "limit": 1,
            },
        ).json()["runs"]
        if runs:
            pages.append(("run", f"/ui/runs/{runs[0]['id']}", 2))
    pages.append(("model", "/ui/models/churn-demo", 1))
    deployments = api.get("/deployments").json()["deployments"]
    canary = next((d for d in deployments if d["strategy"] == "canary"), None)
    if canary is not None:
        pages.append(("canary", f"/ui/deployments/{canary['id']}", 1))
    pages.append(("deployments", "/ui/deployments", 0))
    pages.append(("monitoring", "/ui/monitoring/churn-demo?window=6h", 4))
    pages.append(("alerts", "/ui/alerts", 0))
    pipelines = api.get("/pipelines").json()["pipelines"]
    if pipelines:
        pages.append(("pipeline", f"/ui/pipelines/{pipelines[0]['name']}", 1))
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1360)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=args.url.rstrip("/") + "/api/v1", timeout=30) as api:
        pages = _pages(api)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=["--no-sandbox"]
        )
        context = browser.new_context(
            viewport={"width": args.width, "height": 900}, device_scale_factor=1
        )
        tab: Any = context.new_page()
        tab.set_default_timeout(60_000)
        for name, path, charts in pages:
            response = tab.goto(args.url.rstrip("/") + path)
            if response is None or response.status != 200:
                status = None if response is None else response.status
                print(f"{path}: HTTP {status}, skipped", file=sys.stderr)
                continue
            if charts:
                tab.wait_for_function(_CHART, arg=charts)
            tab.wait_for_timeout(500)  # let plotly finish its transitions
            target = args.out / f"dashboard-{name}.png"
            tab.screenshot(path=str(target), full_page=False)
            print(target)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
