"""The torch flavor: a ``torch.nn.Module`` saved as TorchScript, run on the CPU."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlops.errors import InvalidInput
from mlops.models._flavor import SaveContext
from mlops.models._json import require
from mlops.models._manifest import ModelManifest, package_file

__all__ = ["TorchFlavor"]


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # TorchScript is deprecated upstream in favour of torch.export, yet it is the format
    # that loads without the model's source code; keep its warnings out of users' logs.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit", category=DeprecationWarning)
        yield


class TorchFlavor:
    """Scripted with ``torch.jit.script``, else traced on the input example; no pickle."""

    name = "torch"
    extra = "torch"
    requires = ("torch",)
    _FILE = "model.pt"

    def can_handle(self, obj: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(obj, torch.nn.Module)

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        torch = require("torch", self.extra, "Saving a torch model")
        with _quiet_jit():
            if isinstance(obj, torch.jit.ScriptModule):
                compiled, method = obj, "script"
            else:
                compiled, method = self._compile(torch, obj, context.model_input)
            torch.jit.save(compiled, str(folder / self._FILE))
        context.options.update(
            method=method, model_file=self._FILE, torch_version=torch.__version__
        )
        return [self._FILE]

    def _compile(self, torch: Any, module: Any, model_input: Any) -> tuple[Any, str]:
        try:
            return torch.jit.script(module), "script"
        except Exception as error:
            if model_input is None:
                raise InvalidInput(
                    f"torch.jit.script cannot compile this module ({error}); give "
                    "input_example= so that it can be traced instead"
                ) from error
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                return torch.jit.trace(module, _to_tensor(torch, model_input)), "trace"
        finally:
            module.train(was_training)

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        torch = require("torch", self.extra, "Loading a torch model")
        path = package_file(folder, manifest, manifest.flavor_options.get("model_file", self._FILE))
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu")
        module.eval()
        return module

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        torch = require("torch", self.extra, "Predicting with a torch model")
        with torch.inference_mode():
            output = native(_to_tensor(torch, inputs))
        if isinstance(output, (tuple, list)):
            output = output[0]
        return {"predictions": np.asarray(output.detach().cpu().numpy())}

    def libraries(self) -> list[str]:
        return ["torch"]


def _to_tensor(torch: Any, inputs: Any) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs
    if hasattr(inputs, "to_numpy"):
        inputs = inputs.to_numpy()
    return torch.from_numpy(np.ascontiguousarray(inputs))
