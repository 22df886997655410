"""`pipeline metrics` through the CLI: formats, Prometheus parsing, CloudWatch (moto), chart."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.records.model import CiRun, Deployment, Record, Rollback, Verification
from pipeline.records.stores import open_store

DIGEST = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


def populate(path: Path, records: list[Record]) -> None:
    store = open_store(str(path), None)
    try:
        store.add_many(records)
    finally:
        store.close()


def worked_example(now: datetime) -> list[Record]:
    """T_C 20, T_T 30, T_D 10 min; P_T 0.9; P_D 0.95 (19 of 20) - all in the last week."""
    base = now - timedelta(days=6)
    records: list[Record] = [
        CiRun(
            image="registry.cv.example:5000/cv/model:abc",
            digest=DIGEST,
            commit="abc1234",
            commit_time=base - timedelta(hours=2),
            started=base,
            build_seconds=1200,
            test_seconds=1800,
            passed=90,
            failed=10,
            skipped=4,
        )
    ]
    for i in range(20):
        finished = base + timedelta(hours=1 + 4 * i)
        records.append(
            Deployment(
                stack="prod" if i % 2 else "staging",
                result="failed" if i == 4 else "succeeded",
                image="registry.cv.example:5000/cv/model:abc",
                digest=DIGEST,
                started=finished - timedelta(minutes=10),
                finished=finished,
            )
        )
    return records


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "records.db"
    populate(path, worked_example(datetime.now(UTC)))
    return path


def run_json(store: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["--store", str(store), "metrics", "--format", "json", *extra]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def test_json_carries_the_worked_example(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(store, capsys)
    # Exactly, as printed: (20 + 30 + 10) / 3 = 20 (the specification prints 25), 0.9 x 0.95.
    assert data["m_ci_minutes"] == 20.0
    assert (data["t_c_minutes"], data["t_t_minutes"], data["t_d_minutes"]) == (20.0, 30.0, 10.0)
    assert (data["p_t"], data["p_d"]) == (0.9, 0.95)
    assert data["m_cd"] == 0.855
    assert (data["ci_runs"], data["deployments"]) == (1, 20)
    assert data["tests"]["skipped"] == 4
    assert data["dora"]["lead_time_hours"] is not None
    assert set(data["window"]) == {"since", "until"}


def test_stack_selection(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(store, capsys, "--stack", "staging")
    assert data["deployments"] == 10
    assert data["p_d"] == pytest.approx(0.9)
    assert data["dora"]["stacks"] == ["staging"]
    assert data["notes"] == []


def test_a_stack_with_no_deployment_recorded_is_noted(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = run_json(store, capsys, "--stack", "prdo")
    assert data["deployments"] == 0
    assert data["notes"] == ["no deployment of stack prdo is recorded (a typo?)"]


def test_empty_store_prints_n_a_and_nulls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    populate(path, [])
    assert main(["--store", str(path), "metrics"]) == 0
    table = capsys.readouterr().out
    assert "M_CI" in table
    assert "n/a" in table
    assert "nan" not in table.lower()
    lines = {line.split("  ")[1].strip(): line for line in table.splitlines() if "  " in line}
    assert lines["lead time for changes"].endswith("n/a  no deployment")
    assert lines["recovery time"].endswith("n/a  no deployment")
    data = run_json(path, capsys)
    assert data["m_ci_minutes"] is None
    assert data["dora"]["deployment_frequency_per_week"] is None


def test_window_excludes_older_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.db"
    populate(path, worked_example(datetime.now(UTC) - timedelta(days=20)))
    assert run_json(path, capsys, "--window", "7d")["deployments"] == 0
    assert run_json(path, capsys, "--window", "4w")["deployments"] == 20


def test_zone_less_since_is_read_as_utc_and_said(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since = (datetime.now(UTC) - timedelta(days=10)).replace(tzinfo=None, microsecond=0)
    data = run_json(store, capsys, "--since", since.isoformat())
    assert data["window"]["since"] == since.isoformat() + "Z"
    assert any("read as UTC" in n for n in data["notes"])


@pytest.mark.parametrize(
    "args",
    [["--window", "30x"], ["--window", "0d"], ["--since", "yesterday"], ["--since", "2999-01-01"]],
)
def test_bad_window_is_a_usage_error(
    store: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["--store", str(store), "metrics", *args]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_markdown_is_a_table(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(store), "metrics", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "| metric | value | detail |" in out
    assert "| M_CI | 20.0 min |" in out
    assert "| M_CD | 0.855 |" in out


def test_prometheus_text_parses_with_units_in_names(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    assert main(["--store", str(store), "metrics", "--format", "prometheus"]) == 0
    text = capsys.readouterr().out
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {s.name: s for f in families.values() for s in f.samples}
    assert samples["cvplatform_mci_seconds"].value == pytest.approx(1200.0)
    assert samples["cvplatform_mcd_ratio"].value == pytest.approx(0.855)
    assert samples["cvplatform_deploy_time_seconds"].value == pytest.approx(600.0)
    assert samples["cvplatform_test_pass_ratio"].labels == {"stacks": "all"}
    assert families["cvplatform_deployments"].type == "counter"
    deploy_totals = {
        (s.labels["stack"], s.labels["result"]): s.value
        for s in families["cvplatform_deployments"].samples
    }
    assert deploy_totals == {
        ("prod", "succeeded"): 10,
        ("staging", "failed"): 1,
        ("staging", "succeeded"): 9,
    }
    assert all(s.name.endswith("_total") for s in families["cvplatform_deployments"].samples)
    for family in families.values():
        if family.type == "gauge" and family.name.endswith("_ratio"):
            assert all(0 <= s.value <= 1 for s in family.samples)
    assert "nan" not in text.lower()


def test_prometheus_text_passes_promtool_check_metrics(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make setup)")
    now = datetime.now(UTC)
    populate(
        store,
        [
            Rollback("prod", DIGEST, DIGEST_B, f"r/m@{DIGEST_B}", now - timedelta(hours=2)),
            Verification("prod", DIGEST, f"r/m@{DIGEST}", "failed", now - timedelta(hours=3), now),
        ],
    )
    assert main(["--store", str(store), "metrics", "--format", "prometheus"]) == 0
    text = capsys.readouterr().out
    assert 'cvplatform_verifications_total{stack="prod",result="failed"} 1.0' in text
    assert 'cvplatform_dora_samples{stacks="prod",key="lead_time"}' in text
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""


def test_prometheus_leaves_out_metrics_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"
    populate(path, [])
    assert main(["--store", str(path), "metrics", "--format", "prometheus"]) == 0
    text = capsys.readouterr().out
    assert "cvplatform_mci_seconds" not in text
    assert "cvplatform_window_ci_runs" in text  # a count of zero is data


@pytest.mark.parametrize("window", ["8w", "104w"])  # every week labelled; thinned labels
def test_plot_writes_a_png(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], window: str
) -> None:
    png = tmp_path / "weekly.png"
    assert main(["--store", str(store), "metrics", "--window", window, "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 10_000
    assert f"wrote {png}" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".plot-")] == []


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        (["--plot", "chart.svg"], 2),
        (["--plot", "no-such-dir/chart.png"], 1),
        (["--push-cloudwatch", "AWS/EC2"], 2),
    ],
)
def test_bad_plot_or_namespace_is_refused_before_any_report(
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    code: int,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--store", str(store), "metrics", *extra]) == code
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["records.db"]


def test_plot_without_matplotlib_says_how_to_install_it_before_any_report(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # matplotlib is the optional extra `plot`; a runtime-only install lacks it.
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an absent package looks like
    png = tmp_path / "weekly.png"
    assert main(["--store", str(store), "metrics", "--plot", str(png)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.endswith(
        "metrics: error: --plot needs matplotlib, which is not installed: "
        "run make setup, uv sync --extra plot, or pip install 'cv-platform[plot]'\n"
    )
    assert not png.exists()


def test_failed_push_prints_one_error_and_no_report(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No region anywhere: boto3 cannot even build the client.
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    png = tmp_path / "weekly.png"
    argv = ["--store", str(store), "metrics", "--format", "json", "--plot", str(png)]
    assert main([*argv, "--push-cloudwatch", "CvPlatform/Test"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("python -m pipeline metrics: error: CloudWatch: ")
    assert err.count("\n") == 1
    assert not png.exists()


def test_push_cloudwatch_with_stack_dimension(
    store: Path, aws_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    namespace = "CvPlatform/Test"
    code = main(
        ["--store", str(store), "metrics", "--stack", "prod", "--push-cloudwatch", namespace]
    )
    assert code == 0
    assert f"to CloudWatch namespace {namespace}" in capsys.readouterr().out
    cloudwatch = boto3.client("cloudwatch")
    listed = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    names = {m["MetricName"] for m in listed}
    assert {"MCI", "MCD", "DeployTime", "Deployments", "DeploymentFrequencyPerWeek"} <= names
    assert all(m["Dimensions"] == [{"Name": "Stack", "Value": "prod"}] for m in listed)
    now = datetime.now(UTC)
    stats = cloudwatch.get_metric_statistics(
        Namespace=namespace,
        MetricName="DeployTime",
        Dimensions=[{"Name": "Stack", "Value": "prod"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=60,
        Statistics=["Average"],
    )
    (point,) = stats["Datapoints"]
    assert point["Average"] == pytest.approx(600.0)
    assert point["Unit"] == "Seconds"


def test_push_cloudwatch_refuses_aws_namespaces(store: Path) -> None:
    assert main(["--store", str(store), "metrics", "--push-cloudwatch", "AWS/EC2"]) == 2
