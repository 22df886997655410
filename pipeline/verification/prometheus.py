"""The Prometheus HTTP API (``/api/v1/query`` and ``/api/v1/query_range``), on the
pipeline's one HTTP client.

Every failure is a ``PrometheusError`` (exit 1, one line): no answer, an HTTP
error, a query Prometheus refused (its ``errorType`` and ``error``), an answer that
is not the API's JSON. A sample that is NaN or an empty result is "no data"
(None), never a number. With ``PIPELINE_PROMETHEUS_TOKEN`` set, requests carry it
as a bearer token, and only over https or to a loopback address. The base URL
follows ``pipeline.io.urls``' rules and carries no credentials (the token is the way to
authenticate); messages name the server as host:port, never with userinfo.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.errors import PipelineError
from pipeline.io.http import HttpError, Session, Transport, failure, is_loopback
from pipeline.io.urls import split
from pipeline.verification.settings import ENV_TOKEN, prometheus_url_problem

TIMEOUT = (5.0, 30.0)  # connect, read


class PrometheusError(PipelineError):
    """Prometheus could not be asked, or refused the query."""


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    values: tuple[tuple[float, float], ...]  # (unix time, value); NaN kept as NaN


class PrometheusClient:
    def __init__(
        self, base_url: str, token: str | None = None, session: Transport | None = None
    ) -> None:
        problem = prometheus_url_problem(base_url)
        if problem:
            raise PrometheusError(f"Prometheus URL {problem}")
        parts = split(base_url)
        assert parts.hostname is not None  # split checked it
        scheme = parts.scheme.lower()
        if token and scheme == "http" and not is_loopback(parts.hostname):
            raise PrometheusError(
                f"refusing to send {ENV_TOKEN} over plain http to {parts.hostname}; use https"
            )
        self.base_url = base_url.rstrip("/")
        self._where = f"Prometheus at {parts.netloc}"  # no userinfo: refused above
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._session = session or Session()

    def _data(self, path: str, params: Mapping[str, str]) -> Any:
        try:
            response = self._session.request(
                "GET", self.base_url + path, headers=self._headers, params=params, timeout=TIMEOUT
            )
        except HttpError as exc:
            raise PrometheusError(failure(exc, self._where)) from None
        try:
            body: Any = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            body = None
        status = response.status_code
        if isinstance(body, dict) and body.get("status") == "error":
            kind = body.get("errorType") or "error"
            detail = " ".join(str(body.get("error") or "").split())
            raise PrometheusError(
                f"{self._where} refused the query (HTTP {status}, {kind}): {detail}"
            )
        if status in (401, 403):
            raise PrometheusError(
                f"{self._where} refused the request (HTTP {status}): check {ENV_TOKEN}"
            )
        if status >= 400 or not isinstance(body, dict) or body.get("status") != "success":
            raise PrometheusError(
                f"{self._where} answered HTTP {status} for {path}, not the query API's JSON"
            )
        return body.get("data")

    def query(self, expr: str, at: datetime) -> list[Series]:
        """An instant query at ``at``: one series per result (a scalar has no labels)."""
        data = self._data("/api/v1/query", {"query": expr, "time": f"{at.timestamp():.3f}"})
        return _series(data, "vector")

    def query_range(
        self, expr: str, start: datetime, end: datetime, step_seconds: float
    ) -> list[Series]:
        """A range query from ``start`` to ``end`` every ``step_seconds`` (Grafana's panels)."""
        params = {
            "query": expr,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step_seconds:g}",
        }
        return _series(self._data("/api/v1/query_range", params), "matrix")

    def value(self, expr: str, at: datetime) -> float | None:
        """The one number an aggregating query gives at ``at``; None for no data or NaN."""
        found = self.query(expr, at)
        if not found:
            return None
        if len(found) > 1:
            raise PrometheusError(
                f"{self._where}: {len(found)} series for a query meant to give one: {expr}"
            )
        number = found[0].values[-1][1]
        return None if math.isnan(number) else number

    def close(self) -> None:
        if isinstance(self._session, Session):
            self._session.close()


def _series(data: Any, expected: str) -> list[Series]:
    try:
        kind = data["resultType"]
        result = data["result"]
        if kind == "scalar":
            return [Series({}, ((float(result[0]), float(result[1])),))]
        if kind not in (expected, "vector", "matrix"):
            raise ValueError(f"result type {kind!r}")
        found = []
        for item in result:
            points = item["values"] if "values" in item else [item["value"]]
            found.append(
                Series(
                    {str(k): str(v) for k, v in item["metric"].items()},
                    tuple((float(t), float(v)) for t, v in points),
                )
            )
        return found
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise PrometheusError(f"Prometheus answered an unexpected result: {exc}") from None


def client_from_env(base_url: str, env: Mapping[str, str] | None = None) -> PrometheusClient:
    source = os.environ if env is None else env
    return PrometheusClient(base_url, token=source.get(ENV_TOKEN) or None)


__all__ = ["ENV_TOKEN", "PrometheusClient", "PrometheusError", "Series", "client_from_env"]
