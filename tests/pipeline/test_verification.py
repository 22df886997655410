"""``pipeline verify``'s core without Prometheus: the selector grammar, the settings, the
PromQL, the verdict, the API client's failures, and the command's window and errors
(a fake transport and clock; tests/monitoring/test_live.py runs it against a real one)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.cli import main
from pipeline.commands.adapters import Adapters
from pipeline.errors import ConfigError, UsageError
from pipeline.io.http import HttpConnectionError, Response, Timeout
from pipeline.project import Project
from pipeline.records.model import Deployment, Verification
from pipeline.records.stores import open_store
from pipeline.verification.decide import Measured, Thresholds, decide
from pipeline.verification.prometheus import PrometheusClient, PrometheusError
from pipeline.verification.queries import verification_queries
from pipeline.verification.selector import Matcher, parse_selector, render_selector
from pipeline.verification.settings import DEFAULTS, duration_seconds, policy_from_config
from tests.pipeline.fake_transport import FakeTransport, answer
from tests.pipeline.hostile import assert_refused, cli

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIMITS = Thresholds(100, 0.01, 250.0)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DIGEST = "sha256:" + "4d" * 32
IMAGE = f"registry.example.internal/cv/model:4e1d07c@{DIGEST}"


# --- the selector grammar --------------------------------------------------------------


def test_a_selector_reads_and_writes_back() -> None:
    text = '{namespace="cv-prod", app=~"model-.*",version!="x\\"y"}'
    matchers = parse_selector(text)
    assert matchers == (
        Matcher("namespace", "=", "cv-prod"),
        Matcher("app", "=~", "model-.*"),
        Matcher("version", "!=", 'x"y'),
    )
    assert render_selector(matchers) == '{namespace="cv-prod",app=~"model-.*",version!="x\\"y"}'
    assert parse_selector('namespace="a"') == (Matcher("namespace", "=", "a"),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{namespace="a"', "unbalanced braces"),
        ("{namespace=a}", "double-quoted"),
        ('{namespace="a}', "not closed"),
        ('{namespace="a" app="b"}', "expected ','"),
        ('{1st="a"}', "expected label="),
        ("{}", "no label matcher"),
        ('{namespace!="a"}', "at least one matcher that is not empty"),
        ('{app=~"("}', "bad regex"),
    ],
)
def test_a_bad_selector_is_a_usage_error_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        parse_selector(text)


# --- settings -----------------------------------------------------------------------------


def test_the_verification_defaults() -> None:
    policy = policy_from_config(None, "staging")
    assert (policy.required, policy.window_seconds, policy.min_requests) == (False, 300.0, 100)
    assert (policy.max_error_ratio, policy.max_p95_ms, policy.prometheus_url) == (0.01, 250.0, "")
    assert set(DEFAULTS) == {
        "required",
        "window",
        "minRequests",
        "maxErrorRatio",
        "maxP95LatencyMs",
        "prometheusUrl",
    }


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"required": "yes"}, "verification.required must be true or false"),
        ({"window": "5 minutes"}, "verification.window must be a duration"),
        ({"window": "1s"}, "verification.window must be from 2s to 24h"),
        ({"minRequests": 0}, "verification.minRequests must be a whole number >= 1"),
        ({"maxErrorRatio": 2}, "verification.maxErrorRatio must be a ratio from 0 to 1"),
        ({"maxP95LatencyMs": -1}, "verification.maxP95LatencyMs must be milliseconds > 0"),
        ({"prometheusUrl": "prometheus:9090"}, "verification.prometheusUrl 'prometheus:9090' is"),
        ({"prometheusUrl": 9090}, "verification.prometheusUrl must be an http(s):// URL or empty"),
        ({"windows": "5m"}, "verification.windows is not a known field"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_from_config(fields, "staging")
    assert str(caught.value).startswith(f"stack staging: cv-platform:{message}")


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300), ("90s", 90), ("1h30m", 5400), ("2500ms", 2.5)]
)
def test_durations_are_prometheus_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


# --- the PromQL ---------------------------------------------------------------------------


def test_the_queries_select_the_prediction_endpoint_of_the_pods() -> None:
    matchers = parse_selector('{namespace="cv-prod",app="model-server",version="4e1d07c"}')
    q = verification_queries(matchers, "/predict", 300)
    sel = 'namespace="cv-prod",app="model-server",version="4e1d07c",endpoint="/predict"'
    assert q.requests == f"sum(increase(model_http_requests_total{{{sel}}}[300s]))"
    assert q.error_ratio == (
        f'(sum(increase(model_http_requests_total{{{sel},status=~"5.."}}[300s])) or vector(0))'
        f" / {q.requests}"
    )
    assert q.p95_seconds == (
        "histogram_quantile(0.95, sum by (le) "
        f"(rate(model_http_request_duration_seconds_bucket{{{sel}}}[300s])))"
    )


# --- the verdict --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("measured", "result", "reason"),
    [
        (Measured(2033, 0.0, 0.004), "passed", "2033 requests, error ratio 0.00%, p95 4 ms"),
        (Measured(2033, 0.02, 0.004), "failed", "error ratio 2.00% > 1.00%"),
        (Measured(2033, 0.0, 0.975), "failed", "p95 latency 975 ms > 250 ms"),
        (Measured(99, 0.0, 0.004), "inconclusive", "too few requests to judge: 99 < 100"),
        (Measured(None, None, None), "inconclusive", "no prediction requests"),
        (Measured(2033, 0.0, None), "inconclusive", "no data for p95 latency"),
        # A broken limit fails even when another value is missing (only 5xx: no latency).
        (Measured(500, 1.0, None), "failed", "error ratio 100.00% > 1.00%"),
    ],
)
def test_the_verdict(measured: Measured, result: str, reason: str) -> None:
    verdict = decide(measured, LIMITS)
    assert verdict.result == result
    assert reason in verdict.reason
    assert [c.name for c in verdict.checks] == ["requests", "error ratio", "p95 latency"]


def test_the_limit_itself_passes() -> None:
    assert decide(Measured(100, 0.01, 0.25), LIMITS).result == "passed"


# --- the API client -----------------------------------------------------------------------


def prometheus_answer(status: int, body: Any) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda method, url, headers: answer(status, url, content=content)


def vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"n": str(i)}, "value": [1.0, v]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            "refused the query (HTTP 400, bad_data): parse error at char 3",
        ),
        (503, b"Service Unavailable", "answered HTTP 503 for /api/v1/query"),
        (200, b"<html>", "not the query API's JSON"),
        (401, b"", "refused the request (HTTP 401): check PIPELINE_PROMETHEUS_TOKEN"),
        (200, vector("1", "2"), "2 series for a query meant to give one"),
    ],
)
def test_the_client_turns_every_failure_into_one_line(status: int, body: Any, message: str) -> None:
    client = PrometheusClient(
        "http://prom:9090", session=FakeTransport(prometheus_answer(status, body))
    )
    with pytest.raises(PrometheusError) as caught:
        client.value("up", T0)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_nan_and_no_series_are_no_data_never_a_number() -> None:
    for body in (vector("NaN"), vector()):
        client = PrometheusClient(
            "http://p:9090", session=FakeTransport(prometheus_answer(200, body))
        )
        assert client.value("x", T0) is None


def test_a_token_goes_as_a_bearer_and_never_over_plain_http() -> None:
    transport = FakeTransport(prometheus_answer(200, vector("3")))
    client = PrometheusClient("https://prom.example.internal", token="t0k", session=transport)
    assert client.value("up", T0) == 3.0
    assert transport.sent[0][2]["Authorization"] == "Bearer t0k"
    with pytest.raises(PrometheusError, match="refusing to send PIPELINE_PROMETHEUS_TOKEN"):
        PrometheusClient("http://prom.example.internal:9090", token="t0k")
    PrometheusClient("http://127.0.0.1:9090", token="t0k")  # loopback never leaves the host


# URLs a user may give for Prometheus, wrong in each way ``pipeline.io.urls`` knows, and
# what the one line says; the password of the first two must never be printed.
BAD_PROMETHEUS_URLS = [
    ("http://admin:S3cretPw@127.0.0.1:1", "carries credentials (user:password@ before the host)"),
    ("https://admin:S3cretPw@[::1]:9090/", "a token goes in PIPELINE_PROMETHEUS_TOKEN"),
    ("http://[::1:9090", "an IPv6 address must be written in brackets"),
    ("http://127.0.0.1:99999", "'http://127.0.0.1:99999' has an invalid port"),
    ("http://127.0.0.1:0", "has an invalid port (0; use 1-65535)"),
    ("http:///api", "has no host"),
    ("http://prom example:9090", "contains spaces or control characters"),
    ("ftp://prom.example.internal/", "is not a http/https URL"),
]
BAD_IDS = [u for u, _ in BAD_PROMETHEUS_URLS]


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        assert "S3cretPw" not in text
        assert "admin" not in text


@pytest.mark.parametrize(("url", "problem"), BAD_PROMETHEUS_URLS, ids=BAD_IDS)
def test_the_client_refuses_a_bad_url_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(PrometheusError) as caught:
        PrometheusClient(url, session=FakeTransport(prometheus_answer(200, vector("1"))))
    message = str(caught.value)
    assert message.startswith("Prometheus URL ")
    assert problem in message
    assert "\n" not in message
    assert_no_secret(message)


@pytest.mark.parametrize(("url", "problem"), BAD_PROMETHEUS_URLS, ids=BAD_IDS)
def test_the_prometheus_url_setting_is_checked_like_every_url(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_from_config({"prometheusUrl": url}, "prod")
    message = str(caught.value)
    assert message.startswith("stack prod: cv-platform:verification.prometheusUrl ")
    assert problem in message
    assert_no_secret(message)


def test_an_unreachable_prometheus_is_named_by_host_and_port() -> None:
    def refused(method: str, url: str, headers: Mapping[str, str]) -> Response:
        raise HttpConnectionError("connection refused")

    client = PrometheusClient("HTTP://[::1]:9090/", session=FakeTransport(refused))
    with pytest.raises(PrometheusError, match=r"^cannot reach Prometheus at \[::1\]:9090: "):
        client.value("up", T0)


# --- the command: window, record and errors -----------------------------------------------


class FakeProm:
    """A transport answering the three verification queries with fixed values; it
    remembers what was asked, and when for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = values
        self.asked: list[tuple[str, float]] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: Timeout,
        max_body: int = 16 << 20,
    ) -> Response:
        assert params is not None
        expr, at = params["query"], float(params["time"])
        self.asked.append((expr, at))
        key = (
            "p95"
            if expr.startswith("histogram_quantile")
            else "ratio"
            if expr.startswith("(")
            else "requests"
        )
        return answer(200, url, content=json.dumps(vector(self.values[key])).encode())


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PIPELINE_STORE", raising=False)
    monkeypatch.setenv("PIPELINE_ACTOR", "ci")
    (tmp_path / "Pulumi.yaml").write_bytes((PROJECT_ROOT / "Pulumi.yaml").read_bytes())
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "config:\n  cv-platform:namespace: cv-prod\n  cv-platform:verification:\n"
        "    prometheusUrl: http://prom.example.internal:9090\n    window: 5m\n"
    )
    store = open_store(None, Project(tmp_path))
    store.add(Deployment("prod", "succeeded", IMAGE, DIGEST, T0 - timedelta(minutes=3), T0))
    store.close()
    return tmp_path


def adapters(prom: FakeProm, clock: list[datetime]) -> Adapters:
    def now() -> datetime:
        return clock[0]

    def sleep(seconds: float) -> None:
        clock[0] += timedelta(seconds=seconds)

    def client(url: str) -> PrometheusClient:
        return PrometheusClient(url, session=prom)

    return Adapters(prometheus=client, now=now, sleep=sleep)


def test_a_young_deployment_is_waited_for_and_the_window_starts_at_it(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = FakeProm({"requests": "2033", "ratio": "0", "p95": "0.004"})
    clock = [T0 + timedelta(minutes=1)]
    assert main(["--project-dir", str(root), "verify", "prod"], adapters(prom, clock)) == 0
    out = capsys.readouterr().out
    assert "waiting 240 s for 300s of traffic after the deployment" in out
    assert '{namespace="cv-prod",app="model-server",version="4e1d07c"} over 300s' in out
    assert {at for _, at in prom.asked} == {(T0 + timedelta(minutes=5)).timestamp()}
    (check,) = open_store(None, Project(root)).verifications("prod")
    assert (check.since, check.until) == (T0, T0 + timedelta(minutes=5))
    assert (check.requests, check.error_ratio, check.p95_seconds) == (2033.0, 0.0, 0.004)
    assert (check.min_requests, check.max_error_ratio, check.max_p95_ms) == (100, 0.01, 250.0)
    assert check.actor == "ci"


def test_options_override_the_stack_settings(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = FakeProm({"requests": "40", "ratio": "0.02", "p95": "0.3"})
    clock = [T0 + timedelta(hours=1)]
    argv = ["--project-dir", str(root), "verify", "prod", "--window", "90s", "--min-requests",
            "30", "--max-error-ratio", "0.05", "--max-p95-ms", "500"]  # fmt: skip
    assert main(argv, adapters(prom, clock)) == 0
    assert "[90s]" in prom.asked[0][0]
    assert "waiting" not in capsys.readouterr().out


def test_a_failed_verification_is_exit_3_with_the_table(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = FakeProm({"requests": "500", "ratio": "0.2", "p95": "0.004"})
    clock = [T0 + timedelta(hours=1)]
    assert main(["--project-dir", str(root), "verify", "prod"], adapters(prom, clock)) == 3
    captured = capsys.readouterr()
    assert "CHECK        MEASURED  THRESHOLD  RESULT" in captured.out
    assert "error ratio  20.00%    <= 1.00%   FAIL" in captured.out
    assert captured.err == (
        "python -m pipeline verify: error: verification of prod (sha256:4d4d4d4d4d4d) failed: "
        "error ratio 20.00% > 1.00%; recorded verification #1\n"
    )
    assert main(["--project-dir", str(root), "history", "prod"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[1].split()[2:] == ["verify", "sha256:4d4d4d4d4d4d", "-", "failed:", "error",
                                   "ratio", "20.00%", ">", "1.00%"]  # fmt: skip


@pytest.mark.parametrize(
    ("prepare", "argv", "code", "message"),
    [
        ("no-url", [], 1, "no Prometheus to ask for prod: set cv-platform:verification"),
        ("failed", [], 1, "the last deployment of prod (finished 2026-03-02 10:00 UTC) failed"),
        (None, ["--no-record", "--rollback-on-failure"], 2, "drop --no-record"),
        (None, ["--selector", "{app=model}"], 2, "--selector '{app=model}': a value must be"),
        (None, ["--window", "1s"], 2, "--window must be from 2s to 24h"),
    ],
)
def test_what_cannot_be_verified_is_one_line(
    root: Path,
    capsys: pytest.CaptureFixture[str],
    prepare: str | None,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    if prepare == "no-url":
        (root / "Pulumi.prod.yaml").write_text("config:\n  cv-platform:namespace: cv-prod\n")
    if prepare == "failed":
        store = open_store(None, Project(root))
        finished = T0 + timedelta(hours=1)
        store.add(Deployment("prod", "failed", IMAGE, DIGEST, finished, finished))
        store.close()
    prom = FakeProm({"requests": "500", "ratio": "0", "p95": "0.004"})
    clock = [T0 + timedelta(hours=2)]
    done = main(["--project-dir", str(root), "verify", "prod", *argv], adapters(prom, clock))
    assert done == code
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
    assert open_store(None, Project(root)).verifications("prod") == []


def test_an_unreachable_prometheus_records_nothing(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(method: str, url: str, headers: Mapping[str, str]) -> Response:
        raise HttpConnectionError("connection refused")

    clock = [T0 + timedelta(hours=1)]

    def client(url: str) -> PrometheusClient:
        return PrometheusClient(url, session=FakeTransport(refused))

    base = adapters(FakeProm({}), clock)
    fake = Adapters(prometheus=client, now=base.now, sleep=base.sleep)
    assert main(["--project-dir", str(root), "verify", "prod"], fake) == 1
    assert capsys.readouterr().err == (
        "python -m pipeline verify: error: cannot reach Prometheus at "
        "prom.example.internal:9090: connection refused; nothing recorded\n"
    )


# --- --rollback-on-failure ------------------------------------------------------------------

OLD = "sha256:" + "0a" * 32
NEWER = "sha256:" + "0b" * 32
REPO = "registry.example.internal/cv/model"


def pin(root: Path, tag: str, digest: str) -> None:
    from pipeline.stacks.image import ImageSetting
    from pipeline.stacks.stackfile import write_image

    text = (root / "Pulumi.prod.yaml").read_text()
    if "cv-platform:image" not in text:
        text += (
            f"  cv-platform:image:\n    repository: {REPO}\n    tag: {tag}\n    digest: {digest}\n"
        )
        (root / "Pulumi.prod.yaml").write_text(text)
    write_image(root / "Pulumi.prod.yaml", ImageSetting(REPO, tag, digest))


def deployed_before(root: Path) -> None:
    """Prod ran ``OLD`` five hours before ``T0`` (never verified), and pins ``DIGEST`` now."""
    store = open_store(None, Project(root))
    earlier = T0 - timedelta(hours=5)
    store.add(Deployment("prod", "succeeded", f"{REPO}:old@{OLD}", OLD, earlier, earlier))
    store.close()
    pin(root, "4e1d07c", DIGEST)


def failing(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    prom = FakeProm({"requests": "500", "ratio": "0.5", "p95": "0.004"})
    clock = [T0 + timedelta(hours=1)]
    argv = ["--project-dir", str(root), "verify", "prod", "--rollback-on-failure"]
    code = main(argv, adapters(prom, clock))
    return code, capsys.readouterr().err


def test_without_a_verified_digest_the_rollback_goes_to_the_deployment_before(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed_before(root)
    code, err = failing(root, capsys)
    assert code == 3
    assert (
        "to the deployment before it (no earlier digest of the stack passed a verification)" in err
    )
    from pipeline.stacks.stackfile import read_image

    assert read_image(root / "Pulumi.prod.yaml").digest == OLD
    store = open_store(None, Project(root))
    (hold,) = store.holds("prod")
    assert hold.reason.startswith("verification failed (error ratio 50.00% > 1.00%); rolled back")
    (rollback,) = store.rollbacks("prod")
    assert (rollback.from_digest, rollback.to_digest) == (DIGEST, OLD)


def test_a_stack_file_that_moved_on_is_held_not_rolled_back(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin(root, "next", NEWER)  # promoted, not yet deployed
    before = (root / "Pulumi.prod.yaml").read_bytes()
    code, err = failing(root, capsys)
    assert code == 3
    assert "Pulumi.prod.yaml pins sha256:0b0b0b0b0b0b, not the deployed sha256:4d4d4d4d4d4d" in err
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    store = open_store(None, Project(root))
    assert store.rollbacks("prod") == []
    assert [h.action for h in store.holds("prod")] == ["placed"]


def test_a_first_deployment_that_fails_is_held_with_nothing_to_roll_back_to(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pin(root, "4e1d07c", DIGEST)  # the only deployment prod ever had
    before = (root / "Pulumi.prod.yaml").read_bytes()
    code, err = failing(root, capsys)
    assert code == 3  # a failed verification, not an error: CI stops, nothing deploys
    assert err.count("\n") == 1
    assert "verification of prod (sha256:4d4d4d4d4d4d) failed: error ratio 50.00%" in err
    assert "not rolled back: " in err
    assert "prod is on hold (hold #1; release: hold prod --release)" in err
    assert (root / "Pulumi.prod.yaml").read_bytes() == before
    store = open_store(None, Project(root))
    (hold,) = store.holds("prod")
    assert hold.reason.startswith("verification of sha256:4d4d4d4d4d4d failed: error ratio")
    assert store.rollbacks("prod") == []
    assert [v.result for v in store.verifications("prod")] == ["failed"]


def test_a_rollback_that_cannot_write_still_says_the_verification_failed_and_holds(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.errors import PipelineError
    from pipeline.stacks import stackfile

    deployed_before(root)

    def no_space(self: object, *args: object, **kwargs: object) -> object:
        raise PipelineError("Pulumi.prod.yaml: cannot write: no space left on device")

    monkeypatch.setattr(stackfile.LockedStack, "write", no_space)
    code, err = failing(root, capsys)
    assert code == 3
    assert err.count("\n") == 1
    assert "failed: error ratio 50.00% > 1.00%" in err
    assert "the rollback failed: Pulumi.prod.yaml: cannot write: no space left" in err
    assert "prod stays on hold" in err
    store = open_store(None, Project(root))
    assert [h.action for h in store.holds("prod")] == ["placed"]
    assert store.rollbacks("prod") == []


def test_a_digest_that_passed_once_and_failed_since_is_no_rollback_target(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store(None, Project(root))
    earliest, earlier = T0 - timedelta(hours=9), T0 - timedelta(hours=5)
    older = "sha256:" + "0c" * 32
    for digest, when in ((older, earliest), (OLD, earlier)):
        store.add(Deployment("prod", "succeeded", f"{REPO}:v@{digest}", digest, when, when))
    window = timedelta(minutes=5)
    store.add(Verification("prod", OLD, f"{REPO}:old@{OLD}", "passed", earlier, earlier + window))
    store.add(
        Verification("prod", OLD, f"{REPO}:old@{OLD}", "failed", earlier + window, T0 - window)
    )
    store.close()
    pin(root, "4e1d07c", DIGEST)
    code, err = failing(root, capsys)
    assert code == 3
    from pipeline.stacks.stackfile import read_image

    assert read_image(root / "Pulumi.prod.yaml").digest == older  # not OLD: it failed since
    assert "to the deployment before it" in err


# --- bad Prometheus URLs on the command line and in the stack file --------------------------


@pytest.mark.parametrize(("url", "problem"), BAD_PROMETHEUS_URLS, ids=BAD_IDS)
def test_a_bad_prometheus_option_is_one_line_before_anything_is_asked(
    root: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    prom = FakeProm({"requests": "500", "ratio": "0", "p95": "0.004"})
    clock = [T0 + timedelta(hours=1)]
    argv = ["--project-dir", str(root), "verify", "prod", "--prometheus", url, "--no-record"]
    result = cli(capsys, *argv, adapters=adapters(prom, clock))
    line = assert_refused(result, "error: --prometheus ")
    assert problem in line
    assert_no_secret(result.out, result.err)
    assert prom.asked == []


@pytest.mark.parametrize(("url", "problem"), BAD_PROMETHEUS_URLS, ids=BAD_IDS)
def test_a_bad_prometheus_url_setting_is_one_line_naming_the_key(
    root: Path, capsys: pytest.CaptureFixture[str], url: str, problem: str
) -> None:
    (root / "Pulumi.prod.yaml").write_text(
        "config:\n  cv-platform:namespace: cv-prod\n  cv-platform:verification:\n"
        f"    prometheusUrl: {json.dumps(url)}\n"
    )
    prom = FakeProm({"requests": "500", "ratio": "0", "p95": "0.004"})
    clock = [T0 + timedelta(hours=1)]
    argv = ["--project-dir", str(root), "verify", "prod", "--no-record"]
    result = cli(capsys, *argv, adapters=adapters(prom, clock))
    line = assert_refused(result, "cv-platform:verification.prometheusUrl ")
    assert problem in line
    assert_no_secret(result.out, result.err)
    assert prom.asked == []


def test_the_measured_line_names_the_prometheus_asked(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prom = FakeProm({"requests": "2033", "ratio": "0", "p95": "0.004"})
    clock = [T0 + timedelta(hours=1)]
    argv = ["--project-dir", str(root), "verify", "prod", "--no-record", "--prometheus",
            "https://prom.example.internal:9443/"]  # fmt: skip
    assert main(argv, adapters(prom, clock)) == 0
    out = capsys.readouterr().out
    assert "UTC (https://prom.example.internal:9443)" in out
