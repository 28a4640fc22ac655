"""The pipeline model: @step options, dependencies inferred by name, order, bad wiring."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.errors import InvalidInput
from mlops.pipelines import Binding, Pipeline, Resources, Step, step


@step
def load(path: str = "data.csv") -> list[int]:
    return [1, 2, 3]


@step(outputs=("train", "test"))
def split(load: list[int], ratio: float = 0.5) -> dict[str, list[int]]:
    cut = int(len(load) * ratio)
    return {"train": load[:cut], "test": load[cut:]}


@step
def fit(train: list[int], lr: float) -> float:
    return sum(train) * lr


@step
def evaluate(fit: float, test: list[int]) -> float:
    return fit - sum(test)


def test_step_keeps_the_function_callable_and_records_its_options() -> None:
    @step(name="prep", cache=False, cache_expiry="1d", cpu=0.5, memory="2Gi", gpu=1, retries=2)
    def preprocess(rows: list[int]) -> list[int]:
        return rows

    assert isinstance(preprocess, Step)
    assert preprocess([1]) == [1]
    assert preprocess.name == "prep"
    assert preprocess.cache is False
    assert preprocess.cache_expiry == 86400
    assert preprocess.resources == Resources(cpu=0.5, memory=2 * 2**30, gpu=1)
    assert preprocess.retries == 2
    assert preprocess.inputs == ("rows",)
    assert len(preprocess.code_hash) == 64
    assert load.resources == Resources()
    assert load.timeout is None
    assert load.cache


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpu": 0}, "cpu must be more than 0"),
        ({"memory": "lots"}, "is not an amount of memory"),
        ({"gpu": -1}, "gpu must be a whole number"),
        ({"retries": 1.5}, "retries must be a whole number"),
        ({"timeout": "soon"}, "timeout 'soon' is not a duration"),
        ({"cache_expiry": 0}, "cache_expiry must be a positive duration"),
        ({"name": "my step"}, "is not a Python identifier"),
        ({"outputs": "train"}, "outputs must be a list of names"),
        ({"outputs": ["a", "a"]}, "repeat a name"),
    ],
)
def test_step_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        step(**options)(lambda: None)


def test_step_refuses_var_args() -> None:
    def gather(*rows: int) -> int:
        return sum(rows)

    with pytest.raises(InvalidInput, match="give it named parameters only"):
        step(gather)


def test_dependencies_are_inferred_from_parameter_names() -> None:
    pipeline = Pipeline("train", [evaluate, fit, split, load], params={"lr": 0.1})
    assert pipeline.order == ("load", "split", "fit", "evaluate")
    assert [s.name for s in pipeline.steps] == list(pipeline.order)
    assert pipeline.upstream("split") == ("load",)
    assert pipeline.upstream("evaluate") == ("fit", "split")
    assert pipeline.downstream("split") == ("fit", "evaluate")
    assert pipeline.bindings("fit") == (
        Binding("train", "step", "split", "train"),
        Binding("lr", "param"),
    )
    assert pipeline.bindings("load") == (Binding("path", "default"),)
    assert pipeline.param_names == {"path", "ratio", "lr"}


def test_independent_steps_keep_the_order_they_were_given() -> None:
    @step
    def b() -> int:
        return 1

    @step
    def a() -> int:
        return 2

    @step
    def c(a: int, b: int) -> int:
        return a + b

    assert Pipeline("p", [c, b, a]).order == ("b", "a", "c")
    assert Pipeline("p", [a, c, b]).order == ("a", "b", "c")


def test_a_cycle_is_named() -> None:
    @step
    def first(third: int) -> int:
        return third

    @step
    def second(first: int) -> int:
        return first

    @step
    def third(second: int) -> int:
        return second

    @step
    def root() -> int:
        return 0

    with pytest.raises(InvalidInput, match=r"has a cycle: first -> second -> third -> first"):
        Pipeline("loop", [root, first, second, third])


def test_a_step_taking_its_own_output_is_a_cycle() -> None:
    @step
    def again(again: int) -> int:
        return again

    with pytest.raises(InvalidInput, match="has a cycle: again -> again"):
        Pipeline("self", [again])


def test_an_unknown_input_names_what_is_available() -> None:
    with pytest.raises(InvalidInput) as caught:
        Pipeline("train", [load, split, fit])  # no lr
    message = str(caught.value)
    assert "step 'fit' needs input 'lr'" in message
    assert "steps load, split, fit" in message
    assert "outputs train, test" in message
    assert "params={'lr': ...}" in message


@pytest.mark.parametrize(
    ("steps", "params", "message"),
    [
        ([load, load], {}, "has two steps named 'load'"),
        ([], {}, "has no steps"),
        ([load, len], {}, "len is not a step; decorate the function with @step"),
        ([load], {"load": 1}, "param 'load' has the name of step 'load'"),
        ([load, split], {"train": 1}, "param 'train' has the name of output 'train' of 'split'"),
        ([load], {"paht": "x.csv"}, "param 'paht' is not an input of any step"),
    ],
)
def test_bad_wiring_is_refused(steps: list[Any], params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        Pipeline("p", steps, params=params)


def test_an_output_named_like_a_step_is_ambiguous() -> None:
    @step(outputs=("load", "other"))
    def both() -> dict[str, int]:
        return {"load": 1, "other": 2}

    with pytest.raises(InvalidInput, match="output 'load' of step 'both' has the name of step"):
        Pipeline("p", [load, both])


def test_unknown_step_lookup_lists_the_steps() -> None:
    with pytest.raises(InvalidInput, match="has no step 'fitt'; its steps are load, split"):
        Pipeline("p", [load, split]).step("fitt")
