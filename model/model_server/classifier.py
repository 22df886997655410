"""The digit classifier: a standardised multinomial logistic regression on 8x8 images.

Training uses scikit-learn and the digits dataset it ships (no download). The
trained parameters are written as plain arrays (``.npz``, loaded with
``allow_pickle=False``), so serving needs only numpy and never unpickles
anything: inference is ``softmax(((x - mean) / scale) @ coef.T + intercept)``.

Pixel values follow the dataset: 64 numbers in 0..16, row by row, where 16 is
full ink and 0 is background.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

PIXELS = 64
SIDE = 8
MAX_PIXEL = 16.0
CLASSES = 10
FORMAT = "cv-platform-digits/1"

FloatArray = npt.NDArray[np.float64]


class ModelFileError(Exception):
    """The model file is missing, unreadable or not a model this server understands."""


@dataclass(frozen=True)
class DigitClassifier:
    """Trained parameters; ``predict_proba`` is pure numpy."""

    mean: FloatArray  # (64,)
    scale: FloatArray  # (64,)
    coef: FloatArray  # (10, 64)
    intercept: FloatArray  # (10,)
    metadata: dict[str, Any]

    def __post_init__(self) -> None:
        shapes = {
            "mean": (self.mean.shape, (PIXELS,)),
            "scale": (self.scale.shape, (PIXELS,)),
            "coef": (self.coef.shape, (CLASSES, PIXELS)),
            "intercept": (self.intercept.shape, (CLASSES,)),
        }
        for name, (got, want) in shapes.items():
            if got != want:
                raise ModelFileError(f"model array {name!r} has shape {got}, expected {want}")
        if not np.all(self.scale > 0):
            raise ModelFileError("model array 'scale' has non-positive entries")

    @property
    def version(self) -> str:
        """A content hash of the parameters: the same training gives the same version."""
        h = hashlib.sha256()
        for arr in (self.mean, self.scale, self.coef, self.intercept):
            h.update(np.ascontiguousarray(arr, dtype="<f8").tobytes())
        return h.hexdigest()[:12]

    def predict_proba(self, pixels: FloatArray) -> FloatArray:
        """Class probabilities for an (n, 64) batch of images in 0..16."""
        x = np.atleast_2d(np.asarray(pixels, dtype=np.float64))
        if x.shape[1:] != (PIXELS,):
            raise ValueError(f"expected images of {PIXELS} pixels, got shape {x.shape}")
        logits = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: FloatArray = exp / exp.sum(axis=1, keepdims=True)
        return result

    def predict(self, pixels: FloatArray) -> npt.NDArray[np.int64]:
        result: npt.NDArray[np.int64] = np.argmax(self.predict_proba(pixels), axis=1)
        return result

    def save(self, path: Path) -> None:
        """Write the parameters atomically (temporary file, then rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as fh:
            np.savez(
                fh,
                mean=self.mean,
                scale=self.scale,
                coef=self.coef,
                intercept=self.intercept,
                metadata=np.array(json.dumps({**self.metadata, "format": FORMAT}, sort_keys=True)),
            )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> DigitClassifier:
        if not path.is_file():
            raise ModelFileError(f"model file {path} not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.array(data[k], dtype=np.float64) for k in _ARRAYS}
                metadata = json.loads(str(data["metadata"]))
        except (OSError, KeyError, ValueError) as exc:
            raise ModelFileError(f"model file {path} is not readable: {exc}") from exc
        if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
            raise ModelFileError(f"model file {path} is not a {FORMAT} model")
        return cls(metadata=metadata, **arrays)


_ARRAYS = ("mean", "scale", "coef", "intercept")


@dataclass(frozen=True)
class TrainingResult:
    model: DigitClassifier
    accuracy: float  # on the held-out split
    train_size: int
    test_size: int
    # The held-out split (the model card's per-class figures) and a hash of the
    # training split (its data fingerprint).
    x_test: FloatArray = field(repr=False, default_factory=lambda: np.zeros((0, PIXELS)))
    y_test: npt.NDArray[np.int64] = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    train_sha256: str = ""


def train(test_size: float = 0.25, seed: int = 0) -> TrainingResult:
    """Fit on a stratified split of scikit-learn's digits; score on the held-out part.

    Deterministic for a given ``seed``: the solver (lbfgs) has no randomness.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=test_size, random_state=seed, stratify=digits.target
    )
    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(C=0.5, max_iter=2000)
    clf.fit(scaler.transform(x_train), y_train)
    model = DigitClassifier(
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        coef=np.asarray(clf.coef_, dtype=np.float64),
        intercept=np.asarray(clf.intercept_, dtype=np.float64),
        metadata={},
    )
    accuracy = float(np.mean(model.predict(x_test) == y_test))
    model = DigitClassifier(
        mean=model.mean,
        scale=model.scale,
        coef=model.coef,
        intercept=model.intercept,
        metadata={
            "dataset": "sklearn.datasets.load_digits",
            "heldout_accuracy": round(accuracy, 4),
            "train_size": len(y_train),
            "test_size": len(y_test),
            "seed": seed,
        },
    )
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x_train, dtype="<f8").tobytes())
    digest.update(np.ascontiguousarray(y_train, dtype="<i8").tobytes())
    return TrainingResult(
        model,
        accuracy,
        len(y_train),
        len(y_test),
        x_test=np.asarray(x_test, dtype=np.float64),
        y_test=np.asarray(y_test, dtype=np.int64),
        train_sha256=digest.hexdigest(),
    )
