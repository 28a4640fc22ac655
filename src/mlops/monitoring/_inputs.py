"""Logged request bodies of every serving protocol, decoded into columns for drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlops.errors import InvalidInput
from mlops.models._payload import MISSING, parse_payload, to_columns
from mlops.monitoring._window import IntArray, Window, _loads_many, _object_array, read_window
from mlops.serving._protocols import _tensor
from mlops.store import Store

__all__ = ["DecodedInputs", "decode_inputs", "read_inputs"]


@dataclass(frozen=True, slots=True, eq=False)
class DecodedInputs:
    """Logged request bodies turned into columns (for drift).

    ``columns`` maps a feature name to one value per decoded row: float64 (NaN for null)
    when every value is a number, bool or null, an object array otherwise. ``request``
    gives each row's body (its index in the decoded sequence, e.g. a window's request
    arrays), ``row_index`` its row within that body. ``skipped`` counts bodies that could
    not be decoded (malformed, truncated, not a known shape); ``missing`` bodies that were
    not logged.
    """

    columns: dict[str, npt.NDArray[Any]]
    request: IntArray
    row_index: IntArray
    decoded: int
    skipped: int
    missing: int

    @property
    def rows(self) -> int:
        return len(self.request)


def decode_inputs(
    bodies: Sequence[str | bytes | None], *, names: Sequence[str] | None = None
) -> DecodedInputs:
    """Decode logged inputs of every protocol into columns; undecodable bodies are skipped.

    ``names`` label positional columns (rows as lists, 2-D tensors); default "0".."n-1".
    """
    columns: dict[str, list[Any]] = {}
    request: list[int] = []
    row_index: list[int] = []
    decoded = skipped = missing = 0
    total = 0
    texts = [
        body if body is None or isinstance(body, str) else bytes(body).decode("utf-8", "replace")
        for body in bodies
    ]
    documents = _loads_many(texts)
    for position, document in enumerate(documents):
        if bodies[position] is None:
            missing += 1
            continue
        body_columns = _body_columns(document, names)
        if body_columns is None:
            skipped += 1
            continue
        count = len(next(iter(body_columns.values())))
        for name, values in body_columns.items():
            column = columns.get(name)
            if column is None:
                column = columns[name] = [None] * total
            column.extend(values)
        total += count
        for column in columns.values():
            if len(column) < total:  # this body lacked the column
                column.extend([None] * (total - len(column)))
        request.extend([position] * count)
        row_index.extend(range(count))
        decoded += 1
    return DecodedInputs(
        columns={name: column_array(values) for name, values in columns.items()},
        request=np.array(request, dtype=np.int64),
        row_index=np.array(row_index, dtype=np.int64),
        decoded=decoded,
        skipped=skipped,
        missing=missing,
    )


def _body_columns(document: Any, names: Sequence[str] | None) -> dict[str, list[Any]] | None:
    """One body's columns as lists of equal length, or None when it cannot be read."""
    if document is None:
        return None
    if type(document) is dict and ("truncated" in document or "unloggable" in document):
        return None
    fast = _records_columns(document)
    if fast is not None:
        return fast
    try:
        if _is_v2(document):
            return _v2_columns(document, names)
        found = to_columns(parse_payload(document), names)
    except (InvalidInput, TypeError, ValueError, IndexError, KeyError):
        return None
    result = {}
    for name, values in found.items():
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        result[name] = [None if value is MISSING else value for value in items]
    lengths = {len(values) for values in result.values()}
    if len(lengths) != 1 or lengths == {0}:
        return None
    return result


# Keys that make a dict a protocol envelope rather than one record of feature values.
_ENVELOPE_KEYS = frozenset(
    {"inputs", "instances", "dataframe_split", "dataframe_records", "columns", "rows", "data"}
)
_SCALAR_TYPES = (int, float, str, bool, type(None))


def _records_columns(document: Any) -> dict[str, list[Any]] | None:
    """The common bodies — one record, or a list of records, of scalar values — read
    without the general payload parser (several times faster); None for anything else."""
    if type(document) is dict:
        if not document or not _ENVELOPE_KEYS.isdisjoint(document):
            return None
        if not all(type(value) in _SCALAR_TYPES for value in document.values()):
            return None
        return {str(key): [value] for key, value in document.items()}
    if type(document) is not list or not document:
        return None
    keys: dict[str, None] = {}
    for record in document:
        if type(record) is not dict or not all(
            type(value) in _SCALAR_TYPES for value in record.values()
        ):
            return None
        keys.update(dict.fromkeys(record))
    return {key: [record.get(key) for record in document] for key in keys}


def _is_v2(document: Any) -> bool:
    tensors = document.get("inputs") if type(document) is dict else None
    return (
        type(tensors) is list
        and bool(tensors)
        and all(type(t) is dict and "datatype" in t and "data" in t for t in tensors)
    )


def _v2_columns(document: dict[str, Any], names: Sequence[str] | None) -> dict[str, list[Any]]:
    tensors = [_tensor(item, index) for index, item in enumerate(document["inputs"])]
    columns: dict[str, list[Any]] = {}
    for name, array in tensors:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim == 1 and len(tensors) > 1:
            columns[name] = array.tolist()
        elif array.ndim == 2 and len(tensors) == 1:
            labels = list(names) if names is not None else [str(i) for i in range(array.shape[1])]
            if len(labels) != array.shape[1]:
                raise InvalidInput(f"{array.shape[1]} columns, {len(labels)} names")
            columns.update({label: array[:, i].tolist() for i, label in enumerate(labels)})
        elif array.ndim == 1:
            columns[name] = array.tolist()
        else:
            raise InvalidInput(f"tensor {name!r} of shape {list(array.shape)} is not tabular")
    return columns


def column_array(values: list[Any]) -> npt.NDArray[Any]:
    """Numbers, bools and nulls as float64 (NaN for null); anything else as objects."""
    if all(value is None or type(value) in (int, float, bool) for value in values):
        return np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    return _object_array(values)


def read_inputs(
    store: Store,
    endpoint: str,
    window: Window,
    *,
    version: int | None = None,
    route: str | None = None,
    names: Sequence[str] | None = None,
) -> DecodedInputs:
    """The logged inputs of a window's live requests, as columns (see ``decode_inputs``)."""
    found = read_window(
        store,
        endpoint,
        window,
        version=version,
        route=route,
        outputs=False,
        feedback=False,
        inputs=True,
    )
    assert found.inputs is not None
    return decode_inputs(found.inputs.tolist(), names=names)
