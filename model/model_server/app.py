"""The model server: Flask app with liveness, readiness, prediction and metrics.

Endpoints (port 8080 under gunicorn, see gunicorn.conf.py):

- ``GET /healthz``: liveness; 200 while the process serves requests.
- ``GET /readyz``: readiness; 200 once the model is loaded, else 503 with the reason.
- ``POST /predict``: JSON in, JSON out (see model_server.inputs for the body).
- ``GET /metrics``: Prometheus text format (request count, latency histogram,
  predictions per digit, model info).

Settings come from the environment (the deployment's ConfigMap): ``MODEL_PATH``
or else ``MODEL_NAME`` (default ``digits``: /opt/model/<name>.npz, baked into the
image) and ``MAX_BATCH_SIZE`` (most images in one request, default 256). Nothing
is written to disk, so the server runs on a read-only root filesystem.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from werkzeug.exceptions import HTTPException

from model_server.classifier import DigitClassifier, ModelFileError
from model_server.inputs import MAX_BATCH, InputError, parse_body

MODEL_DIR = Path("/opt/model")
DEFAULT_MODEL_NAME = "digits"
MAX_BODY_BYTES = 1024 * 1024
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """One registry per app, so tests can build several apps in one process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "model_http_requests",
            "HTTP requests by endpoint, method and status code.",
            ("endpoint", "method", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "model_http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint.",
            ("endpoint",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "model_predictions",
            "Images classified, by predicted digit.",
            ("digit",),
            registry=self.registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The loaded model (value 1), labelled with its version; absent when not loaded.",
            ("version",),
            registry=self.registry,
        )


def model_path_from_env() -> Path:
    if os.environ.get("MODEL_PATH"):
        return Path(os.environ["MODEL_PATH"])
    name = os.environ.get("MODEL_NAME") or DEFAULT_MODEL_NAME
    return MODEL_DIR / f"{Path(name).name}.npz"


def max_batch_from_env() -> tuple[int, str]:
    """MAX_BATCH_SIZE, or the default and why it was not taken."""
    text = os.environ.get("MAX_BATCH_SIZE", "").strip()
    if not text:
        return MAX_BATCH, ""
    if text.isdigit() and int(text) > 0:
        return int(text), ""
    return MAX_BATCH, f"MAX_BATCH_SIZE={text!r} is not a positive integer; using {MAX_BATCH}"


def create_app(
    model: DigitClassifier | None = None,
    model_path: Path | None = None,
    max_batch: int | None = None,
) -> Flask:
    """Build the app. With no ``model``, load it from ``model_path`` or the environment.

    A missing or broken model file does not stop the process: /healthz stays 200
    (restarting would not help), /readyz and /predict answer 503 with the reason.
    """
    app = Flask("model_server")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    batch_limit, batch_problem = (max_batch, "") if max_batch else max_batch_from_env()
    if batch_problem:
        app.logger.warning("%s", batch_problem)
    metrics = Metrics()
    load_error = ""
    if model is None:
        path = model_path or model_path_from_env()
        try:
            model = DigitClassifier.load(path)
        except ModelFileError as exc:
            load_error = str(exc)
            app.logger.error("model not loaded: %s", exc)
    if model is not None:
        metrics.model_info.labels(version=model.version).set(1)
    app.extensions["metrics"] = metrics

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        # The route pattern, not the raw path: unknown paths must not grow label sets.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        if endpoint != "/metrics":
            elapsed = time.perf_counter() - g.get("started", time.perf_counter())
            metrics.latency.labels(endpoint=endpoint).observe(elapsed)
            metrics.requests.labels(
                endpoint=endpoint, method=request.method, status=str(response.status_code)
            ).inc()
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        return jsonify(error=exc.description or exc.name), code

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        return jsonify(status="ok"), 200

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        if model is None:
            return jsonify(status="not ready", reason=load_error), 503
        return jsonify(status="ready", model_version=model.version), 200

    @app.post("/predict")
    def predict() -> tuple[Response, int]:
        if model is None:
            return jsonify(error=f"model not loaded: {load_error}"), 503
        if not request.is_json:
            return jsonify(error="send Content-Type: application/json"), 415
        body: Any = request.get_json(silent=True)
        if body is None:
            return jsonify(error="the request body is not valid JSON"), 400
        try:
            images = parse_body(body, max_batch=batch_limit)
        except InputError as exc:
            return jsonify(error=str(exc)), 422
        proba = model.predict_proba(images)
        digits = proba.argmax(axis=1)
        for d in digits:
            metrics.predictions.labels(digit=str(int(d))).inc()
        results = [
            {
                "digit": int(d),
                "confidence": round(float(p[d]), 6),
                "probabilities": [round(float(v), 6) for v in p],
            }
            for d, p in zip(digits, proba, strict=True)
        ]
        payload: dict[str, Any] = {"model_version": model.version}
        if "instances" in body:
            payload["predictions"] = results
        else:
            payload.update(results[0])
        return jsonify(payload), 200

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), mimetype=CONTENT_TYPE_LATEST)

    return app
