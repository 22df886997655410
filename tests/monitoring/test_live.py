"""Monitoring with real parts: Prometheus 2.42 scraping three real model servers under
gunicorn (healthy; a model that did not load, answering 503; slow), driven by a bounded
load, with the PrometheusRule's rules loaded (their ``for:`` shortened to seconds).

``pipeline verify`` passes on the healthy server, fails naming the error ratio on the
broken one and the p95 on the slow one, and is one error line when Prometheus is not
there; the rules' alerts fire for the failing servers and not for the healthy one; every
dashboard panel's query returns data; and a failed verification of prod rolls it back,
holds it, and the next promotion is refused, through the CLI with a real registry.

One Prometheus and one set of servers for the module (Prometheus scrapes nothing for
its first ~5 s: its discovery updates targets every 5 s); the verification window is
10 s.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.monitoring.dashboard import dashboard, panel_queries
from infra.monitoring.monitor import Target, static_scrape_config
from infra.monitoring.rules import Budgets, fast, rule_groups
from pipeline.cli import main
from pipeline.project import Project
from pipeline.records.model import CiRun, Deployment, Verification
from pipeline.records.stores import open_store
from pipeline.verification.prometheus import PrometheusClient
from rehearsal.load import Load
from tests.monitoring.servers import (
    ModelServer,
    Prometheus,
    exposition_server,
    model_server,
    prometheus,
    write_model,
)
from tests.pipeline.recordkit import model_card
from tests.registry_fixture import PushedImages
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUDGETS = Budgets(0.05, 0.25, 0.5)
WINDOW = "10s"
FOR_SECONDS = 3
# name -> (namespace, version label = the image tag the pods run)
SERVERS = {
    "healthy": ("cv-healthy", "v1"),
    "broken": ("cv-broken", "v2"),
    "slow": ("cv-slow", "v3"),
}
DIGESTS = {"v1": "sha256:" + "1" * 64, "v2": "sha256:" + "2" * 64, "v3": "sha256:" + "3" * 64}
KSM = """\
# TYPE kube_deployment_status_replicas_available gauge
kube_deployment_status_replicas_available{namespace="cv-healthy",deployment="model-server"} 1
kube_deployment_status_replicas_available{namespace="cv-broken",deployment="model-server"} 0
kube_deployment_status_replicas_available{namespace="cv-slow",deployment="model-server"} 1
# TYPE kube_deployment_spec_replicas gauge
kube_deployment_spec_replicas{namespace="cv-healthy",deployment="model-server"} 1
kube_deployment_spec_replicas{namespace="cv-broken",deployment="model-server"} 1
kube_deployment_spec_replicas{namespace="cv-slow",deployment="model-server"} 1
# TYPE kube_pod_container_status_restarts_total counter
kube_pod_container_status_restarts_total{namespace="cv-healthy",pod="model-server-healthy-0",container="model-server"} 0
kube_pod_container_status_restarts_total{namespace="cv-broken",pod="model-server-broken-0",container="model-server"} 0
kube_pod_container_status_restarts_total{namespace="cv-slow",pod="model-server-slow-0",container="model-server"} 0
"""  # noqa: E501


@dataclass(frozen=True)
class Live:
    prometheus: Prometheus
    servers: dict[str, ModelServer]
    load: Load
    deployed: datetime  # every target was up: the "deployments" finished then
    scraped_after: float  # seconds from Prometheus' start to all targets up


def delivery_exposition(tmp: Path) -> str:
    """``pipeline metrics --format prometheus`` over records of every kind it counts."""
    store_path = tmp / "delivery.db"
    now = datetime.now(UTC)
    digest = DIGESTS["v1"]
    image = f"registry.example.internal/cv/model:v1@{digest}"
    store = open_store(str(store_path), None)
    store.add_many(
        [
            CiRun(image=image, digest=digest, commit="4e1d07c", commit_time=now - timedelta(days=2),
                  started=now - timedelta(days=1), build_seconds=300, test_seconds=90, passed=10),
            *(Deployment(stack, "succeeded", image, digest, now - timedelta(hours=h, minutes=5),
                         now - timedelta(hours=h)) for stack, h in (("staging", 5), ("prod", 3))),
            Deployment("prod", "failed", image, digest, now - timedelta(hours=2, minutes=5),
                       now - timedelta(hours=2)),
            Deployment("prod", "succeeded", image, digest, now - timedelta(hours=1, minutes=5),
                       now - timedelta(hours=1)),
            Verification("prod", digest, image, "passed", now - timedelta(minutes=50),
                         now - timedelta(minutes=45)),
        ]
    )  # fmt: skip
    store.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--store", str(store_path), "metrics", "--format", "prometheus"]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("live")
    model = write_model(tmp / "model" / "digits.npz")
    with contextlib.ExitStack() as stack:
        servers = {
            "healthy": stack.enter_context(model_server(tmp / "healthy", model)),
            "broken": stack.enter_context(
                model_server(tmp / "broken", tmp / "model" / "missing.npz", ready=False)
            ),
            "slow": stack.enter_context(
                model_server(tmp / "slow", model, app="slow_app:app", SLOW_PREDICT_SECONDS="0.6")
            ),
        }
        ksm = stack.enter_context(exposition_server(KSM))
        delivery = stack.enter_context(exposition_server(delivery_exposition(tmp)))
        targets = [
            Target(
                f"127.0.0.1:{servers[name].port}", ns, "model-server", f"model-server-{name}-0", v
            )
            for name, (ns, v) in SERVERS.items()
        ]
        scrape = [
            static_scrape_config("serviceMonitor/model-server", targets, "/metrics", "1s", "1s"),
            {"job_name": "kube-state-metrics", "honor_labels": True,
             "static_configs": [{"targets": [ksm]}]},
            {"job_name": "delivery", "honor_labels": True,
             "static_configs": [{"targets": [delivery]}]},
        ]  # fmt: skip
        groups = [
            group
            for ns, _ in SERVERS.values()
            for group in rule_groups(ns, "model-server", "/predict", BUDGETS, fast(FOR_SECONDS))
        ]
        prom = stack.enter_context(prometheus(tmp / "prometheus", scrape, groups))
        load = stack.enter_context(
            Load([s.url for s in servers.values()], rate=30, seconds=240, budget=7200, threads=4)
        )

        def all_up() -> bool:
            found = prom.api('/api/v1/query?query=sum(up{service="model-server"})')["result"]
            return bool(found) and float(found[0]["value"][1]) == len(SERVERS)

        wait_until(all_up, what="the first scrape of every server", timeout=60, interval=0.25)
        scraped_after = time.monotonic() - prom.started
        yield Live(prom, servers, load, datetime.now(UTC), scraped_after)


def project(tmp: Path, live: Live, *stacks: str, **extra: dict[str, Any]) -> Path:
    """A project whose stacks are named after the servers (namespace, image tag)."""
    root = tmp / "project"
    root.mkdir(exist_ok=True)
    (root / "Pulumi.yaml").write_bytes((PROJECT_ROOT / "Pulumi.yaml").read_bytes())
    for name in stacks:
        namespace, tag = SERVERS[name]
        config = {
            "cv-platform:environment": "staging",
            "cv-platform:namespace": namespace,
            "cv-platform:image": {
                "repository": "registry.example.internal/cv/model",
                "tag": tag,
                "digest": DIGESTS[tag],
            },
            "cv-platform:verification": {
                "prometheusUrl": live.prometheus.url,
                "window": WINDOW,
                "minRequests": 20,
            },
            **extra.get(name, {}),
        }
        (root / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump({"config": config}))
    return root


def deployed(
    live: Live, stack: str, image: str, digest: str, at: datetime | None = None
) -> Deployment:
    finished = at or live.deployed
    return Deployment(stack, "succeeded", image, digest, finished - timedelta(minutes=2), finished)


def record(root: Path, *records: Any) -> None:
    store = open_store(None, Project(root))
    store.add_many(records)
    store.close()


def verify(root: Path, stack: str, *extra: str) -> int:
    return main(["--project-dir", str(root), "verify", stack, *extra])


@pytest.fixture
def three(tmp_path: Path, live: Live, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    root = project(tmp_path, live, *SERVERS)
    for name, (_, tag) in SERVERS.items():
        image = f"registry.example.internal/cv/model:{tag}@{DIGESTS[tag]}"
        record(root, deployed(live, name, image, DIGESTS[tag]))
    return root


def test_verify_passes_on_the_healthy_server(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert verify(three, "healthy") == 0
    seconds = time.monotonic() - started
    out = capsys.readouterr().out
    assert '{namespace="cv-healthy",app="model-server",version="v1"} over 10s' in out
    assert "verified healthy (sha256:111111111111): " in out
    (check,) = open_store(None, Project(three)).verifications("healthy")
    assert check.result == "passed"
    assert check.requests is not None
    assert check.requests >= 20
    assert check.error_ratio == 0.0
    assert check.p95_seconds is not None
    assert check.p95_seconds < 0.25
    print(f"verify healthy: {seconds:.1f} s (window 10s), {check.requests:.0f} requests")


def test_verify_fails_naming_the_error_ratio_on_the_server_whose_model_did_not_load(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(three, "broken") == 3
    captured = capsys.readouterr()
    assert "error ratio  100.00%" in captured.out
    assert captured.err.count("\n") == 1
    assert "verification of broken (sha256:222222222222) failed: error ratio 100.00% > 1.00%" in (
        captured.err
    )
    (check,) = open_store(None, Project(three)).verifications("broken")
    assert (check.result, check.error_ratio) == ("failed", 1.0)


def test_verify_fails_naming_the_p95_on_the_slow_server(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(three, "slow") == 3
    err = capsys.readouterr().err
    assert "failed: p95 latency " in err
    assert "> 250 ms" in err


def test_too_few_requests_to_judge_is_exit_1_never_a_pass(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(three, "healthy", "--min-requests", "1000000") == 1
    err = capsys.readouterr().err
    assert "cannot judge healthy (sha256:111111111111): too few requests to judge:" in err
    (check,) = open_store(None, Project(three)).verifications("healthy")
    assert check.result == "inconclusive"


def test_a_selector_that_matches_nothing_cannot_judge(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify(three, "healthy", "--selector", '{namespace="cv-nowhere"}', "--no-record") == 1
    assert "too few requests to judge: no prediction requests" in capsys.readouterr().err
    assert open_store(None, Project(three)).verifications("healthy") == []


def test_a_query_prometheus_refuses_is_exit_1(
    three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Python's re takes a back-reference; Prometheus' RE2 does not (an escaped backslash
    # in the selector: the regex is (cv)\1).
    assert verify(three, "healthy", "--selector", r'{namespace=~"(cv)\\1"}') == 1
    err = capsys.readouterr().err
    assert "refused the query (HTTP 400, bad_data)" in err
    assert err.endswith("; nothing recorded\n")
    assert err.count("\n") == 1


def test_a_stopped_prometheus_is_one_line_and_exit_1(
    tmp_path: Path, three: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with prometheus(tmp_path / "gone", []) as gone:
        url = gone.url
    assert gone.process.poll() is not None
    assert verify(three, "healthy", "--prometheus", url) == 1
    err = capsys.readouterr().err
    assert err == (
        f"python -m pipeline verify: error: cannot reach Prometheus at {url[len('http://') :]}: "
        "connection refused; nothing recorded\n"
    )
    assert open_store(None, Project(three)).verifications("healthy") == []


def firing(live: Live) -> set[tuple[str, str]]:
    alerts = live.prometheus.api("/api/v1/alerts")["alerts"]
    return {
        (a["labels"]["namespace"], a["labels"]["alertname"])
        for a in alerts
        if a["state"] == "firing"
    }


def test_the_rules_alerts_fire_for_the_failing_servers_only(live: Live) -> None:
    expected = {
        ("cv-broken", "ModelServerHighErrorRatio"),
        ("cv-broken", "ModelServerModelNotLoaded"),
        ("cv-broken", "ModelServerNoReadyReplicas"),
        ("cv-slow", "ModelServerLatencyP95High"),
        ("cv-slow", "ModelServerLatencyP99High"),
    }
    wait_until(lambda: expected <= firing(live), what="the alerts", timeout=60, interval=0.25)
    print(
        f"alerts firing {time.monotonic() - live.prometheus.started:.1f} s after Prometheus started"
    )
    assert firing(live) == expected
    broken = [
        a
        for a in live.prometheus.api("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == "ModelServerHighErrorRatio"
    ]
    assert broken[0]["labels"]["severity"] == "critical"
    assert broken[0]["annotations"]["description"].startswith("100% of /predict requests")


def test_every_dashboard_panel_query_returns_data(live: Live) -> None:
    model = dashboard("model-server", "cv-healthy", "staging", "/predict", BUDGETS)
    client = PrometheusClient(live.prometheus.url)
    empty = []
    now = datetime.now(UTC)
    try:
        for title, kind, expr in panel_queries(model):
            query = expr.replace("$namespace", "cv-healthy").replace("$__rate_interval", "30s")
            if kind == "timeseries":
                found = client.query_range(query, now - timedelta(seconds=20), now, 5)
            else:
                found = client.query(query, now)
            if not any(s.values for s in found):
                empty.append(f"{title}: {query}")
    finally:
        client.close()
    assert empty == []


def test_a_failed_prod_verification_rolls_back_holds_and_promotion_is_refused(
    tmp_path: Path,
    live: Live,
    registry_images: PushedImages,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(registry_images.server.docker_config(tmp_path / "d")))
    name = registry_images.name
    good, bad = registry_images.v1.digest, registry_images.v2.digest
    # prod runs v2 on the broken server's pods (namespace cv-broken, version v2); v1 passed
    # its verification there earlier. Staging runs v2 too, verified, ready to promote.
    prod = {
        "cv-platform:environment": "prod",
        "cv-platform:image": {"repository": name, "tag": "v2", "digest": bad},
        "cv-platform:promotionSoakMinutes": 0,
    }
    root = project(tmp_path, live, "broken", "healthy", broken=prod)
    (root / "Pulumi.broken.yaml").rename(root / "Pulumi.prod.yaml")
    (root / "Pulumi.healthy.yaml").rename(root / "Pulumi.staging.yaml")
    earlier = live.deployed - timedelta(hours=3)
    v1, v2 = f"{name}:v1@{good}", f"{name}:v2@{bad}"
    record(
        root,
        deployed(live, "prod", v1, good, earlier),
        Verification("prod", good, v1, "passed", earlier, earlier + timedelta(minutes=5)),
        deployed(live, "staging", v2, bad, earlier),
        Verification("staging", bad, v2, "passed", earlier, earlier + timedelta(minutes=5)),
        CiRun(image=v2, digest=bad, passed=10, scan_critical=0, scan_high=0),
        model_card(good),
        model_card(bad, accuracy=0.9741),
        deployed(live, "prod", v2, bad),
    )
    assert verify(root, "prod", "--rollback-on-failure") == 3
    captured = capsys.readouterr()
    assert f"+    digest: {good}" in captured.out
    assert captured.err.count("\n") == 1
    assert "failed: error ratio 100.00% > 1.00%" in captured.err
    assert f"rolled prod back sha256:{bad[7:19]} -> sha256:{good[7:19]}, to the last verified" in (
        captured.err
    )
    assert yaml.safe_load((root / "Pulumi.prod.yaml").read_text())["config"][
        "cv-platform:image"
    ] == {"repository": name, "tag": "v1", "digest": good}
    assert main(["--project-dir", str(root), "history", "prod", "--json"]) == 0
    history = json.loads(capsys.readouterr().out)
    kinds = [(e["event"], e.get("result") or e.get("action")) for e in history[:3]]
    assert kinds == [("hold", "placed"), ("rollback", None), ("verification", "failed")]
    assert "error ratio 100.00% > 1.00%" in history[0]["reason"]
    assert main(["--project-dir", str(root), "promote", "--from", "staging", "--to", "prod"]) == 3
    captured = capsys.readouterr()
    failing = [ln.split()[0] for ln in captured.out.splitlines() if " FAIL " in f" {ln} "]
    assert failing == ["not-rejected", "not-on-hold"]  # rolled back from prod, and held
    assert "refused by not-rejected, not-on-hold" in captured.err
