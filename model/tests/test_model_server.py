"""The HTTP surface, through Flask's test client: probes, predict, validation, metrics."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from model_server.app import create_app
from model_server.classifier import TrainingResult
from PIL import Image
from werkzeug.test import TestResponse


@pytest.fixture(scope="module")
def client(model_file: Path) -> FlaskClient:
    return create_app(model_path=model_file).test_client()


def json_of(response: TestResponse) -> Any:
    """The response's JSON body (a failure when it has none)."""
    data = response.get_json(silent=True)
    assert data is not None, response.get_data(as_text=True)
    return data


def _png(pixels: np.ndarray, size: int = 32) -> str:
    """A dataset image drawn as dark ink on white, scaled up like a scan."""
    grey = (255 - np.rint(pixels.reshape(8, 8) * 255 / 16)).astype(np.uint8)
    img = Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _metric(client: FlaskClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(p in line for p in want.split(",")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_liveness_and_readiness_when_the_model_is_loaded(
    client: FlaskClient, trained: TrainingResult
) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert json_of(ready) == {"status": "ready", "model_version": trained.model.version}


def test_not_ready_but_alive_without_a_model(tmp_path: Path) -> None:
    client = create_app(model_path=tmp_path / "missing.npz").test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "missing.npz not found" in json_of(ready)["reason"]
    refused = client.post("/predict", json={"pixels": [0] * 64})
    assert refused.status_code == 503


def test_predict_classifies_heldout_digits_from_pixels(client: FlaskClient, digits: Any) -> None:
    # The last 20 images of the dataset; the model must get nearly all right.
    right = 0
    for image, label in zip(digits.data[-20:], digits.target[-20:], strict=True):
        res = client.post("/predict", json={"pixels": image.tolist()})
        assert res.status_code == 200
        data = json_of(res)
        assert len(data["probabilities"]) == 10
        assert abs(sum(data["probabilities"]) - 1) < 1e-4
        assert data["confidence"] == max(data["probabilities"])
        right += data["digit"] == int(label)
    assert right >= 18


def test_predict_accepts_rows_and_batches(client: FlaskClient, digits: Any) -> None:
    rows = digits.images[5].tolist()
    one = json_of(client.post("/predict", json={"pixels": rows}))
    batch = json_of(client.post("/predict", json={"instances": [digits.data[5].tolist()] * 3}))
    assert [p["digit"] for p in batch["predictions"]] == [one["digit"]] * 3


def test_predict_accepts_a_png_scan(client: FlaskClient, digits: Any) -> None:
    for i in (0, 7, 42, 1000):
        from_pixels = json_of(client.post("/predict", json={"pixels": digits.data[i].tolist()}))
        from_png = json_of(client.post("/predict", json={"image_png": _png(digits.data[i])}))
        assert from_png["digit"] == from_pixels["digit"] == int(digits.target[i])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"pixels": [0] * 63}, "must be 64 numbers"),
        ({"pixels": [0] * 63 + [17]}, "outside 0..16"),
        ({"pixels": [0] * 63 + ["1"]}, "must be a number"),
        ({"pixels": [0] * 63 + [True]}, "must be a number"),
        ({"pixels": [[0] * 8] * 7 + [[0] * 7]}, "8 rows of 8"),
        ({"instances": []}, "non-empty list"),
        ({"instances": [[0] * 64] * 257}, "at most 256"),
        ({"image_png": "%%%"}, "not valid base64"),
        ({"image_png": base64.b64encode(b"GIF89a....").decode()}, "not a PNG"),
        ({"pixels": [0] * 64, "image_png": "x"}, "exactly one of"),
        ([1, 2, 3], "JSON object"),
    ],
)
def test_predict_rejects_bad_input_with_a_clear_422(
    client: FlaskClient, body: Any, message: str
) -> None:
    res = client.post("/predict", json=body)
    assert res.status_code == 422
    assert message in json_of(res)["error"]


def test_batch_limit_comes_from_max_batch_size(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_BATCH_SIZE", "4")
    client = create_app(model_path=model_file).test_client()
    assert client.post("/predict", json={"instances": [[0] * 64] * 4}).status_code == 200
    res = client.post("/predict", json={"instances": [[0] * 64] * 5})
    assert res.status_code == 422
    assert "at most 4 per request" in json_of(res)["error"]


def test_bad_max_batch_size_is_logged_and_the_default_used(
    model_file: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("MAX_BATCH_SIZE", "lots")
    client = create_app(model_path=model_file).test_client()
    assert "MAX_BATCH_SIZE='lots' is not a positive integer; using 256" in caplog.text
    assert client.post("/predict", json={"instances": [[0] * 64] * 256}).status_code == 200


def test_model_file_is_chosen_by_model_name(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_server import app as app_module

    monkeypatch.delenv("MODEL_PATH", raising=False)
    monkeypatch.setattr(app_module, "MODEL_DIR", model_file.parent)
    monkeypatch.setenv("MODEL_NAME", "digits")
    assert create_app().test_client().get("/readyz").status_code == 200
    monkeypatch.setenv("MODEL_NAME", "faces")
    ready = create_app().test_client().get("/readyz")
    assert ready.status_code == 503
    assert "faces.npz not found" in json_of(ready)["reason"]


def test_predict_rejects_oversized_png(client: FlaskClient) -> None:
    img = Image.new("L", (2000, 10), 255)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    res = client.post("/predict", json={"image_png": base64.b64encode(buf.getvalue()).decode()})
    assert res.status_code == 422
    assert "at most 1024x1024" in json_of(res)["error"]


def test_predict_protocol_errors(client: FlaskClient) -> None:
    assert client.post("/predict", data="pixels", content_type="text/plain").status_code == 415
    bad_json = client.post("/predict", data="{not json", content_type="application/json")
    assert bad_json.status_code == 400
    too_big = client.post(
        "/predict", data=b"x" * (1024 * 1024 + 1), content_type="application/json"
    )
    assert too_big.status_code == 413
    wrong_method = client.get("/predict")
    assert wrong_method.status_code == 405
    assert "error" in json_of(wrong_method)


def test_metrics_count_requests_and_time_them(model_file: Path) -> None:
    client = create_app(model_path=model_file).test_client()
    for _ in range(3):
        client.post("/predict", json={"pixels": [0] * 64})
    client.post("/predict", json={"pixels": []})
    client.get("/no/such/path")
    ok = {"endpoint": "/predict", "method": "POST", "status": "200"}
    assert _metric(client, "model_http_requests_total", **ok) == 3
    assert _metric(client, "model_http_requests_total", endpoint="/predict", status="422") == 1
    assert _metric(client, "model_http_requests_total", endpoint="unmatched", status="404") == 1
    assert _metric(client, "model_http_request_duration_seconds_count", endpoint="/predict") == 4
    assert _metric(client, "model_http_request_duration_seconds_bucket", le="+Inf") >= 4
    assert _metric(client, "model_info") == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "# TYPE model_http_request_duration_seconds histogram" in text
