"""``@step``: a plain Python function with a name, caching rules and resource needs."""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from mlops.errors import InvalidInput

__all__ = ["Resources", "Step", "parse_duration", "parse_memory", "step"]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?\s*$")
_MEMORY_UNITS = {
    None: 1,
    "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Resources:
    """What one step needs: CPUs (fractions allowed), memory in bytes, GPUs."""

    cpu: float = 1.0
    memory: int | None = None
    gpu: int = 0


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """A function made a pipeline step by ``@step``; calling it calls the function.

    Its inputs are the function's parameters; its output is the return value, or, with
    ``outputs=("a", "b")``, a dict with exactly those keys that later steps may take
    one by one.
    """

    fn: Callable[..., Any]
    name: str
    outputs: tuple[str, ...] = ()
    cache: bool = True
    cache_expiry: float | None = None
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout: float | None = None
    #: Reads the world outside its inputs (files, databases, clocks): never reused.
    volatile: bool = False
    #: SHA-256 of the function's source when decorated (of its qualified name without one).
    code_hash: str = ""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.name}>"

    @property
    def inputs(self) -> tuple[str, ...]:
        """The names of the function's parameters, in order."""
        return tuple(inspect.signature(self.fn).parameters)

    @property
    def defaults(self) -> Mapping[str, Any]:
        """The parameters that have a default value, with it."""
        return {
            name: parameter.default
            for name, parameter in inspect.signature(self.fn).parameters.items()
            if parameter.default is not inspect.Parameter.empty
        }


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    cache: bool = True,
    cache_expiry: float | str | None = None,
    cpu: float = 1,
    memory: str | int | None = None,
    gpu: int = 0,
    retries: int = 0,
    timeout: float | str | None = None,
    volatile: bool = False,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    cache: bool = True,
    cache_expiry: float | str | None = None,
    cpu: float = 1,
    memory: str | int | None = None,
    gpu: int = 0,
    retries: int = 0,
    timeout: float | str | None = None,
    volatile: bool = False,
) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step; use as ``@step`` or ``@step(name=..., cpu=2)``.

    Args:
        name: the step's name (default: the function's name); later steps take its
            output by naming a parameter after it.
        outputs: names of several outputs; the function then returns a dict with
            exactly these keys, and a later step may take one by naming a parameter
            after it.
        cache: reuse the output of an earlier run whose code, params and inputs match.
        cache_expiry: how long a cached output stays valid: seconds or "30m", "12h", "1d".
        cpu, memory, gpu: what the step needs; memory as bytes or "512Mi", "2Gi".
        retries: how many times to re-run the step after it fails.
        timeout: seconds (or "5m") after which the step counts as timed out.
        volatile: the output depends on more than the inputs (it reads files, a
            database, the clock): the step always runs, neither reused from the cache
            (implies ``cache=False``) nor from the run ``resume_from`` resumes.
    """
    volatile = _check_bool("volatile", volatile)
    options = _Options(
        name=name,
        outputs=_check_outputs(outputs),
        cache=_check_bool("cache", cache) and not volatile,
        cache_expiry=None if cache_expiry is None else parse_duration("cache_expiry", cache_expiry),
        resources=Resources(
            cpu=_check_cpu(cpu), memory=parse_memory(memory), gpu=_check_count("gpu", gpu)
        ),
        retries=_check_count("retries", retries),
        timeout=None if timeout is None else parse_duration("timeout", timeout),
        volatile=volatile,
    )
    if fn is None:
        return functools.partial(_make_step, options=options)
    return _make_step(fn, options=options)


@dataclass(frozen=True, slots=True)
class _Options:
    name: str | None
    outputs: tuple[str, ...]
    cache: bool
    cache_expiry: float | None
    resources: Resources
    retries: int
    timeout: float | None
    volatile: bool


def _make_step(fn: Callable[..., Any], *, options: _Options) -> Step:
    if isinstance(fn, Step):
        raise InvalidInput(f"step {fn.name!r} is already a step; apply @step once")
    if not callable(fn):
        raise InvalidInput(f"@step decorates a function, got {type(fn).__name__}")
    name = options.name if options.name is not None else getattr(fn, "__name__", "")
    _check_identifier("step name", name)
    for parameter in inspect.signature(fn).parameters.values():
        if parameter.kind not in (
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            inspect.Parameter.KEYWORD_ONLY,
        ):
            raise InvalidInput(
                f"step {name!r} has the parameter {parameter} ({parameter.kind.description}); "
                "a step's inputs are passed by name, so give it named parameters only"
            )
    if name in options.outputs:
        raise InvalidInput(
            f"step {name!r} names an output after itself; the whole output already goes "
            "by the step's name, so rename the output"
        )
    return Step(
        fn=fn,
        name=name,
        outputs=options.outputs,
        cache=options.cache,
        cache_expiry=options.cache_expiry,
        resources=options.resources,
        retries=options.retries,
        timeout=options.timeout,
        volatile=options.volatile,
        code_hash=_code_hash(fn),
    )


def parse_duration(what: str, value: float | str) -> float:
    """Seconds from a number or a string such as "90", "30m", "12h", "1d", "2w"."""
    seconds: float
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise InvalidInput(
                f"{what} {value!r} is not a duration; give seconds or a number with "
                "s, m, h, d or w, such as '30m' or '1d'"
            )
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2) or "s"]
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise InvalidInput(f"{what} must be seconds or a string such as '1d', got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput(f"{what} must be a positive duration, got {value!r}")
    return seconds


def parse_memory(value: str | int | None) -> int | None:
    """Bytes from an int or a string such as "512Mi", "2Gi", "1G"; None stays None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _MEMORY.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise InvalidInput(
            f"memory {value!r} is not an amount of memory; give bytes or a number with "
            "Ki, Mi, Gi, Ti (or K, M, G, T), such as '512Mi' or '2Gi'"
        )
    return math.ceil(float(match.group(1)) * _MEMORY_UNITS[match.group(2)])


def _check_outputs(outputs: Sequence[str] | None) -> tuple[str, ...]:
    if outputs is None:
        return ()
    if isinstance(outputs, str) or not isinstance(outputs, Sequence):
        raise InvalidInput(
            f"outputs must be a list of names such as ['train', 'test'], got {outputs!r}"
        )
    for name in outputs:
        _check_identifier("output name", name)
    if len(set(outputs)) != len(outputs):
        raise InvalidInput(f"outputs {list(outputs)} repeat a name; give each output once")
    return tuple(outputs)


def _check_identifier(what: str, name: object) -> None:
    if not isinstance(name, str) or _NAME.match(name) is None:
        raise InvalidInput(
            f"{what} {name!r} is not a Python identifier; later steps take it by naming "
            "a parameter after it, so use letters, digits and '_'"
        )


def _check_bool(what: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be True or False, got {value!r}")
    return value


def _check_cpu(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"cpu must be a number of CPUs such as 1 or 0.5, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(f"cpu must be more than 0, got {value!r}")
    return float(value)


def _check_count(what: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidInput(f"{what} must be a whole number of 0 or more, got {value!r}")
    return value


def _code_hash(fn: Callable[..., Any]) -> str:
    try:
        code = inspect.getsource(fn)
    except (OSError, TypeError):  # defined in a REPL or `python -c`: no source on file
        code = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    return hashlib.sha256(code.encode()).hexdigest()
