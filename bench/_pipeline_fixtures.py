"""Pipelines the benchmarks register by "module:attribute" (bench/ is on sys.path)."""

from mlops.pipelines import Pipeline, step


@step(cache=False)
def tick() -> None:
    """An empty step: what is measured is when it starts, not what it does."""


TICK = Pipeline("tick", [tick])
