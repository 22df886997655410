"""The model card of a trained model: ``model-card.json``, written by the image build.

What it says (docs/model-card.schema.json in the platform repository): the model's
name and version, its held-out accuracy and per-class precision and recall, its
signature in MLflow's MLmodel form (the JSON-encoded tensor specs, as MLflow writes
them), inference latency for one image and for a batch, a fingerprint of the
training data and the model file's size. The promotion gates compare it with the
card of the model a stack runs now.

The version is ``RELEASE`` plus the parameters' content hash as semver build
metadata (``1.0.0+3f2a9c1b2d4e``): the same training gives the same version. Bump
``RELEASE``'s major number when the signature changes (a breaking change), its
minor number for a retrained model that takes and gives the same.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from model_server.classifier import CLASSES, PIXELS, TrainingResult

NAME = "digits"
RELEASE = "1.0.0"
LATENCY_REPEATS = 200  # single-image timings taken (bounded: about 10 ms in all)
BATCH_SIZE = 64
BATCH_REPEATS = 50


def _tensor(shape: list[int]) -> str:
    # MLflow's TensorSpec.to_dict, serialised as Schema.to_json does (json.dumps).
    return json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": shape}}])


INPUTS = _tensor([-1, PIXELS])  # images of 64 pixels in 0..16
OUTPUTS = _tensor([-1, CLASSES])  # a probability per digit


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return round(statistics.median(ordered) * 1e3, 4), round(p95 * 1e3, 4)


def latency(result: TrainingResult) -> dict[str, Any]:
    """Inference time of the model itself (numpy, this machine), one image and a batch."""
    images = result.x_test
    singles = []
    for i in range(LATENCY_REPEATS):
        one = images[i % len(images)][np.newaxis, :]
        started = time.perf_counter()
        result.model.predict_proba(one)
        singles.append(time.perf_counter() - started)
    batch = np.resize(images, (BATCH_SIZE, PIXELS))
    batches = []
    for _ in range(BATCH_REPEATS):
        started = time.perf_counter()
        result.model.predict_proba(batch)
        batches.append(time.perf_counter() - started)
    p50, p95 = _percentiles(singles)
    batch_p50, batch_p95 = _percentiles(batches)
    return {
        "p50": p50,
        "p95": max(p95, p50),
        "batch": {"size": BATCH_SIZE, "p50": batch_p50, "p95": max(batch_p95, batch_p50)},
        "measured": "model inference in the image build (numpy), not the HTTP path",
    }


def per_class(result: TrainingResult) -> dict[str, dict[str, float | int]]:
    """Precision and recall of each digit on the held-out split."""
    predicted = result.model.predict(result.x_test)
    truth = result.y_test
    out: dict[str, dict[str, float | int]] = {}
    for digit in range(CLASSES):
        hits = int(np.sum((predicted == digit) & (truth == digit)))
        said = int(np.sum(predicted == digit))
        real = int(np.sum(truth == digit))
        out[str(digit)] = {
            "precision": round(hits / said, 4) if said else 0.0,
            "recall": round(hits / real, 4) if real else 0.0,
            "support": real,
        }
    return out


def model_card(result: TrainingResult, model_file: Path) -> dict[str, Any]:
    """The card of ``result``, whose parameters were written to ``model_file``."""
    metadata = result.model.metadata
    return {
        "model": {
            "name": NAME,
            "version": f"{RELEASE}+{result.model.version}",
            "file_size_bytes": model_file.stat().st_size,
            "format": "cv-platform-digits/1 (.npz, no pickle)",
        },
        "metrics": {
            "accuracy": round(result.accuracy, 6),
            "per_class": per_class(result),
            "heldout_size": result.test_size,
        },
        "signature": {"inputs": INPUTS, "outputs": OUTPUTS},
        "latency_ms": latency(result),
        "data": {
            "fingerprint": f"sha256:{result.train_sha256}",
            "dataset": metadata.get("dataset", "sklearn.datasets.load_digits"),
            "train_size": result.train_size,
            "seed": metadata.get("seed"),
        },
    }


def write_card(card: dict[str, Any], path: Path) -> None:
    """Write atomically (temporary file, then rename), as the model file is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
