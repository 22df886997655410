"""Fixtures for the model server tests: the model is trained once per session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

MODEL_DIR = Path(__file__).resolve().parent.parent
if str(MODEL_DIR) not in sys.path:
    # model/ is its own project (its own image); make model_server importable.
    sys.path.insert(0, str(MODEL_DIR))

from model_server.classifier import TrainingResult, train  # noqa: E402


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return MODEL_DIR


@pytest.fixture(scope="session")
def trained() -> TrainingResult:
    return train()


@pytest.fixture(scope="session")
def model_file(trained: TrainingResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "digits.npz"
    trained.model.save(path)
    return path


@pytest.fixture(scope="session")
def digits():  # type: ignore[no-untyped-def]
    from sklearn.datasets import load_digits

    return load_digits()
