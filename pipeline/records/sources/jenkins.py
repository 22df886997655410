"""Read one finished Jenkins Pipeline build: stage times and test counts.

Two documented endpoints of a build (``BUILD_URL`` such as
``https://ci.example/job/cv-platform/42/``):

* ``BUILD_URL/wfapi/describe`` (Pipeline Stage View plugin REST API): the run's
  ``status``, ``startTimeMillis``, ``durationMillis``, ``queueDurationMillis``
  and its ``stages`` (``name``, ``status``, ``startTimeMillis``,
  ``durationMillis``, ``pauseDurationMillis``). Statuses: SUCCESS, FAILED,
  UNSTABLE, ABORTED, NOT_EXECUTED, IN_PROGRESS, PAUSED_PENDING_INPUT.
* ``BUILD_URL/testReport/api/json`` (JUnit plugin): ``passCount``,
  ``failCount``, ``skipCount`` or, failing those, ``suites[].cases[].status``.
  404 means the build published no test report.

Stages are mapped to build / test / deploy by name (shell-style patterns,
case-insensitive; several stages in one category add up). A stage's time is
its ``durationMillis`` minus ``pauseDurationMillis`` (waiting for an input step
is not work), and only for stages that ran to an end (SUCCESS, FAILED,
UNSTABLE); NOT_EXECUTED, ABORTED and unfinished stages have no time. The
run's queue time is never build time. A build that is still running is
refused: its numbers are not final.

Parsing is pure (``parse_describe``, ``parse_test_report``); HTTP goes
through an injectable ``httpclient.Transport`` (an ``httpclient.Session`` by
default: both calls share one kept-alive connection; ``~/.netrc`` is not read).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pipeline.io.http import (
    MIB,
    HttpError,
    Session,
    Transport,
    basic_auth,
    failure,
    is_loopback,
)
from pipeline.io.jsontext import JsonError
from pipeline.io.urls import BadUrl, has_userinfo, shown, split
from pipeline.records.sources.jenkins_report import JenkinsError, millis, parse_test_report
from pipeline.records.sources.junit import TestCounts

DEFAULT_BUILD_STAGES: tuple[str, ...] = ("Build",)
DEFAULT_TEST_STAGES: tuple[str, ...] = ("Test",)
DEFAULT_DEPLOY_STAGES: tuple[str, ...] = ("Deploy staging", "Deploy prod")
ENV_BUILD_STAGES = "PIPELINE_JENKINS_BUILD_STAGES"
ENV_TEST_STAGES = "PIPELINE_JENKINS_TEST_STAGES"
ENV_DEPLOY_STAGES = "PIPELINE_JENKINS_DEPLOY_STAGES"
ENV_ALLOW_HTTP = "PIPELINE_JENKINS_ALLOW_HTTP"
ENV_TIMEOUT = "PIPELINE_JENKINS_TIMEOUT"
DEFAULT_TIMEOUT = 15.0
# The run's description (stages) and its test report (one status per case: a million
# cases fit) are capped at what they can legitimately be.
MAX_DESCRIBE_BYTES = 16 * MIB
MAX_TEST_REPORT_BYTES = 64 * MIB

TIMED_STATUSES = frozenset({"SUCCESS", "FAILED", "UNSTABLE"})
UNFINISHED_STATUSES = frozenset({"IN_PROGRESS", "PAUSED_PENDING_INPUT", "QUEUED"})
_TEST_REPORT_TREE = "passCount,failCount,skipCount,duration,suites[cases[status]]"


def split_names(text: str) -> tuple[str, ...]:
    """Comma-separated stage names or patterns; blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class StageMap:
    """Which stage names count as build, test and deploy time (patterns allowed)."""

    build: tuple[str, ...] = DEFAULT_BUILD_STAGES
    test: tuple[str, ...] = DEFAULT_TEST_STAGES
    deploy: tuple[str, ...] = DEFAULT_DEPLOY_STAGES

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        build: str | None = None,
        test: str | None = None,
        deploy: str | None = None,
    ) -> StageMap:
        """Flags win over the environment, which wins over the defaults."""
        source = os.environ if env is None else env

        def pick(flag: str | None, var: str, default: tuple[str, ...]) -> tuple[str, ...]:
            text = flag if flag is not None else source.get(var)
            if text is None:
                return default
            names = split_names(text)
            if not names:
                raise JenkinsError(f"{var}: no stage names given")
            return names

        return cls(
            build=pick(build, ENV_BUILD_STAGES, DEFAULT_BUILD_STAGES),
            test=pick(test, ENV_TEST_STAGES, DEFAULT_TEST_STAGES),
            deploy=pick(deploy, ENV_DEPLOY_STAGES, DEFAULT_DEPLOY_STAGES),
        )

    def category(self, stage: str) -> str | None:
        name = stage.casefold()
        for category, patterns in (
            ("build", self.build),
            ("test", self.test),
            ("deploy", self.deploy),
        ):
            if any(fnmatch.fnmatchcase(name, p.casefold()) for p in patterns):
                return category
        return None


@dataclass(frozen=True)
class StageTime:
    name: str
    status: str
    seconds: float | None
    category: str | None


@dataclass(frozen=True)
class JenkinsBuild:
    url: str
    name: str
    status: str
    started: datetime | None
    queue_seconds: float | None
    build_seconds: float | None
    test_seconds: float | None
    deploy_seconds: float | None
    stages: tuple[StageTime, ...]
    tests: TestCounts | None = None
    notes: tuple[str, ...] = field(default=())


def _started_at(value: Any, url: str) -> datetime | None:
    """``startTimeMillis`` as a time; a number no build can have started at is refused."""
    start_ms = millis(value)
    if start_ms is None or not start_ms > 0:
        return None
    try:
        return datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise JenkinsError(
            f"{shown(url) or 'wfapi/describe'}: startTimeMillis {value!r:.40} is not a time "
            "(out of the calendar's range): is this a Jenkins build?"
        ) from None


def parse_describe(data: Any, stage_map: StageMap, url: str = "") -> JenkinsBuild:
    """A ``wfapi/describe`` document as a finished build; refuses unfinished ones."""
    if not isinstance(data, dict):
        raise JenkinsError(f"{url or 'wfapi/describe'}: expected a JSON object")
    status = str(data.get("status") or "").upper()
    name = str(data.get("name") or data.get("id") or "build")
    if not status:
        raise JenkinsError(f"{url}: the build has no status; is this a Pipeline job?")
    if status in UNFINISHED_STATUSES:
        raise JenkinsError(
            f"{name} at {url or 'the given URL'} is still {status}: "
            "record it when it has finished (nothing recorded)"
        )
    stages_raw = data.get("stages") or []
    if not isinstance(stages_raw, list):
        raise JenkinsError(f"{url}: 'stages' is not a list")
    stages: list[StageTime] = []
    totals: dict[str, list[float]] = {"build": [], "test": [], "deploy": []}
    unmapped: list[str] = []
    untimed: list[str] = []
    for raw in stages_raw:
        if not isinstance(raw, dict):
            continue
        stage_name = str(raw.get("name") or "")
        stage_status = str(raw.get("status") or "").upper()
        category = stage_map.category(stage_name)
        seconds: float | None = None
        duration = millis(raw.get("durationMillis"))
        if stage_status in TIMED_STATUSES and duration is not None:
            pause = millis(raw.get("pauseDurationMillis")) or 0.0
            seconds = max(0.0, duration - pause) / 1000
        if category is None:
            unmapped.append(stage_name)
        elif seconds is None:
            untimed.append(f"{stage_name} ({stage_status or 'no status'})")
        else:
            totals[category].append(seconds)
        stages.append(StageTime(stage_name, stage_status, seconds, category))

    def total(category: str) -> float | None:
        values = totals[category]
        return sum(values) if values else None

    notes: list[str] = []
    if unmapped:
        notes.append("stages not counted as build/test/deploy: " + ", ".join(unmapped))
    if untimed:
        notes.append("stages without a time (did not run to an end): " + ", ".join(untimed))
    started = _started_at(data.get("startTimeMillis"), url)
    queue_ms = millis(data.get("queueDurationMillis"))
    return JenkinsBuild(
        url=url,
        name=name,
        status=status,
        started=started,
        queue_seconds=None if queue_ms is None else queue_ms / 1000,
        build_seconds=total("build"),
        test_seconds=total("test"),
        deploy_seconds=total("deploy"),
        stages=tuple(stages),
        notes=tuple(notes),
    )


def normalize_build_url(url: str) -> str:
    """``https://host/job/x/42/`` from what a user pastes (a describe URL is fine too)."""
    text = url.strip()
    if has_userinfo(text):
        raise JenkinsError(
            "--from-jenkins: do not put credentials in the URL; set JENKINS_USER and JENKINS_TOKEN"
        )
    try:
        parts = split(text)
    except BadUrl as exc:
        raise JenkinsError(f"--from-jenkins {exc}: expected an http(s) build URL") from None
    base = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    for suffix in ("/wfapi/describe", "/wfapi", "/testReport/api/json", "/api/json"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base + "/"


def credentials(env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    source = os.environ if env is None else env
    user = source.get("JENKINS_USER") or ""
    token = source.get("JENKINS_TOKEN") or ""
    if bool(user) != bool(token):
        missing = "JENKINS_TOKEN" if user else "JENKINS_USER"
        raise JenkinsError(f"JENKINS_USER and JENKINS_TOKEN go together; {missing} is not set")
    return (user, token) if user else None


class JenkinsClient:
    def __init__(
        self,
        auth: tuple[str, str] | None = None,
        session: Transport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        allow_plain_http: bool = False,
    ) -> None:
        self._auth = auth
        self._session = session or Session()
        self._timeout = timeout
        self._allow_plain_http = allow_plain_http

    def _get_json(self, url: str, max_body: int, *, missing_ok: bool = False) -> Any:
        parts = urlsplit(url)
        if (
            self._auth is not None
            and parts.scheme == "http"
            and not self._allow_plain_http
            and not is_loopback(parts.hostname or "")
        ):
            raise JenkinsError(
                f"refusing to send Jenkins credentials over plain http to {parts.hostname}; "
                f"use https (or set {ENV_ALLOW_HTTP}=1 on a trusted network)"
            )
        headers = {"Accept": "application/json"}
        if self._auth is not None:
            headers["Authorization"] = basic_auth(*self._auth)
        try:
            response = self._session.request(
                "GET", url, headers=headers, timeout=self._timeout, max_body=max_body
            )
        except HttpError as exc:
            raise JenkinsError(failure(exc, f"Jenkins at {parts.netloc}")) from None
        status = response.status_code
        if status == 404 and missing_ok:
            return None
        if status in (401, 403):
            raise JenkinsError(
                f"Jenkins refused the request (HTTP {status}) for {parts.path}: "
                "check JENKINS_USER and JENKINS_TOKEN and the job's read permission"
            )
        if status == 404:
            raise JenkinsError(f"no such build or no Pipeline REST API at {shown(url)} (HTTP 404)")
        if status >= 400:
            raise JenkinsError(f"Jenkins answered HTTP {status} for {shown(url)}")
        try:
            return response.json()
        except JsonError as exc:
            raise JenkinsError(f"{shown(url)}: the answer is not usable JSON ({exc})") from None
        except ValueError:
            raise JenkinsError(
                f"{shown(url)}: the answer is not JSON (is this a Jenkins URL?)"
            ) from None

    def read_build(self, build_url: str, stage_map: StageMap) -> JenkinsBuild:
        base = normalize_build_url(build_url)
        describe = self._get_json(base + "wfapi/describe", MAX_DESCRIBE_BYTES)
        build = parse_describe(describe, stage_map, url=base)
        report = self._get_json(
            base + "testReport/api/json?tree=" + _TEST_REPORT_TREE,
            MAX_TEST_REPORT_BYTES,
            missing_ok=True,
        )
        notes = list(build.notes)
        tests: TestCounts | None = None
        if report is None:
            notes.append("the build published no JUnit test report")
        else:
            tests = parse_test_report(report)
        return replace(build, tests=tests, notes=tuple(notes))


def client_from_env(
    env: Mapping[str, str] | None = None, session: Transport | None = None
) -> JenkinsClient:
    """Credentials, timeout (``PIPELINE_JENKINS_TIMEOUT`` seconds, default 15) from the env."""
    source = os.environ if env is None else env
    raw = source.get(ENV_TIMEOUT, "").strip()
    timeout = DEFAULT_TIMEOUT
    if raw:
        try:
            timeout = float(raw)
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 600:
            raise JenkinsError(f"{ENV_TIMEOUT}={raw!r}: expected seconds between 0 and 600")
    return JenkinsClient(
        auth=credentials(source),
        session=session,
        timeout=timeout,
        allow_plain_http=source.get(ENV_ALLOW_HTTP, "") in ("1", "true", "yes"),
    )


__all__ = [
    "DEFAULT_TIMEOUT",
    "JenkinsBuild",
    "JenkinsClient",
    "JenkinsError",
    "StageMap",
    "StageTime",
    "client_from_env",
    "credentials",
    "normalize_build_url",
    "parse_describe",
    "parse_test_report",
    "split_names",
]
