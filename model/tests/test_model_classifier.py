"""The classifier: accuracy on held-out data, exact numpy inference, model file format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_server.classifier import DigitClassifier, ModelFileError, TrainingResult
from model_server.train import main as train_main

# The stated quality bar: the image build refuses a model below it (model/Dockerfile).
MIN_HELDOUT_ACCURACY = 0.95


def test_heldout_accuracy_is_above_the_stated_threshold(trained: TrainingResult) -> None:
    assert trained.test_size == 450
    assert trained.accuracy >= MIN_HELDOUT_ACCURACY


def test_numpy_inference_matches_scikit_learn(trained: TrainingResult, digits) -> None:  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    m = trained.model
    clf = LogisticRegression()
    clf.classes_ = np.arange(10)
    clf.coef_, clf.intercept_ = m.coef, m.intercept
    x = digits.data[:200]
    expected = clf.predict_proba((x - m.mean) / m.scale)
    np.testing.assert_allclose(m.predict_proba(x), expected, rtol=1e-9, atol=1e-12)


def test_model_file_round_trips_without_pickle(trained: TrainingResult, model_file: Path) -> None:
    loaded = DigitClassifier.load(model_file)
    assert loaded.version == trained.model.version
    assert loaded.metadata["heldout_accuracy"] == round(trained.accuracy, 4)
    with np.load(model_file, allow_pickle=False) as data:  # pickled content would raise here
        assert sorted(data.files) == ["coef", "intercept", "mean", "metadata", "scale"]


def test_load_rejects_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        DigitClassifier.load(tmp_path / "absent.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, mean=np.zeros(64), metadata=np.array('{"format": "other"}'))
    with pytest.raises(ModelFileError, match=r"not readable|not a"):
        DigitClassifier.load(foreign)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file")
    with pytest.raises(ModelFileError, match="not readable"):
        DigitClassifier.load(garbage)


def test_train_command_refuses_to_write_a_model_below_the_minimum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "digits.npz"
    assert train_main(["--out", str(out), "--min-accuracy", "0.999"]) == 1
    assert not out.exists()
    assert "below 0.999; model not written" in capsys.readouterr().err


def test_train_command_is_deterministic(trained: TrainingResult, tmp_path: Path) -> None:
    # The same training run gives the same parameters, so rebuilt images agree.
    out = tmp_path / "digits.npz"
    assert train_main(["--out", str(out)]) == 0
    assert DigitClassifier.load(out).version == trained.model.version
