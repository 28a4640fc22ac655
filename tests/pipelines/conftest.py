"""Pipeline fixtures: one local Ray instance for the whole test session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A 2-CPU local Ray instance, started once (it takes seconds) and shut down at the end."""
    import ray

    if ray.is_initialized():  # another fixture of this session started one: share it
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()
