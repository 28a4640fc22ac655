"""The serving floor: bare Starlette + NumPy + predict, no validation, logging or routing.

Run by bench/serving.py as ``python bench/_floor_app.py MODEL_PICKLE PORT``.
"""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def main() -> None:
    with open(sys.argv[1], "rb") as handle:
        model = pickle.load(handle)

    async def predict(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        row = np.asarray([body["features"]], dtype=np.float64)
        return JSONResponse({"predictions": model.predict(row).tolist()})

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")


if __name__ == "__main__":
    main()
