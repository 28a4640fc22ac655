"""The lineage graph of a model version (datasets → run → version → deployments), laid out
in columns for the dashboard to draw as an inline SVG (the ``.dag`` styles of mlops.css)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from mlops.deployment import Deployment

__all__ = ["LineageGraph", "lineage_graph"]

NODE_WIDTH = 200
NODE_HEIGHT = 46
COLUMN_GAP = 64
ROW_GAP = 18
PADDING = 12
#: Most nodes drawn in one column; the rest are summed up in a last "+N more" node.
MAX_PER_COLUMN = 6

#: A node before layout: key, kind, label, detail, link (relative to the dashboard root).
Spec = tuple[str, str, str, str, str | None]


@dataclass(frozen=True, slots=True)
class Node:
    key: str
    kind: str  # dataset, run, parent, version, deployment, more
    label: str
    detail: str
    href: str | None
    x: int
    y: int
    width: int = NODE_WIDTH
    height: int = NODE_HEIGHT


@dataclass(frozen=True, slots=True)
class Edge:
    path: str


@dataclass(frozen=True, slots=True)
class LineageGraph:
    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


def lineage_graph(
    lineage: Mapping[str, Any], deployments: Sequence[Deployment], *, stage: str
) -> LineageGraph:
    """Columns: datasets, the training run (and parent version), the version, its deployments.

    ``lineage`` is ``ModelRegistry.lineage(...)``; ``deployments`` are those rolling out
    this version. Links are relative to the dashboard root (the template prefixes it).
    """
    name = str(lineage["model"])
    model_path = f"/models/{quote(name, safe='')}"
    number = int(lineage["version"])
    columns: list[list[Spec]] = []
    datasets: list[Spec] = [
        (
            f"dataset:{d['name']}:{d['digest']}",
            "dataset",
            _short(str(d["name"])),
            f"{d['context'] or 'input'} · {str(d['digest'])[:10]}",
            None,
        )
        for d in lineage.get("datasets") or []
    ]
    run = lineage.get("run")
    runs: list[Spec] = (
        [
            (
                f"run:{run['id']}",
                "run",
                _short(str(run.get("name") or run["id"])),
                f"run · {run.get('status') or ''}".strip(" ·"),
                f"/runs/{quote(str(run['id']), safe='')}",
            )
        ]
        if run
        else []
    )
    parents: list[Spec] = [
        (
            f"version:{p['version']}",
            "parent",
            f"{name} {p['semver']}",
            f"parent · v{p['version']}",
            f"{model_path}/versions/{p['version']}",
        )
        for p in (lineage.get("parents") or [])[:1]  # the direct parent; the rest chain on
    ]
    version: list[Spec] = [
        (
            f"version:{number}",
            "version",
            f"{_short(name, 16)} {lineage['semver']}",
            f"version {number} · {stage}",
            f"{model_path}/versions/{number}",
        )
    ]
    rollouts: list[Spec] = [
        (
            f"deployment:{d.id}",
            "deployment",
            _short(d.endpoint),
            f"deployment #{d.id} · {d.state.value}",
            f"/deployments/{d.id}",
        )
        for d in deployments
    ]
    # The run and the parent version both feed the version: one column, so no edge
    # crosses a node.
    for column in (datasets, runs + parents, version, rollouts):
        if column:
            columns.append(_capped(column))

    tallest = max(len(column) for column in columns)
    height = PADDING * 2 + tallest * NODE_HEIGHT + (tallest - 1) * ROW_GAP
    nodes: dict[str, Node] = {}
    for index, column in enumerate(columns):
        x = PADDING + index * (NODE_WIDTH + COLUMN_GAP)
        used = len(column) * NODE_HEIGHT + (len(column) - 1) * ROW_GAP
        top = (height - used) // 2
        for row, (key, kind, label, detail, href) in enumerate(column):
            y = top + row * (NODE_HEIGHT + ROW_GAP)
            nodes[key] = Node(key, kind, label, detail, href, x, y)

    def kinds(*wanted: str) -> list[Node]:
        return [node for node in nodes.values() if node.kind in wanted]

    edges: list[Edge] = []
    version_node = nodes[f"version:{number}"]
    run_nodes = kinds("run")
    for dataset in kinds("dataset"):
        for target in run_nodes or [version_node]:
            edges.append(_edge(dataset, target))
    for source in run_nodes + kinds("parent"):
        edges.append(_edge(source, version_node))
    for rollout in kinds("deployment"):
        edges.append(_edge(version_node, rollout))
    for more in kinds("more"):
        if more.key == "more:deployment":
            edges.append(_edge(version_node, more))
        else:  # datasets not drawn feed the run (or the version) like the drawn ones
            edges.append(_edge(more, (run_nodes or [version_node])[0]))
    width = PADDING * 2 + len(columns) * NODE_WIDTH + (len(columns) - 1) * COLUMN_GAP
    return LineageGraph(width, height, tuple(nodes.values()), tuple(edges))


def _capped(column: list[Spec]) -> list[Spec]:
    if len(column) <= MAX_PER_COLUMN:
        return column
    shown = column[: MAX_PER_COLUMN - 1]
    rest = len(column) - len(shown)
    kind = column[0][1]
    return [*shown, (f"more:{kind}", "more", f"+{rest} more", f"{kind}s not drawn", None)]


def _edge(source: Node, target: Node) -> Edge:
    x1, y1 = source.x + source.width, source.y + source.height // 2
    x2, y2 = target.x - 4, target.y + target.height // 2
    middle = (x1 + x2) // 2
    return Edge(f"M{x1},{y1} C{middle},{y1} {middle},{y2} {x2},{y2}")


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
