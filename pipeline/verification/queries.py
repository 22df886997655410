"""The PromQL a verification asks: prediction requests, their 5xx share and p95 latency.

Over a window of ``W`` evaluated at the window's end, for the series the selector
picks on the prediction endpoint (probes and scrapes are not traffic):

- requests: ``sum(increase(model_http_requests_total{...}[W]))``;
- error ratio: the 5xx requests over all of them, ``or vector(0)`` so that a
  deployment with traffic and no 5xx series yet reads 0, not "no data";
- p95: ``histogram_quantile(0.95, ...)`` over the latency histogram's buckets. It
  interpolates inside a bucket, so a budget on a bucket bound is exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.verification.selector import Matcher, render_selector
from pipeline.verification.settings import format_duration

REQUESTS_METRIC = "model_http_requests_total"
LATENCY_BUCKETS_METRIC = "model_http_request_duration_seconds_bucket"


@dataclass(frozen=True)
class Queries:
    requests: str
    error_ratio: str
    p95_seconds: str


def verification_queries(
    matchers: Sequence[Matcher], predict_path: str, window_seconds: float
) -> Queries:
    window = format_duration(window_seconds)
    predict = Matcher("endpoint", "=", predict_path)
    errors = Matcher("status", "=~", "5..")
    base = [m for m in matchers if m.name != "endpoint"]
    selected = render_selector([*base, predict])
    failing = render_selector([*base, predict, errors])
    total = f"sum(increase({REQUESTS_METRIC}{selected}[{window}]))"
    return Queries(
        requests=total,
        error_ratio=f"(sum(increase({REQUESTS_METRIC}{failing}[{window}])) or vector(0)) / {total}",
        p95_seconds=(
            "histogram_quantile(0.95, sum by (le) "
            f"(rate({LATENCY_BUCKETS_METRIC}{selected}[{window}])))"
        ),
    )


__all__ = ["LATENCY_BUCKETS_METRIC", "REQUESTS_METRIC", "Queries", "verification_queries"]
