"""The model card the image build writes: what the model is, how good, what it takes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from model_server.card import INPUTS, NAME, OUTPUTS, RELEASE, model_card
from model_server.classifier import TrainingResult
from model_server.train import main as train_main

SEMVER = r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\+[0-9a-f]{12}$"


@pytest.fixture(scope="module")
def card(trained: TrainingResult, model_file: Path) -> dict[str, object]:
    return model_card(trained, model_file)


def test_the_card_names_the_model_and_its_version(
    card: dict[str, object], trained: TrainingResult, model_file: Path
) -> None:
    model = card["model"]
    assert isinstance(model, dict)
    assert model["name"] == NAME
    assert model["version"] == f"{RELEASE}+{trained.model.version}"
    assert re.match(SEMVER, model["version"])
    assert model["file_size_bytes"] == model_file.stat().st_size


def test_accuracy_and_per_class_figures_are_the_held_out_ones(
    card: dict[str, object], trained: TrainingResult
) -> None:
    from sklearn.metrics import precision_score, recall_score

    metrics = card["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["accuracy"] == round(trained.accuracy, 6)
    predicted = trained.model.predict(trained.x_test)
    precision = precision_score(trained.y_test, predicted, average=None)
    recall = recall_score(trained.y_test, predicted, average=None)
    per_class = metrics["per_class"]
    assert sorted(per_class, key=int) == [str(d) for d in range(10)]
    for digit in range(10):
        assert per_class[str(digit)]["precision"] == pytest.approx(precision[digit], abs=5e-5)
        assert per_class[str(digit)]["recall"] == pytest.approx(recall[digit], abs=5e-5)
    assert sum(per_class[str(d)]["support"] for d in range(10)) == trained.test_size == 450


def test_the_signature_is_mlflow_tensor_specs_of_what_the_model_takes_and_gives(
    card: dict[str, object], trained: TrainingResult
) -> None:
    assert card["signature"] == {"inputs": INPUTS, "outputs": OUTPUTS}
    (spec_in,) = json.loads(INPUTS)
    (spec_out,) = json.loads(OUTPUTS)
    assert spec_in == {"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}
    assert spec_out["tensor-spec"]["shape"] == [-1, 10]
    # What the model really does with such a tensor:
    out = trained.model.predict_proba(np.zeros((3, 64)))
    assert (out.shape, str(out.dtype)) == ((3, 10), spec_out["tensor-spec"]["dtype"])


def test_latency_and_data_fingerprint(card: dict[str, object]) -> None:
    latency = card["latency_ms"]
    assert isinstance(latency, dict)
    assert 0 < latency["p50"] <= latency["p95"]
    assert latency["batch"]["size"] == 64
    assert latency["batch"]["p50"] <= latency["batch"]["p95"]
    data = card["data"]
    assert isinstance(data, dict)
    assert data["fingerprint"].startswith("sha256:")
    assert len(data["fingerprint"]) == len("sha256:") + 64


def test_train_writes_the_card_beside_the_model(tmp_path: Path, trained: TrainingResult) -> None:
    out, card_path = tmp_path / "digits.npz", tmp_path / "model-card.json"
    assert train_main(["--out", str(out), "--card", str(card_path)]) == 0
    written = json.loads(card_path.read_text())
    assert written["model"]["version"].endswith(trained.model.version)
    assert written["data"]["fingerprint"] == f"sha256:{trained.train_sha256}"


def test_no_card_is_written_for_a_model_below_the_minimum(tmp_path: Path) -> None:
    card_path = tmp_path / "model-card.json"
    assert (
        train_main(
            ["--out", str(tmp_path / "m.npz"), "--min-accuracy", "0.999", "--card", str(card_path)]
        )
        == 1
    )
    assert not card_path.exists()
