"""``Pipeline``: steps wired by name, checked and ordered when it is built."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlops.errors import InvalidInput
from mlops.pipelines._step import Step
from mlops.tracking._validation import check_name

__all__ = ["Binding", "Pipeline"]


@dataclass(frozen=True, slots=True)
class Binding:
    """Where one parameter of a step gets its value.

    ``kind`` is "step" (the output of ``source``, or its ``key`` among several outputs),
    "param" (a pipeline param) or "default" (the function's default, unless a run
    overrides it with a param of that name).
    """

    parameter: str
    kind: Literal["step", "param", "default"]
    source: str | None = None
    key: str | None = None


class Pipeline:
    """Steps whose dependencies are inferred from their parameter names.

    A parameter named like another step takes that step's output; named like one of a
    step's ``outputs``, that output alone; otherwise it takes the pipeline param of that
    name, else the function's default. Immutable once built.
    """

    __slots__ = ("_bindings", "_downstream", "_name", "_order", "_params", "_steps", "_upstream")

    def __init__(
        self, name: str, steps: Sequence[Step], params: Mapping[str, Any] | None = None
    ) -> None:
        check_name("pipeline", name)
        self._name = name
        self._steps = _index_steps(name, steps)
        self._params = _check_params(name, params)
        producers = _producers(name, self._steps, self._params)
        self._bindings = {
            step.name: _bind(name, step, producers, self._params) for step in self._steps.values()
        }
        self._upstream = {
            step_name: tuple(
                dict.fromkeys(
                    b.source for b in bindings if b.source is not None and b.kind == "step"
                )
            )
            for step_name, bindings in self._bindings.items()
        }
        self._order = _topological_order(name, list(self._steps), self._upstream)
        downstream: dict[str, list[str]] = {step_name: [] for step_name in self._steps}
        for step_name in self._order:
            for source in self._upstream[step_name]:
                downstream[source].append(step_name)
        self._downstream = {key: tuple(value) for key, value in downstream.items()}
        _refuse_unused_params(name, self._params, self.param_names)

    def __repr__(self) -> str:
        return f"<Pipeline {self._name} steps={list(self._order)}>"

    @property
    def name(self) -> str:
        return self._name

    @property
    def params(self) -> Mapping[str, Any]:
        """The pipeline params as given (a copy)."""
        return dict(self._params)

    @property
    def steps(self) -> tuple[Step, ...]:
        """The steps in run order: each after the steps it takes outputs from."""
        return tuple(self._steps[step_name] for step_name in self._order)

    @property
    def order(self) -> tuple[str, ...]:
        """Step names in run order; among independent steps, the order they were given."""
        return self._order

    @property
    def param_names(self) -> frozenset[str]:
        """Every name a run may set with ``params=``: step parameters not fed by a step."""
        return frozenset(
            binding.parameter
            for bindings in self._bindings.values()
            for binding in bindings
            if binding.kind != "step"
        )

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        found = self._steps.get(name)
        if found is None:
            raise InvalidInput(
                f"pipeline {self._name!r} has no step {name!r}; its steps are "
                f"{', '.join(self._order)}"
            )
        return found

    def bindings(self, name: str) -> tuple[Binding, ...]:
        """Where each parameter of step ``name`` gets its value, in parameter order."""
        self.step(name)
        return self._bindings[name]

    def upstream(self, name: str) -> tuple[str, ...]:
        """The steps whose outputs step ``name`` takes directly."""
        self.step(name)
        return self._upstream[name]

    def downstream(self, name: str) -> tuple[str, ...]:
        """Every step that depends on ``name``, directly or not, in run order."""
        self.step(name)
        reached: set[str] = set()
        pending = list(self._downstream[name])
        while pending:
            current = pending.pop()
            if current not in reached:
                reached.add(current)
                pending.extend(self._downstream[current])
        return tuple(step_name for step_name in self._order if step_name in reached)


def _index_steps(pipeline: str, steps: Sequence[Step]) -> dict[str, Step]:
    given: object = steps
    if isinstance(given, (str, bytes)) or not isinstance(given, Iterable):
        raise InvalidInput(f"pipeline {pipeline!r}: steps must be a list of @step functions")
    indexed: dict[str, Step] = {}
    items: Iterable[object] = given
    for item in items:
        if not isinstance(item, Step):
            what = getattr(item, "__name__", repr(item))
            raise InvalidInput(
                f"pipeline {pipeline!r}: {what} is not a step; decorate the function "
                "with @step (from mlops.pipelines import step)"
            )
        if item.name in indexed:
            raise InvalidInput(
                f"pipeline {pipeline!r} has two steps named {item.name!r}; step names are "
                "unique, so rename one with @step(name=...)"
            )
        indexed[item.name] = item
    if not indexed:
        raise InvalidInput(f"pipeline {pipeline!r} has no steps; give it at least one")
    return indexed


def _check_params(pipeline: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInput(
            f"pipeline {pipeline!r}: params must be a mapping of name to value, "
            f"got {type(params).__name__}"
        )
    for key in params:
        if not isinstance(key, str):
            raise InvalidInput(f"pipeline {pipeline!r}: param names are strings, got {key!r}")
    return dict(params)


def _producers(
    pipeline: str, steps: Mapping[str, Step], params: Mapping[str, Any]
) -> dict[str, tuple[str, str | None]]:
    """Map every name a parameter can take an output by to (step, output key or None)."""
    producers: dict[str, tuple[str, str | None]] = {name: (name, None) for name in steps}
    for step in steps.values():
        for key in step.outputs:
            taken = producers.get(key)
            if taken is not None:
                owner = f"step {taken[0]!r}" if taken[1] is None else f"an output of {taken[0]!r}"
                raise InvalidInput(
                    f"pipeline {pipeline!r}: output {key!r} of step {step.name!r} has the "
                    f"name of {owner}, so a parameter named {key!r} would be ambiguous; "
                    "rename one of them"
                )
            producers[key] = (step.name, key)
    for param in params:
        if param in producers:
            source, output = producers[param]
            owner = f"step {source!r}" if output is None else f"output {output!r} of {source!r}"
            raise InvalidInput(
                f"pipeline {pipeline!r}: param {param!r} has the name of {owner}, so a "
                f"parameter named {param!r} would be ambiguous; rename the param"
            )
    return producers


def _bind(
    pipeline: str,
    step: Step,
    producers: Mapping[str, tuple[str, str | None]],
    params: Mapping[str, Any],
) -> tuple[Binding, ...]:
    defaults = step.defaults
    bindings = []
    for parameter in step.inputs:
        if parameter in producers:
            source, key = producers[parameter]
            bindings.append(Binding(parameter, "step", source, key))
        elif parameter in params:
            bindings.append(Binding(parameter, "param"))
        elif parameter in defaults:
            bindings.append(Binding(parameter, "default"))
        else:
            raise InvalidInput(
                f"pipeline {pipeline!r}: step {step.name!r} needs input {parameter!r}, which "
                f"no step produces and no param provides; available: "
                f"{_available(producers, params)}. Add a step named {parameter!r}, pass "
                f"params={{{parameter!r}: ...}}, or give the parameter a default"
            )
    return tuple(bindings)


def _available(producers: Mapping[str, tuple[str, str | None]], params: Mapping[str, Any]) -> str:
    steps = [name for name, (_, key) in producers.items() if key is None]
    outputs = [name for name, (_, key) in producers.items() if key is not None]
    parts = [f"steps {', '.join(steps)}"]
    if outputs:
        parts.append(f"outputs {', '.join(outputs)}")
    parts.append(f"params {', '.join(params)}" if params else "no params")
    return "; ".join(parts)


def _topological_order(
    pipeline: str, declared: list[str], upstream: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """Kahn's algorithm; among ready steps the one declared first goes first (stable)."""
    position = {name: index for index, name in enumerate(declared)}
    waiting = {name: len(upstream[name]) for name in declared}
    downstream: dict[str, list[str]] = {name: [] for name in declared}
    for name in declared:
        for source in upstream[name]:
            downstream[source].append(name)
    ready = [position[name] for name in declared if waiting[name] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        name = declared[heapq.heappop(ready)]
        order.append(name)
        for consumer in downstream[name]:
            waiting[consumer] -= 1
            if waiting[consumer] == 0:
                heapq.heappush(ready, position[consumer])
    if len(order) < len(declared):
        cycle = _find_cycle([name for name in declared if waiting[name] > 0], upstream)
        raise InvalidInput(
            f"pipeline {pipeline!r} has a cycle: {' -> '.join(cycle)}; a step cannot take "
            "its own output, even through other steps, so rename a parameter to break it"
        )
    return tuple(order)


def _find_cycle(stuck: list[str], upstream: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One cycle among the steps Kahn's algorithm could not order, in data-flow order."""
    remaining = set(stuck)
    path: list[str] = []
    on_path: dict[str, int] = {}
    current = stuck[0]
    # Every stuck step has a stuck upstream step, so walking upstream must revisit one.
    while current not in on_path:
        on_path[current] = len(path)
        path.append(current)
        current = next(source for source in upstream[current] if source in remaining)
    cycle = path[on_path[current] :]
    cycle.reverse()  # walked against the data flow
    start = cycle.index(min(cycle, key=stuck.index))  # from the step declared first
    cycle = cycle[start:] + cycle[:start]
    return [*cycle, cycle[0]]


def _refuse_unused_params(pipeline: str, params: Mapping[str, Any], known: frozenset[str]) -> None:
    unused = sorted(set(params) - known)
    if unused:
        raise InvalidInput(
            f"pipeline {pipeline!r}: param {unused[0]!r} is not an input of any step; "
            f"the steps take {', '.join(sorted(known)) or 'no params'}. Remove it or fix "
            "its name"
        )
