"""Signature inference, serialization, equality and compatibility."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import InvalidInput
from mlops.models import ColumnSpec, Signature, TensorSpec, infer_signature


def _types(signature: Signature) -> dict[str, str]:
    return {column.name: column.type for column in signature.inputs}


def test_infers_every_column_type_from_a_dataframe() -> None:
    frame = pd.DataFrame(
        {
            "f64": [1.5, 2.5],
            "f32": np.array([1, 2], dtype=np.float32),
            "i64": [1, 2],
            "i32": np.array([1, 2], dtype=np.int32),
            "flag": [True, False],
            "name": ["a", "b"],
            "when": pd.to_datetime(["2024-01-01", "2024-02-01"]),
            "level": pd.Categorical(["low", "high"]),
        }
    )
    signature = infer_signature(frame)
    assert _types(signature) == {
        "f64": "double",
        "f32": "float",
        "i64": "long",
        "i32": "integer",
        "flag": "boolean",
        "name": "string",
        "when": "datetime",
        "level": "string",
    }
    assert signature.input_names == list(frame.columns)
    assert signature.input_tensor is None
    assert all(column.required for column in signature.inputs)


def test_string_columns_record_categories_up_to_fifty() -> None:
    few = [f"v{i}" for i in range(50)]
    many = [f"v{i}" for i in range(51)]
    signature = infer_signature(pd.DataFrame({"few": few + few[:1], "many": many}))
    columns = {column.name: column for column in signature.inputs}
    assert columns["few"].categories == tuple(sorted(few))
    assert columns["many"].categories is None


def test_nulls_make_a_column_optional() -> None:
    frame = pd.DataFrame({"x": [1.0, None], "s": ["a", None], "n": [1, 2]})
    required = {column.name: column.required for column in infer_signature(frame).inputs}
    assert required == {"x": False, "s": False, "n": True}


@pytest.mark.parametrize(
    "example",
    [
        [{"age": 30, "plan": "pro", "score": 0.5}, {"age": 41, "plan": "basic", "score": 2}],
        {"age": [30, 41], "plan": ["pro", "basic"], "score": [0.5, 2.0]},
        {"columns": ["age", "plan", "score"], "data": [[30, "pro", 0.5], [41, "basic", 2]]},
        {"age": 30, "plan": "pro", "score": 0.5},
    ],
    ids=["records", "columns", "split", "one-record"],
)
def test_infers_from_plain_python_payloads(example: Any) -> None:
    signature = infer_signature(example)
    assert _types(signature) == {"age": "long", "plan": "string", "score": "double"}


def test_datetime_values_in_records() -> None:
    signature = infer_signature([{"when": dt.datetime(2024, 1, 1)}])
    assert _types(signature) == {"when": "datetime"}


def test_a_2d_array_gives_numbered_columns_and_a_tensor() -> None:
    array = np.zeros((3, 4), dtype=np.float32)
    signature = infer_signature(array, np.array([0, 1, 1]))
    assert signature.input_names == ["0", "1", "2", "3"]
    assert {column.type for column in signature.inputs} == {"float"}
    assert signature.input_tensor == TensorSpec("float32", (-1, 4))
    assert signature.outputs == (ColumnSpec("prediction", "long"),)


def test_higher_dimensional_arrays_are_tensors_only() -> None:
    signature = infer_signature(np.zeros((2, 3, 8, 8)), np.zeros((2, 10)))
    assert signature.inputs == ()
    assert signature.input_tensor == TensorSpec("float64", (-1, 3, 8, 8))
    assert signature.output_tensor == TensorSpec("float64", (-1, 10))
    assert [column.name for column in signature.outputs] == [str(i) for i in range(10)]


def test_string_outputs_record_their_classes() -> None:
    signature = infer_signature(pd.DataFrame({"x": [1.0]}), np.array(["no", "yes"]))
    assert signature.outputs == (ColumnSpec("prediction", "string", categories=("no", "yes")),)


def test_mixed_column_names_the_column() -> None:
    with pytest.raises(InvalidInput, match="column 'x' mixes long, string"):
        infer_signature([{"x": 1}, {"x": "a"}])


def test_unsupported_values_name_the_column() -> None:
    with pytest.raises(InvalidInput, match="column 'blob' holds a bytes"):
        infer_signature([{"blob": b"abc"}])


def test_reference_data_overrides_categories_and_optionality() -> None:
    example = pd.DataFrame({"plan": ["pro"], "age": [30]})
    reference = pd.DataFrame({"plan": ["pro", "basic", "team"], "age": [30, None, 40]})
    columns = {c.name: c for c in infer_signature(example, reference_data=reference).inputs}
    assert columns["plan"].categories == ("basic", "pro", "team")
    assert columns["age"].required is False


def test_to_dict_round_trip_and_equality() -> None:
    signature = Signature(
        inputs=[ColumnSpec("a", "double"), ColumnSpec("b", "string", False, ("y", "x"))],
        outputs=[ColumnSpec("prediction", "long")],
    )
    assert signature.inputs[1].categories == ("x", "y")
    restored = Signature.from_dict(signature.to_dict())
    assert restored == signature
    assert restored != Signature(inputs=[ColumnSpec("a", "double")])
    tensor = infer_signature(np.zeros((2, 3)))
    assert Signature.from_dict(tensor.to_dict()) == tensor


def test_converter_is_compiled_once_per_policy() -> None:
    signature = Signature(inputs=[ColumnSpec("a", "double")])
    assert signature.converter() is signature.converter("error")
    assert signature.converter("allow") is not signature.converter("error")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (lambda: ColumnSpec("", "double"), "non-empty string"),
        (lambda: ColumnSpec("a", "decimal"), "unknown type 'decimal'"),
        (lambda: ColumnSpec("a", "long", categories=("x",)), "only string columns"),
        (lambda: TensorSpec("complex64", (-1, 2)), "unsupported tensor dtype"),
        (lambda: TensorSpec("float32", (0, 2)), "shape"),
        (lambda: Signature(inputs=[]), "needs input columns"),
        (
            lambda: Signature(inputs=[ColumnSpec("a", "long"), ColumnSpec("a", "long")]),
            "more than once",
        ),
    ],
)
def test_invalid_specs_are_rejected(spec: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        spec()


_BASE = Signature(
    inputs=[
        ColumnSpec("age", "long"),
        ColumnSpec("plan", "string", categories=("basic", "pro")),
        ColumnSpec("note", "string", required=False),
    ],
    outputs=[ColumnSpec("prediction", "long")],
)


def _with(*columns: ColumnSpec, outputs: Any = None) -> Signature:
    return Signature(inputs=columns, outputs=_BASE.outputs if outputs is None else outputs)


@pytest.mark.parametrize(
    ("newer", "compatible"),
    [
        (_BASE, True),
        (_with(*_BASE.inputs, ColumnSpec("extra", "double", required=False)), True),
        (_with(ColumnSpec("age", "long", required=False), *_BASE.inputs[1:]), True),
        (
            _with(
                _BASE.inputs[0],
                ColumnSpec("plan", "string", categories=("basic", "pro", "team")),
                _BASE.inputs[2],
            ),
            True,
        ),
        (_with(_BASE.inputs[0], ColumnSpec("plan", "string"), _BASE.inputs[2]), True),
        (_with(*_BASE.inputs, ColumnSpec("extra", "double")), False),
        (_with(*_BASE.inputs[1:]), False),
        (_with(ColumnSpec("years", "long"), *_BASE.inputs[1:]), False),
        (_with(ColumnSpec("age", "double"), *_BASE.inputs[1:]), False),
        (_with(*_BASE.inputs[:2], ColumnSpec("note", "string")), False),
        (
            _with(
                _BASE.inputs[0],
                ColumnSpec("plan", "string", categories=("pro",)),
                _BASE.inputs[2],
            ),
            False,
        ),
        (_with(*_BASE.inputs, outputs=[ColumnSpec("prediction", "string")]), False),
    ],
    ids=[
        "same",
        "optional-added",
        "made-optional",
        "category-added",
        "categories-dropped",
        "required-added",
        "removed",
        "renamed",
        "retyped",
        "made-required",
        "category-removed",
        "output-retyped",
    ],
)
def test_compatibility(newer: Signature, compatible: bool) -> None:
    assert newer.is_compatible_with(_BASE) is compatible


def test_tensor_compatibility() -> None:
    four = infer_signature(np.zeros((2, 4)))
    assert infer_signature(np.zeros((5, 4))).is_compatible_with(four)
    assert not infer_signature(np.zeros((2, 5))).is_compatible_with(four)
    assert not infer_signature(np.zeros((2, 4), dtype=np.float32)).is_compatible_with(four)
    assert not _BASE.is_compatible_with(four)
