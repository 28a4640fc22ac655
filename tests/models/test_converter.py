"""The input converter: every payload shape, every error, numeric and tensor paths."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest

from mlops.errors import InvalidInput
from mlops.models import ColumnSpec, Converter, Signature, TensorSpec

SIGNATURE = Signature(
    inputs=[
        ColumnSpec("age", "long"),
        ColumnSpec("income", "double"),
        ColumnSpec("plan", "string", categories=("basic", "pro")),
        ColumnSpec("active", "boolean"),
        ColumnSpec("since", "datetime"),
        ColumnSpec("note", "string", required=False),
    ]
)
ROWS = [
    [30, 1.5, "pro", True, "2024-01-02T03:04:05", "hi"],
    [41, 2.0, "basic", False, "2023-05-06", None],
]
NAMES = SIGNATURE.input_names
RECORDS = [dict(zip(NAMES, row, strict=True)) for row in ROWS]


def _check(frame: Any) -> None:
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == NAMES
    assert frame["age"].tolist() == [30, 41]
    assert frame["age"].dtype == np.int64
    assert frame["income"].dtype == np.float64
    assert frame["plan"].tolist() == ["pro", "basic"]
    assert frame["active"].dtype == bool
    assert frame["since"].tolist() == [
        pd.Timestamp("2024-01-02T03:04:05"),
        pd.Timestamp("2023-05-06"),
    ]
    assert frame["note"].tolist()[0] == "hi"
    assert pd.isna(frame["note"].tolist()[1])


@pytest.mark.parametrize(
    "payload",
    [
        RECORDS,
        {"columns": NAMES, "data": ROWS},
        {"columns": NAMES, "rows": ROWS},
        {"instances": RECORDS},
        {"instances": ROWS},
        {"inputs": RECORDS},
        {"dataframe_split": {"columns": NAMES, "data": ROWS}},
        {"dataframe_records": RECORDS},
        {name: [row[i] for row in ROWS] for i, name in enumerate(NAMES)},
        ROWS,
        np.array(ROWS, dtype=object),
        pd.DataFrame(RECORDS),
    ],
    ids=[
        "records",
        "split-data",
        "split-rows",
        "instances-records",
        "instances-lists",
        "inputs",
        "dataframe_split",
        "dataframe_records",
        "columns",
        "2d-list",
        "2d-array",
        "dataframe",
    ],
)
def test_every_payload_shape(payload: Any) -> None:
    _check(SIGNATURE.converter()(payload))


def test_a_single_record_dict() -> None:
    frame = SIGNATURE.converter()(RECORDS[0])
    assert frame["plan"].tolist() == ["pro"]


def test_columns_are_reordered_and_extra_columns_ignored() -> None:
    shuffled = [{"zzz": 1, **dict(reversed(list(record.items())))} for record in RECORDS]
    _check(SIGNATURE.converter()(shuffled))
    _check(SIGNATURE.converter()({"columns": ["zzz", *NAMES], "data": [[0, *r] for r in ROWS]}))


def test_optional_column_may_be_absent() -> None:
    records = [{k: v for k, v in record.items() if k != "note"} for record in RECORDS]
    frame = SIGNATURE.converter()(records)
    assert frame["note"].isna().all()


def test_typed_dataframe_columns_take_the_vectorized_path() -> None:
    frame = pd.DataFrame(
        {
            "age": np.array([30, 41], dtype=np.int32),
            "income": np.array([1, 2], dtype=np.int64),
            "plan": ["pro", "basic"],
            "active": [True, False],
            "since": pd.to_datetime(["2024-01-02", "2023-05-06"]),
        }
    )
    converted = SIGNATURE.converter()(frame)
    assert converted["age"].dtype == np.int64
    assert converted["income"].dtype == np.float64
    assert converted["since"].tolist()[1] == pd.Timestamp("2023-05-06")


def test_lenient_scalars_are_converted() -> None:
    record = {
        "age": "30",
        "income": "1.25",
        "plan": "pro",
        "active": "true",
        "since": dt.date(2024, 1, 2),
        "note": 123,
    }
    frame = SIGNATURE.converter()([record, {**record, "age": 41.0, "active": 0}])
    assert frame["age"].tolist() == [30, 41]
    assert frame["income"].tolist() == [1.25, 1.25]
    assert frame["active"].tolist() == [True, False]
    assert frame["note"].tolist() == ["123", "123"]


def test_timezone_aware_datetimes_become_utc() -> None:
    record = {**RECORDS[0], "since": "2024-01-02T03:00:00+02:00"}
    frame = SIGNATURE.converter()([record])
    assert frame["since"].tolist() == [pd.Timestamp("2024-01-02T01:00:00")]


def _error(payload: Any, converter: Converter | None = None) -> str:
    with pytest.raises(InvalidInput) as caught:
        (converter or SIGNATURE.converter())(payload)
    return str(caught.value)


def _bad(row: int, **changes: Any) -> list[dict[str, Any]]:
    records = [dict(record) for record in RECORDS]
    records[row].update(changes)
    return records


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (
            [{k: v for k, v in r.items() if k != "age"} for r in RECORDS],
            "missing required column 'age'",
        ),
        (_bad(1, age="abc"), "column 'age' row 1: expected an integer, got 'abc'"),
        (_bad(0, age=1.5), "column 'age' row 0: expected an integer, got 1.5"),
        (_bad(1, age=True), "column 'age' row 1: expected an integer, got True"),
        (_bad(1, age=2**70), "column 'age' row 1: .* out of range for long"),
        (_bad(1, income="abc"), "column 'income' row 1: expected a number, got 'abc'"),
        (_bad(0, income=[1]), "column 'income' row 0: expected a number, got a list"),
        (_bad(0, income=None), "column 'income' row 0: a value is required, got null"),
        (_bad(0, income=float("nan")), "column 'income' row 0: a value is required"),
        (_bad(1, plan="gold"), "column 'plan' row 1: unknown category 'gold'; allowed: 'basic'"),
        (_bad(1, plan=1.5), "column 'plan' row 1: expected a string, got 1.5"),
        (_bad(0, active="maybe"), "column 'active' row 0: expected true or false, got 'maybe'"),
        (_bad(0, since="yesterday"), "column 'since' row 0: expected an ISO 8601 date-time"),
        (_bad(0, since=5), "column 'since' row 0: expected an ISO 8601 date-time, got 5"),
        (
            [RECORDS[0], {k: v for k, v in RECORDS[1].items() if k != "age"}],
            "column 'age' row 1: the value is missing",
        ),
        ({"columns": NAMES, "data": [ROWS[0][:3]]}, "row 0 has 3 values; expected 6"),
        ([ROWS[0][:3]], "rows have 3 values; expected 6"),
        ({"age": [1, 2], "income": [1.0]}, "columns have different lengths"),
        ([], "no rows"),
        ({}, "empty object"),
        ("age=3", "cannot read a str as model input"),
        ([RECORDS[0], 5], "row 1 is a int"),
        ({"instances": RECORDS, "extra": 1}, "cannot also hold"),
    ],
    ids=[
        "missing-column",
        "not-an-integer",
        "fractional-integer",
        "bool-for-integer",
        "out-of-range",
        "not-a-number",
        "list-for-number",
        "null-required",
        "nan-required",
        "unknown-category",
        "not-a-string",
        "not-a-boolean",
        "bad-datetime",
        "number-for-datetime",
        "missing-in-one-record",
        "split-width",
        "positional-width",
        "column-lengths",
        "empty-list",
        "empty-dict",
        "unsupported-type",
        "mixed-records",
        "wrapper-with-extras",
    ],
)
def test_errors_name_the_column_and_problem(payload: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        SIGNATURE.converter()(payload)


def test_unknown_category_can_be_allowed() -> None:
    frame = SIGNATURE.converter("allow")(_bad(1, plan="gold"))
    assert frame["plan"].tolist() == ["pro", "gold"]


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="unknown_category must be one of error, allow"):
        SIGNATURE.converter("ignore")


def test_integer_range_and_vectorized_nulls() -> None:
    signature = Signature(
        inputs=[ColumnSpec("small", "integer"), ColumnSpec("x", "double", required=False)]
    )
    convert = signature.converter()
    assert "out of range for integer" in _error([{"small": 2**31, "x": 1}], convert)
    frame = convert(pd.DataFrame({"small": [1.0, 2.0], "x": [np.nan, 1.0]}))
    assert frame["small"].dtype == np.int32
    assert np.isnan(frame["x"][0])
    assert "column 'small' row 1: expected an integer" in _error(
        pd.DataFrame({"small": [1.0, 2.5]}), convert
    )
    assert "column 'small' row 0: a value is required" in _error(
        pd.DataFrame({"small": [np.nan, 2.0]}), convert
    )


def test_optional_integer_with_nulls_becomes_float() -> None:
    signature = Signature(inputs=[ColumnSpec("n", "long", required=False)])
    frame = signature.converter()([{"n": 1}, {"n": None}])
    assert frame["n"].dtype == np.float64
    assert frame["n"].isna().tolist() == [False, True]


NUMERIC = Signature(inputs=[ColumnSpec(f"c{i}", "double") for i in range(30)])


def test_as_numpy_for_numeric_signatures() -> None:
    record = {f"c{i}": i for i in range(30)}
    array = NUMERIC.converter()([record], as_numpy=True)
    assert array.shape == (1, 30)
    assert array.dtype == np.float64
    assert array[0].tolist() == [float(i) for i in range(30)]
    other = NUMERIC.converter()({"columns": list(record), "data": [list(record.values())]})
    assert other.to_numpy().tolist() == array.tolist()
    split = NUMERIC.converter()(
        {"columns": list(record), "data": [list(record.values())]}, as_numpy=True
    )
    assert split.tolist() == array.tolist()


def test_as_numpy_errors_still_name_column_and_row() -> None:
    records = [{f"c{i}": i for i in range(30)} for _ in range(2)]
    records[1]["c7"] = "seven"
    with pytest.raises(InvalidInput, match="column 'c7' row 1: expected a number, got 'seven'"):
        NUMERIC.converter()(records, as_numpy=True)


def test_as_numpy_refuses_non_numeric_signatures() -> None:
    with pytest.raises(InvalidInput, match="column 'plan' is string"):
        SIGNATURE.converter()(RECORDS, as_numpy=True)


TENSOR = Signature(
    inputs=[ColumnSpec(str(i), "float") for i in range(3)],
    input_tensor=TensorSpec("float32", (-1, 3)),
)


@pytest.mark.parametrize(
    "payload",
    [
        [[1, 2, 3], [4, 5, 6]],
        np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float64),
        {"instances": [[1, 2, 3], [4, 5, 6]]},
        {"inputs": [[1, 2, 3], [4, 5, 6]]},
        [{"0": 1, "1": 2, "2": 3}, {"0": 4, "1": 5, "2": 6}],
        {"columns": ["0", "1", "2"], "data": [[1, 2, 3], [4, 5, 6]]},
        pd.DataFrame([[1, 2, 3], [4, 5, 6]]),
    ],
    ids=["2d-list", "array", "instances", "inputs", "records", "split", "dataframe"],
)
def test_tensor_payloads(payload: Any) -> None:
    array = TENSOR.converter()(payload)
    assert array.dtype == np.float32
    assert array.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_tensor_single_instance_gets_a_batch_dimension() -> None:
    assert TENSOR.converter()([1, 2, 3]).shape == (1, 3)


def test_tensor_errors() -> None:
    convert = TENSOR.converter()
    assert "column '1' row 0: expected a number, got 'abc'" in _error([[1, "abc", 3]], convert)
    assert "shape [-1, 3]" in _error([[1, 2]], convert)
    assert "not form a rectangular array" in _error([[1, 2, 3], [1, 2]], convert)
    images = Signature(inputs=[], input_tensor=TensorSpec("float32", (-1, 2, 2)))
    assert images.converter()(np.zeros((5, 2, 2))).shape == (5, 2, 2)
    assert "shape [-1, 2, 2]" in _error(np.zeros((5, 2, 3)), images.converter())
    assert "takes a tensor" in _error([{"a": 1}], images.converter())
    ints = Signature(inputs=[], input_tensor=TensorSpec("int64", (-1,)))
    assert ints.converter()([1.0, 2.0]).dtype == np.int64
    assert "fractional" in _error([1.5], ints.converter())
