"""Native, MLflow and Open Inference v2 requests over real HTTP give the model's answers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mlops
from serving.conftest import (
    FEATURES,
    category_frame,
    fit_category,
    log_rows,
    numeric_frame,
    register,
    single,
    wait_for,
)
from serving.models import MARKER, FailsOnMarker


@pytest.fixture
def churn(ml: mlops.MLOps, numeric_model: Any, serve: Any) -> Any:
    """Endpoint "churn": a numeric LogisticRegression; "plans": a string category pipeline."""
    register(ml, "churn", numeric_model, numeric_frame().head(5))
    single(ml, "churn")
    frame = category_frame()
    register(ml, "plans", fit_category(), frame.head(5), reference_data=frame)
    single(ml, "plans")
    return serve(ml)


def _payloads(frame: Any) -> dict[str, tuple[str, Any]]:
    records = frame.to_dict("records")
    rows = frame[FEATURES].to_numpy().tolist()
    columns = {name: frame[name].tolist() for name in FEATURES}
    native = "/v1/endpoints/churn/predict"
    mlflow = "/v1/endpoints/churn/invocations"
    return {
        "records": (native, records),
        "split-rows": (native, {"columns": FEATURES, "rows": rows}),
        "split-data": (native, {"columns": FEATURES, "data": rows}),
        "instances": (native, {"instances": records}),
        "instances-positional": (native, {"instances": rows}),
        "inputs-columns": (native, {"inputs": columns}),
        "mlflow-split": (mlflow, {"dataframe_split": {"columns": FEATURES, "data": rows}}),
        "mlflow-records": (mlflow, {"dataframe_records": records}),
        "mlflow-instances": (mlflow, {"instances": records}),
        "mlflow-inputs": (mlflow, {"inputs": columns}),
    }


def test_every_payload_shape_gives_the_models_predictions(churn: Any, numeric_model: Any) -> None:
    frame = numeric_frame(rows=7, seed=5)
    expected = numeric_model.predict(frame).tolist()
    probabilities = numeric_model.predict_proba(frame)
    with churn.client() as client:
        for shape, (path, body) in _payloads(frame).items():
            response = client.post(path, json=body)
            assert response.status_code == 200, (shape, response.text)
            answer = response.json()
            assert answer["predictions"] == expected, shape
            assert response.headers["x-mlops-version"] == "1"
            if path.endswith("/predict"):
                assert np.allclose(answer["probabilities"], probabilities), shape
                assert answer["version"] == 1
                assert answer["route"] == "stable"
                assert answer["request_id"] == response.headers["x-request-id"]
            else:
                assert set(answer) == {"predictions"}, shape
        one = frame.head(1).to_dict("records")[0]
        single_record = client.post("/v1/endpoints/churn/predict", json=one).json()
        assert single_record["predictions"] == expected[:1]


def test_open_inference_v2_infer(churn: Any, numeric_model: Any) -> None:
    frame = numeric_frame(rows=4, seed=8)
    expected = numeric_model.predict(frame).tolist()
    tensor = {
        "name": "input-0",
        "shape": [4, 3],
        "datatype": "FP64",
        "data": frame[FEATURES].to_numpy().ravel().tolist(),
    }
    named = [
        {"name": name, "shape": [4], "datatype": "FP64", "data": frame[name].tolist()}
        for name in FEATURES
    ]
    with churn.client() as client:
        for path in ("/v2/models/churn/infer", "/v2/models/churn/versions/1/infer"):
            for inputs in ([tensor], named):
                response = client.post(path, json={"id": "req-7", "inputs": inputs})
                assert response.status_code == 200, response.text
                answer = response.json()
                assert answer["model_name"] == "churn"
                assert answer["model_version"] == "1"
                assert answer["id"] == "req-7"
                predict, proba = answer["outputs"]
                assert predict == {
                    "name": "predict",
                    "shape": [4],
                    "datatype": "INT64",
                    "data": expected,
                }
                assert proba["name"] == "predict_proba"
                assert proba["shape"] == [4, 2]
                assert np.allclose(
                    np.reshape(proba["data"], (4, 2)), numeric_model.predict_proba(frame)
                )
        wrong = client.post("/v2/models/churn/versions/9/infer", json={"inputs": [tensor]})
        assert wrong.status_code == 404
        assert "serves versions 1" in wrong.json()["error"]
        bad = dict(tensor, datatype="COMPLEX")
        refused = client.post("/v2/models/churn/infer", json={"inputs": [bad]})
        assert refused.status_code == 422
        assert "COMPLEX" in refused.json()["error"]


def test_open_inference_v2_metadata_and_health(churn: Any) -> None:
    with churn.client() as client:
        assert client.get("/v2/health/live").json() == {"live": True}
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert client.get("/v2").json()["name"] == "mlops"
        metadata = client.get("/v2/models/churn").json()
        assert metadata["name"] == "churn"
        assert metadata["versions"] == ["1"]
        assert metadata["platform"] == "mlops"
        assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
            (name, "FP64") for name in FEATURES
        ]
        assert metadata["outputs"]
        assert client.get("/v2/models/churn/versions/1").json()["versions"] == ["1"]
        assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
        assert client.get("/v2/models/churn/versions/1/ready").status_code == 200
        assert client.get("/v2/models/churn/versions/2/ready").status_code == 404
        assert client.get("/v2/models/nope").status_code == 404
        plans = client.get("/v2/models/plans").json()
        assert {i["name"]: i["datatype"] for i in plans["inputs"]} == {
            "age": "FP64",
            "plan": "BYTES",
        }


def test_a_string_category_column_on_every_protocol(churn: Any) -> None:
    frame = category_frame().head(6)
    expected = fit_category().predict(frame).tolist()
    named = [
        {"name": "age", "shape": [6], "datatype": "FP64", "data": frame["age"].tolist()},
        {"name": "plan", "shape": [6], "datatype": "BYTES", "data": frame["plan"].tolist()},
    ]
    with churn.client() as client:
        native = client.post("/v1/endpoints/plans/predict", json=frame.to_dict("records"))
        assert native.json()["predictions"] == expected
        split = {"dataframe_split": frame.to_dict("split")}
        assert client.post("/v1/endpoints/plans/invocations", json=split).json() == {
            "predictions": expected
        }
        v2 = client.post("/v2/models/plans/infer", json={"inputs": named}).json()
        assert v2["outputs"][0]["data"] == expected
        unknown = client.post(
            "/v1/endpoints/plans/predict", json=[{"age": 40.0, "plan": "platinum"}]
        )
        assert unknown.status_code == 422
        assert "'plan'" in unknown.json()["error"]


def test_bad_input_is_422_naming_the_column(churn: Any, ml: mlops.MLOps) -> None:
    with churn.client() as client:
        response = client.post(
            "/v1/endpoints/churn/predict",
            json=[{"tenure": 3.0, "charges": "lots", "calls": 1.0}],
            headers={"x-request-id": "bad-1"},
        )
        assert response.status_code == 422
        body = response.json()
        assert "'charges'" in body["error"]
        assert body["request_id"] == "bad-1"
        missing = client.post("/v1/endpoints/churn/predict", json=[{"tenure": 3.0}])
        assert missing.status_code == 422
        assert "'charges'" in missing.json()["error"]
        not_json = client.post("/v1/endpoints/churn/predict", content=b"{nope")
        assert not_json.status_code == 400
        not_mlflow = client.post("/v1/endpoints/churn/invocations", json={"rows": []})
        assert not_mlflow.status_code == 400
        assert "dataframe_split" in not_mlflow.json()["error"]
    churn.stop()
    (row,) = log_rows(ml, request_id="bad-1")
    assert row.status == 422
    assert "'charges'" in row.error


def test_unknown_endpoint_is_404_listing_the_known_ones(churn: Any) -> None:
    with churn.client() as client:
        response = client.post("/v1/endpoints/nope/predict", json=[{"tenure": 1.0}])
    assert response.status_code == 404
    message = response.json()["error"]
    assert "'nope'" in message
    assert "churn" in message
    assert "plans" in message


def test_an_oversize_body_is_413(ml: mlops.MLOps, numeric_model: Any, serve: Any) -> None:
    register(ml, "churn", numeric_model, numeric_frame().head(5))
    single(ml, "churn")
    server = serve(ml, max_body_bytes=2048)
    records = numeric_frame(rows=60).to_dict("records")  # about 4 KB of JSON
    with server.client() as client:
        declared = client.post("/v1/endpoints/churn/predict", json=records)
        assert declared.status_code == 413
        assert "2048" in declared.json()["error"]

        def chunks() -> Any:  # no Content-Length: refused while reading
            import json

            text = json.dumps(records).encode()
            for start in range(0, len(text), 512):
                yield text[start : start + 512]

        streamed = client.post("/v1/endpoints/churn/predict", content=chunks())
        assert streamed.status_code == 413
        small = client.post("/v1/endpoints/churn/predict", json=records[:3])
        assert small.status_code == 200


def test_a_failing_model_is_500_and_logged(ml: mlops.MLOps, serve: Any) -> None:
    register(ml, "fragile", FailsOnMarker(), numeric_frame().head(3))
    single(ml, "fragile")
    server = serve(ml)

    def row(tenure: float) -> list[dict[str, float]]:
        return [{"tenure": tenure, "charges": 50.0, "calls": 1.0}]

    with server.client() as client:
        fine = client.post("/v1/endpoints/fragile/predict", json=row(2.0))
        assert fine.json()["predictions"] == [4.0]
        failed = client.post(
            "/v1/endpoints/fragile/predict",
            json=row(MARKER),
            headers={"x-request-id": "boom-1"},
        )
        assert failed.status_code == 500
        body = failed.json()
        assert body["request_id"] == "boom-1"
        assert failed.headers["x-request-id"] == "boom-1"
        assert "marker value" in body["error"]
        assert "Traceback" not in failed.text
        again = client.post("/v1/endpoints/fragile/predict", json=row(5.0))
        assert again.json()["predictions"] == [10.0]
        metrics = client.get("/metrics").text
        assert 'endpoint="fragile",route="stable",status="500",version="1"} 1.0' in metrics
    server.state.writer.flush()
    wait_for(lambda: log_rows(ml, request_id="boom-1"), what="the failed request's record")
    (row,) = log_rows(ml, request_id="boom-1")
    assert row.status == 500
    assert "marker value" in row.error
    assert row.version == 1
    assert row.route == "stable"
