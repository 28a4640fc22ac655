"""A model's signature: named, typed input and output columns, or a tensor shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops.errors import InvalidInput

if TYPE_CHECKING:
    from mlops.models._converter import Converter

__all__ = [
    "COLUMN_TYPES",
    "MAX_CATEGORIES",
    "NUMERIC_TYPES",
    "TENSOR_DTYPES",
    "ColumnSpec",
    "Signature",
    "TensorSpec",
    "column_type_for_dtype",
]

#: The column types a signature can name.
COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "datetime")
#: Types that convert to a float array (booleans as 0.0 and 1.0).
NUMERIC_TYPES = frozenset({"double", "float", "long", "integer", "boolean"})
#: A string column records its categories when it has at most this many distinct values.
MAX_CATEGORIES = 50
#: Tensor element types a signature can name, with the column type of each.
TENSOR_DTYPES = {
    "float64": "double",
    "float32": "float",
    "float16": "float",
    "int64": "long",
    "int32": "integer",
    "int16": "integer",
    "int8": "integer",
    "uint8": "integer",
    "bool": "boolean",
}


def column_type_for_dtype(dtype: str) -> str:
    """The column type of a tensor element type, e.g. ``float32`` → ``float``."""
    try:
        return TENSOR_DTYPES[dtype]
    except KeyError:
        raise InvalidInput(
            f"unsupported tensor dtype {dtype!r}; use one of {', '.join(TENSOR_DTYPES)}"
        ) from None


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One named column: its type, whether it must be present and non-null, its categories.

    ``categories`` is the sorted tuple of allowed values of a string column, or None
    when any string is allowed.
    """

    name: str
    type: str
    required: bool = True
    categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"a column name must be a non-empty string, not {self.name!r}")
        if self.type not in COLUMN_TYPES:
            raise InvalidInput(
                f"column {self.name!r} has the unknown type {self.type!r}; "
                f"use one of {', '.join(COLUMN_TYPES)}"
            )
        if self.categories is not None:
            if self.type != "string":
                raise InvalidInput(
                    f"column {self.name!r} is {self.type}; only string columns have categories"
                )
            object.__setattr__(self, "categories", tuple(sorted(set(self.categories))))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "type": self.type, "required": self.required}
        if self.categories is not None:
            data["categories"] = list(self.categories)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        _check_mapping(data, "a column spec")
        categories = data.get("categories")
        return cls(
            name=data.get("name"),  # type: ignore[arg-type]  # validated in __post_init__
            type=data.get("type"),  # type: ignore[arg-type]
            required=bool(data.get("required", True)),
            categories=None if categories is None else tuple(str(c) for c in categories),
        )


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A tensor's element type and shape; -1 marks a dimension of any size (the batch)."""

    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        column_type_for_dtype(self.dtype)
        shape = tuple(int(size) for size in self.shape)
        if not shape or any(size < -1 or size == 0 for size in shape):
            raise InvalidInput(
                f"tensor shape {list(self.shape)} is invalid; give positive sizes, "
                "with -1 for a dimension of any size, as in [-1, 4]"
            )
        object.__setattr__(self, "shape", shape)

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        _check_mapping(data, "a tensor spec")
        return cls(dtype=str(data.get("dtype")), shape=tuple(data.get("shape") or ()))


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and returns.

    Tabular models have named ``inputs``; a model fed a 2-D array has ``input_tensor``
    too, with columns named "0".."n-1" describing its last dimension.
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    input_tensor: TensorSpec | None = None
    output_tensor: TensorSpec | None = None
    _converters: dict[str, Converter] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        for label in ("inputs", "outputs"):
            columns = tuple(getattr(self, label))
            object.__setattr__(self, label, columns)
            names = [column.name for column in columns]
            duplicates = sorted({name for name in names if names.count(name) > 1})
            if duplicates:
                raise InvalidInput(f"signature {label} name {duplicates} more than once")
        if not self.inputs and self.input_tensor is None:
            raise InvalidInput("a signature needs input columns or an input tensor")

    @property
    def input_names(self) -> list[str]:
        return [column.name for column in self.inputs]

    @property
    def is_numeric(self) -> bool:
        """Whether every input converts to a float (so ``convert(as_numpy=True)`` works)."""
        return bool(self.inputs) and all(c.type in NUMERIC_TYPES for c in self.inputs)

    def converter(self, unknown_category: str = "error") -> Converter:
        """The input converter compiled from this signature (cached per policy)."""
        cached = self._converters.get(unknown_category)
        if cached is None:
            from mlops.models._converter import Converter

            cached = Converter(self, unknown_category=unknown_category)
            self._converters[unknown_category] = cached
        return cached

    def is_compatible_with(self, older: Signature) -> bool:
        """Whether every caller of a model with ``older`` can call one with this signature.

        Compatible: the same input names and types, optional columns added, required
        columns made optional, categories added. Incompatible: an input removed, renamed
        or retyped, a new required input, a category removed, a changed tensor, an
        output removed or retyped.
        """
        if (self.input_tensor is None) != (older.input_tensor is None):
            return False
        if self.input_tensor is not None and older.input_tensor is not None:
            if self.input_tensor.dtype != older.input_tensor.dtype:
                return False
            if self.input_tensor.shape[1:] != older.input_tensor.shape[1:]:
                return False
        new_inputs = {column.name: column for column in self.inputs}
        old_names = set()
        for old in older.inputs:
            old_names.add(old.name)
            new = new_inputs.get(old.name)
            if new is None or new.type != old.type:
                return False
            if new.required and not old.required:
                return False
            if new.categories is not None and (
                old.categories is None or not set(old.categories) <= set(new.categories)
            ):
                return False
        if any(c.required for name, c in new_inputs.items() if name not in old_names):
            return False
        new_outputs = {column.name: column.type for column in self.outputs}
        return all(new_outputs.get(old.name) == old.type for old in older.outputs)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "inputs": [column.to_dict() for column in self.inputs],
            "outputs": [column.to_dict() for column in self.outputs],
        }
        if self.input_tensor is not None:
            data["input_tensor"] = self.input_tensor.to_dict()
        if self.output_tensor is not None:
            data["output_tensor"] = self.output_tensor.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        _check_mapping(data, "a signature")
        tensors = {
            key: TensorSpec.from_dict(data[key]) if data.get(key) is not None else None
            for key in ("input_tensor", "output_tensor")
        }
        return cls(
            inputs=_columns(data.get("inputs")),
            outputs=_columns(data.get("outputs")),
            input_tensor=tensors["input_tensor"],
            output_tensor=tensors["output_tensor"],
        )


def _columns(items: Any) -> tuple[ColumnSpec, ...]:
    if items is None:
        return ()
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise InvalidInput(f"signature columns must be a list, not {type(items).__name__}")
    return tuple(ColumnSpec.from_dict(item) for item in items)


def _check_mapping(data: Any, what: str) -> None:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{what} must be a JSON object, not {type(data).__name__}")
