"""Describe data as a ``Dataset``: content digest, schema and row count."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.tracking._entities import Dataset
from mlops.tracking._validation import check_name

_CHUNK = 1 << 20


def dataset_from_data(name: str, data: Any, *, source: str | None = None) -> Dataset:
    """A ``Dataset`` for a pandas DataFrame, a NumPy array, or a file path.

    The digest is the SHA-256 of the content (values, column names and types), so the
    same data always gets the same digest and any change gets another.
    """
    check_name("dataset", name)
    if isinstance(data, (str, os.PathLike)):
        return _from_file(name, Path(data), source)
    if isinstance(data, np.ndarray):
        return _from_array(name, data, source)
    if type(data).__module__.startswith("pandas"):
        return _from_frame(name, data, source)
    raise InvalidInput(
        f"cannot describe {type(data).__name__} as a dataset; give a pandas DataFrame, "
        "a NumPy array or a file path"
    )


def _from_file(name: str, path: Path, source: str | None) -> Dataset:
    if not path.is_file():
        raise InvalidInput(f"dataset file {path} does not exist or is not a file")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return Dataset(name=name, digest=digest.hexdigest(), source=source or str(path.absolute()))


def _from_array(name: str, array: np.ndarray[Any, Any], source: str | None) -> Dataset:
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    if array.dtype.hasobject:
        digest.update(repr(array.tolist()).encode())
    else:
        digest.update(np.ascontiguousarray(array).tobytes())
    schema = {"type": "ndarray", "dtype": str(array.dtype), "shape": [-1, *array.shape[1:]]}
    num_rows = int(array.shape[0]) if array.ndim else 1
    return Dataset(
        name=name, digest=digest.hexdigest(), schema=schema, num_rows=num_rows, source=source
    )


def _from_frame(name: str, frame: Any, source: str | None) -> Dataset:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    columns = [{"name": str(column), "type": str(dtype)} for column, dtype in frame.dtypes.items()]
    digest = hashlib.sha256(repr(columns).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return Dataset(
        name=name,
        digest=digest.hexdigest(),
        schema={"type": "dataframe", "columns": columns},
        num_rows=len(frame),
        source=source,
    )
