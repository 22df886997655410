"""The model server: training time, held-out accuracy, and /predict latency.

Latency goes through the Flask app in-process (the framework's full request
path: routing, JSON, validation, metrics), for one image and a batch of 64, and
for a 32x32 PNG; numpy inference alone is shown beside it as the floor.
Figures are printed, never asserted.
"""

from __future__ import annotations

import base64
import io
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPEAT = 300


def _timed(fn: object, repeat: int = REPEAT) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    sys.path.insert(0, str(ROOT / "model"))
    import numpy as np
    from model_server.app import create_app
    from model_server.classifier import train
    from PIL import Image
    from sklearn.datasets import load_digits

    t0 = time.perf_counter()
    result = train()
    print(
        f"   train: {time.perf_counter() - t0:.2f} s, held-out accuracy "
        f"{result.accuracy:.4f} on {result.test_size} images (minimum 0.95)"
    )
    digits = load_digits()
    client = create_app(model=result.model).test_client()
    one = {"pixels": digits.data[0].tolist()}
    batch = {"instances": digits.data[:64].tolist()}
    grey = (255 - np.rint(digits.data[0].reshape(8, 8) * 255 / 16)).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").resize((32, 32)).save(buf, format="PNG")
    png = {"image_png": base64.b64encode(buf.getvalue()).decode()}
    x1 = digits.data[:1]
    cases = [
        ("numpy predict_proba, 1 image", lambda: result.model.predict_proba(x1)),
        ("POST /predict, 1 image", lambda: client.post("/predict", json=one)),
        ("POST /predict, batch of 64", lambda: client.post("/predict", json=batch)),
        ("POST /predict, 32x32 PNG", lambda: client.post("/predict", json=png)),
        ("GET /readyz", lambda: client.get("/readyz")),
    ]
    for label, fn in cases:
        median, p99 = _timed(fn)
        print(f"   {label:<30} median {median * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")


if __name__ == "__main__":
    main()
