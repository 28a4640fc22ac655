"""The xgboost and lightgbm flavors: boosters in their native formats, no pickle.

Both accept a raw Booster or the scikit-learn wrappers (XGBClassifier, LGBMClassifier…).
xgboost's JSON keeps the wrapper's attributes, so the wrapper class is rebuilt as is.
LightGBM's text format holds the booster only: a wrapper loads as a small classifier or
regressor over the booster (``.booster``) with the recorded ``classes_``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

from mlops.errors import IntegrityError
from mlops.models._flavor import SaveContext
from mlops.models._json import jsonable, require
from mlops.models._manifest import ModelManifest, package_file
from mlops.models._sklearn import predict_estimator

__all__ = ["LightGBMClassifierModel", "LightGBMFlavor", "LightGBMRegressorModel", "XGBoostFlavor"]

_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
_LGB_CLASSES = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")


def _wrapper_class(obj: Any, allowed: tuple[str, ...]) -> str:
    for klass in type(obj).__mro__:
        if klass.__name__ in allowed:
            return klass.__name__
    return "Booster"


class XGBoostFlavor:
    """xgboost Booster or scikit-learn wrapper, saved with ``save_model`` as JSON."""

    name = "xgboost"
    extra = "xgboost"
    requires = ("xgboost",)
    _FILE = "model.json"

    def can_handle(self, obj: Any) -> bool:
        xgb = sys.modules.get("xgboost")
        return xgb is not None and isinstance(obj, (xgb.Booster, xgb.XGBModel))

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        xgb = require("xgboost", self.extra, "Saving an xgboost model")
        model_class = _wrapper_class(obj, _XGB_CLASSES)
        obj.save_model(str(folder / self._FILE))
        context.options.update(
            model_class=model_class, model_file=self._FILE, xgboost_version=xgb.__version__
        )
        return [self._FILE]

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        xgb = require("xgboost", self.extra, "Loading an xgboost model")
        options = manifest.flavor_options
        path = package_file(folder, manifest, options.get("model_file", self._FILE))
        model_class = options.get("model_class", "Booster")
        if model_class not in (*_XGB_CLASSES, "Booster"):
            raise IntegrityError(f"model package {folder} names the unknown class {model_class!r}")
        model = getattr(xgb, model_class)()
        model.load_model(str(path))
        return model

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        xgb = require("xgboost", self.extra, "Predicting with an xgboost model")
        if isinstance(native, xgb.Booster):
            return {"predictions": np.asarray(native.predict(xgb.DMatrix(inputs)))}
        return predict_estimator(native, inputs)

    def libraries(self) -> list[str]:
        return ["xgboost", "scikit-learn", "scipy"]


class LightGBMRegressorModel:
    """A LightGBM booster behind ``predict``, as loaded from a regressor or ranker."""

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    def predict(self, inputs: Any) -> Any:
        return self.booster.predict(inputs)


class LightGBMClassifierModel(LightGBMRegressorModel):
    """A LightGBM booster with ``classes_``, ``predict`` and ``predict_proba``."""

    def __init__(self, booster: Any, classes: list[Any]) -> None:
        super().__init__(booster)
        self.classes_ = np.asarray(classes)

    def predict_proba(self, inputs: Any) -> Any:
        raw = np.asarray(self.booster.predict(inputs))
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, inputs: Any) -> Any:
        return self.classes_[np.argmax(self.predict_proba(inputs), axis=1)]


class LightGBMFlavor:
    """lightgbm Booster or scikit-learn wrapper, saved as the booster's text model."""

    name = "lightgbm"
    extra = "lightgbm"
    requires = ("lightgbm",)
    _FILE = "model.txt"

    def can_handle(self, obj: Any) -> bool:
        lgb = sys.modules.get("lightgbm")
        return lgb is not None and isinstance(obj, (lgb.Booster, lgb.LGBMModel))

    def save(self, obj: Any, folder: Path, context: SaveContext) -> list[str]:
        lgb = require("lightgbm", self.extra, "Saving a lightgbm model")
        model_class = _wrapper_class(obj, _LGB_CLASSES)
        booster = obj if isinstance(obj, lgb.Booster) else obj.booster_
        booster.save_model(str(folder / self._FILE))
        context.options.update(
            model_class=model_class, model_file=self._FILE, lightgbm_version=lgb.__version__
        )
        if hasattr(obj, "classes_"):
            context.options["classes"] = jsonable(np.asarray(obj.classes_))
        return [self._FILE]

    def load(self, folder: Path, manifest: ModelManifest) -> Any:
        lgb = require("lightgbm", self.extra, "Loading a lightgbm model")
        options = manifest.flavor_options
        path = package_file(folder, manifest, options.get("model_file", self._FILE))
        booster = lgb.Booster(model_file=str(path))
        model_class = options.get("model_class", "Booster")
        if model_class == "Booster":
            return booster
        if "classes" in options:
            return LightGBMClassifierModel(booster, list(options["classes"]))
        return LightGBMRegressorModel(booster)

    def predict(self, native: Any, inputs: Any) -> dict[str, Any]:
        if isinstance(native, LightGBMRegressorModel):
            return predict_estimator(native, inputs)
        return {"predictions": np.asarray(native.predict(inputs))}

    def libraries(self) -> list[str]:
        return ["lightgbm", "scikit-learn", "scipy"]
