"""M_CD per model version (pure): records belong to the model of their digest's newest card."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline.metrics.by_model import NO_CARD, by_model, render_by_model
from pipeline.records.model import Records, Window
from tests.pipeline.recordkit import DIGEST_A, DIGEST_B, T0, ci_run, deployment, model_card

DIGEST_C = "sha256:" + "c" * 64


def test_each_model_version_gets_its_own_p_t_p_d_and_m_cd() -> None:
    records = Records(
        ci_runs=(
            ci_run(0, passed=9, failed=1),  # A: 0.9
            ci_run(1, digest=DIGEST_B, passed=10, failed=0),
            ci_run(2, digest=DIGEST_C, passed=1, failed=1),
        ),
        deployments=(
            deployment(5, "prod"),
            deployment(6, "prod", result="failed"),
            deployment(7, "prod", digest=DIGEST_B),
        ),
        model_cards=(
            model_card(DIGEST_A, version="1.0.0"),
            model_card(DIGEST_B, version="1.0.0"),  # a rebuild of the same model version
            model_card(DIGEST_A, version="1.0.1"),  # A's newest card names it 1.0.1
        ),
    )
    rows = {r.model: r for r in by_model(records, stacks=["prod"])}
    assert list(rows) == ["digits 1.0.0", "digits 1.0.1", NO_CARD]
    a, b = rows["digits 1.0.1"], rows["digits 1.0.0"]
    assert a.p_t == pytest.approx(0.9)
    assert (a.p_d, a.ci_runs, a.deployments) == (0.5, 1, 2)
    assert a.m_cd == pytest.approx(0.45)
    assert (b.p_t, b.p_d, b.m_cd) == (1.0, 1.0, 1.0)
    nameless = rows[NO_CARD]
    assert (nameless.p_t, nameless.p_d, nameless.m_cd) == (0.5, None, None)


def test_the_window_applies_and_empty_models_are_left_out() -> None:
    records = Records(
        ci_runs=(ci_run(0), ci_run(100, digest=DIGEST_B)),
        model_cards=(model_card(DIGEST_A, version="1.0.0"), model_card(DIGEST_B, version="2.0.0")),
    )
    window = Window(T0 + timedelta(minutes=50), T0 + timedelta(hours=5))
    assert [r.model for r in by_model(records, window)] == ["digits 2.0.0"]


def test_the_table_and_markdown_say_n_a_without_data() -> None:
    rows = by_model(Records(ci_runs=(ci_run(0),), model_cards=(model_card(),)))
    text = render_by_model(rows)
    assert text.splitlines()[1].split() == [
        "MODEL",
        "M_CD",
        "P_T",
        "P_D",
        "CI",
        "RUNS",
        "DEPLOYMENTS",
    ]
    assert text.splitlines()[2].split() == ["digits", "1.0.0", "n/a", "0.992", "n/a", "1", "0"]
    assert "| digits 1.0.0 | n/a | 0.992 | n/a | 1 | 0 |" in render_by_model(rows, markdown=True)
