"""Model packages: save a model with its signature, environment and digests; load it back.

from mlops.models import save_model, load_model
save_model(pipeline, "churn-model", input_example=frame.head(5), reference_data=frame)
model = load_model("churn-model")          # verifies every file's SHA-256 first
model.predict([{"age": 42, "plan": "pro"}])  # validated against the signature
"""

from mlops.models._converter import UNKNOWN_CATEGORY_POLICIES, Converter
from mlops.models._environment import capture_environment
from mlops.models._flavor import (
    Flavor,
    SaveContext,
    check_flavor,
    flavor_for,
    flavor_names,
    get_flavor,
)
from mlops.models._infer import infer_signature
from mlops.models._manifest import (
    FORMAT_VERSION,
    INPUT_EXAMPLE_FILE,
    MANIFEST_FILE,
    REFERENCE_PROFILE_FILE,
    SIGNATURE_FILE,
    ModelManifest,
    verify_package,
)
from mlops.models._mlflow import import_mlflow_model
from mlops.models._package import LoadedModel, load_model, save_model
from mlops.models._profile import build_reference_profile
from mlops.models._python import ModelContext, PythonModel
from mlops.models._signature import COLUMN_TYPES, ColumnSpec, Signature, TensorSpec

__all__ = [
    "COLUMN_TYPES",
    "FORMAT_VERSION",
    "INPUT_EXAMPLE_FILE",
    "MANIFEST_FILE",
    "REFERENCE_PROFILE_FILE",
    "SIGNATURE_FILE",
    "UNKNOWN_CATEGORY_POLICIES",
    "ColumnSpec",
    "Converter",
    "Flavor",
    "LoadedModel",
    "ModelContext",
    "ModelManifest",
    "PythonModel",
    "SaveContext",
    "Signature",
    "TensorSpec",
    "build_reference_profile",
    "capture_environment",
    "check_flavor",
    "flavor_for",
    "flavor_names",
    "get_flavor",
    "import_mlflow_model",
    "infer_signature",
    "load_model",
    "save_model",
    "verify_package",
]
