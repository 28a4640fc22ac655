"""Record the software a model was saved with: Python, platform, library versions."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from mlops.models._flavor import Flavor, get_flavor

__all__ = ["capture_environment"]

_ALWAYS = ("numpy", "pandas", "mlops")


def capture_environment(flavor: str | Flavor) -> dict[str, Any]:
    """Python version, platform and ``name==version`` of the flavor's installed libraries.

    Reads installed distributions' metadata only (milliseconds, no ``pip freeze``);
    libraries that are not installed are left out.
    """
    chosen = get_flavor(flavor)
    requirements = {}
    for name in [*chosen.libraries(), *_ALWAYS]:
        try:
            requirements[name.lower()] = f"{name}=={metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "requirements": sorted(requirements.values(), key=str.lower),
    }
