"""The PrometheusRule's groups: recording rules and alerts for one environment.

Every expression selects its own namespace and service, so several environments
can load their groups into one Prometheus without two groups writing the same
recorded series. Error ratio and latency cover only the prediction endpoint:
probes of ``/healthz`` (200) would dilute the ratio, and ``/readyz`` 503s of a pod
that is not ready (the Service sends it nothing) would inflate it.

Severities and ``for:`` are in ``RATIONALE`` (docs/monitoring.md shows them). The
``Timing`` of the rules is a parameter so that a test can run the same
expressions with short ``for:`` against a live Prometheus.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Literal

Rule = dict[str, Any]
Group = dict[str, Any]
KSM_JOB: Final = "kube-state-metrics"
_LEVEL: Final = "namespace_service_endpoint"
READINESS_SERVED: Final = "/readyz"


@dataclass(frozen=True)
class Timing:
    """The rate window and every ``for:``; the defaults are the production choices."""

    window: str = "5m"  # >= 4 scrape intervals, so a missed scrape does not blank a rate
    restart_window: str = "15m"
    error_for: str = "5m"
    p95_for: str = "10m"
    p99_for: str = "10m"
    target_down_for: str = "5m"
    absent_for: str = "5m"
    no_ready_for: str = "2m"
    not_loaded_for: str = "2m"


PRODUCTION = Timing()


def fast(seconds: int) -> Timing:
    """Every ``for:`` ``seconds`` long (a live test with 1 s scrapes); the same windows,
    so the recorded series keep their names (the dashboard reads them)."""
    short = f"{seconds}s"
    return replace(
        PRODUCTION,
        error_for=short,
        p95_for=short,
        p99_for=short,
        target_down_for=short,
        absent_for=short,
        no_ready_for=short,
        not_loaded_for=short,
    )


RATIONALE: Final[Mapping[str, str]] = {
    "ModelServerHighErrorRatio": (
        "critical, for 5m: users get errors now; 5 minutes of a 5-minute ratio ride out "
        "a single bad scrape or a short burst"
    ),
    "ModelServerLatencyP95High": (
        "critical, for 10m: 1 request in 20 over budget is broad user impact; 10 minutes "
        "let the autoscaler absorb a load step first"
    ),
    "ModelServerLatencyP99High": (
        "warning, for 10m: a slow tail (1 in 100) is worth a ticket, not a page; the p95 "
        "alert pages when it spreads"
    ),
    "ModelServerTargetDown": (
        "warning, for 5m: one pod cannot be scraped while others may serve; "
        "NoReadyReplicas and TargetAbsent page when it is all of them"
    ),
    "ModelServerTargetAbsent": (
        "critical, for 5m: no target at all is no pod or a broken ServiceMonitor, and every "
        "other alert here is then blind; 5 minutes because a Prometheus restart has no "
        "target for its first seconds"
    ),
    "ModelServerNoReadyReplicas": (
        "critical, for 2m: the Service has no endpoint, a full outage; a healthy rollout "
        "never gets here (maxUnavailable 0)"
    ),
    "ModelServerContainerRestarted": (
        "warning, no for: the server is stateless and should never restart; the 15-minute "
        "increase keeps it visible that long"
    ),
    "ModelServerOOMKilled": (
        "warning, no for: the last-terminated reason stays set, so it is joined with a "
        "restart in the last 15 minutes; repeated kills show as NoReadyReplicas"
    ),
    "ModelServerModelNotLoaded": (
        "warning, for 2m: the server loads its model once and never retries, so a scraped "
        "pod without model_info (or answering 503 on /readyz) stays useless until replaced; "
        "readiness keeps it out of the Service, and NoReadyReplicas pages when no pod is left"
    ),
}


@dataclass(frozen=True)
class RecordNames:
    """Names of the recording rules, level:metric:operations, for one rate window."""

    window: str

    @property
    def requests(self) -> str:
        return f"namespace_service_endpoint:model_http_requests:rate{self.window}"

    @property
    def errors(self) -> str:
        return f"namespace_service_endpoint:model_http_requests_5xx:rate{self.window}"

    @property
    def error_ratio(self) -> str:
        return f"namespace_service_endpoint:model_http_requests_5xx:ratio_rate{self.window}"

    @property
    def buckets(self) -> str:
        return f"{_LEVEL}:model_http_request_duration_seconds_bucket:rate{self.window}"

    def quantile(self, q: int) -> str:
        return f"{_LEVEL}:model_http_request_duration_seconds:p{q}_rate{self.window}"


@dataclass(frozen=True)
class Budgets:
    error_ratio: float
    p95_seconds: float
    p99_seconds: float


def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g}ms"


def _alert(
    name: str,
    expr: str,
    duration: str,
    severity: Literal["critical", "warning"],
    annotations: tuple[str, str, str],
) -> Rule:
    rule: Rule = {"alert": name, "expr": expr}
    if duration not in ("", "0s"):
        rule["for"] = duration
    rule["labels"] = {"severity": severity}
    summary, description, runbook = annotations
    rule["annotations"] = {"summary": summary, "description": description, "runbook": runbook}
    return rule


def recording_rules(sel: str, names: RecordNames, window: str) -> list[Rule]:
    by = "namespace, service, endpoint"
    rules: list[Rule] = [
        {
            "record": names.requests,
            "expr": f"sum by ({by}) (rate(model_http_requests_total{{{sel}}}[{window}]))",
        },
        {
            "record": names.errors,
            "expr": (
                f'sum by ({by}) (rate(model_http_requests_total{{{sel},status=~"5.."}}[{window}]))'
            ),
        },
        {
            # 0, not "no data", while an endpoint has traffic but no 5xx series yet.
            "record": names.error_ratio,
            "expr": (
                f"({names.errors}{{{sel}}} or 0 * {names.requests}{{{sel}}})"
                f" / {names.requests}{{{sel}}}"
            ),
        },
        {
            "record": names.buckets,
            "expr": (
                f"sum by ({by}, le) "
                f"(rate(model_http_request_duration_seconds_bucket{{{sel}}}[{window}]))"
            ),
        },
    ]
    for q in (50, 95, 99):
        rules.append(
            {
                "record": names.quantile(q),
                "expr": f"histogram_quantile({q / 100}, {names.buckets}{{{sel}}})",
            }
        )
    return rules


def alerting_rules(
    namespace: str, service: str, predict: str, budgets: Budgets, timing: Timing
) -> list[Rule]:
    t = timing
    names = RecordNames(t.window)
    sel = f'namespace="{namespace}",service="{service}"'
    on_predict = f'{sel},endpoint="{predict}"'
    ksm = f'job="{KSM_JOB}",namespace="{namespace}",container="{service}"'
    where = "{{ $labels.namespace }}/{{ $labels.service }}"
    pod = "{{ $labels.namespace }}/{{ $labels.pod }}"
    logs = f"kubectl -n {namespace} logs -l app.kubernetes.io/name={service} --tail=100"
    restarts = f"increase(kube_pod_container_status_restarts_total{{{ksm}}}[{t.restart_window}])"
    by_pod = "namespace, service, pod"
    return [
        _alert(
            "ModelServerHighErrorRatio",
            f"{names.error_ratio}{{{on_predict}}} > {budgets.error_ratio:g}",
            t.error_for,
            "critical",
            (
                f"More than {_percent(budgets.error_ratio)} of {predict} requests to {where} "
                "fail with 5xx.",
                f"{{{{ $value | humanizePercentage }}}} of {predict} requests to {where} "
                f"answered 5xx over the last {t.window} "
                f"(threshold {_percent(budgets.error_ratio)}).",
                f"Read /readyz and the logs ({logs}); if it began with a deployment, roll "
                "back: python -m pipeline rollback STACK, then pulumi up -s STACK.",
            ),
        ),
        _alert(
            "ModelServerLatencyP95High",
            f"{names.quantile(95)}{{{on_predict}}} > {budgets.p95_seconds:g}",
            t.p95_for,
            "critical",
            (
                f"{predict} p95 latency of {where} is over its {_ms(budgets.p95_seconds)} budget.",
                f"p95 latency of {predict} on {where} is {{{{ $value | humanizeDuration }}}} "
                f"over the last {t.window} (budget {_ms(budgets.p95_seconds)}).",
                "Compare with the request rate and the pods' CPU throttling; scale out "
                "(cv-platform:replicas) or roll back if a new image or model is slower.",
            ),
        ),
        _alert(
            "ModelServerLatencyP99High",
            f"{names.quantile(99)}{{{on_predict}}} > {budgets.p99_seconds:g}",
            t.p99_for,
            "warning",
            (
                f"{predict} p99 latency of {where} is over its {_ms(budgets.p99_seconds)} budget.",
                f"p99 latency of {predict} on {where} is {{{{ $value | humanizeDuration }}}} "
                f"over the last {t.window} (budget {_ms(budgets.p99_seconds)}).",
                "Look for large batches (cv-platform:maxBatchSize), CPU throttling or a noisy "
                "node; a ticket, not a page, unless the p95 alert fires too.",
            ),
        ),
        _alert(
            "ModelServerTargetDown",
            f"up{{{sel}}} == 0",
            t.target_down_for,
            "warning",
            (
                f"Prometheus cannot scrape model server pod {pod}.",
                f"Scrapes of {{{{ $labels.instance }}}} ({pod}) have failed for "
                f"{t.target_down_for}.",
                "kubectl -n {{ $labels.namespace }} describe pod {{ $labels.pod }}; check that "
                "the NetworkPolicy admits Prometheus (cv-platform:monitoring) to port http.",
            ),
        ),
        _alert(
            "ModelServerTargetAbsent",
            f"absent(up{{{sel}}})",
            t.absent_for,
            "critical",
            (
                f"No scrape target for {namespace}/{service}: no pod, or monitoring is blind.",
                f"Prometheus has had no target for service {service} in namespace "
                f"{namespace} for {t.absent_for}.",
                f"kubectl -n {namespace} get endpoints,servicemonitor {service}; check the "
                "ServiceMonitor's labels against the Prometheus's serviceMonitorSelector "
                "(cv-platform:monitoring.selectorLabel).",
            ),
        ),
        _alert(
            "ModelServerNoReadyReplicas",
            f'kube_deployment_status_replicas_available{{job="{KSM_JOB}",'
            f'namespace="{namespace}",deployment="{service}"}} == 0',
            t.no_ready_for,
            "critical",
            (
                "Deployment {{ $labels.namespace }}/{{ $labels.deployment }} has no ready replica.",
                "{{ $labels.namespace }}/{{ $labels.deployment }} has had no available "
                f"replica for {t.no_ready_for}: every request to the Service fails.",
                f"kubectl -n {namespace} get pods; read /readyz (is the model loaded?) and "
                "the events; roll back: python -m pipeline rollback STACK.",
            ),
        ),
        _alert(
            "ModelServerContainerRestarted",
            f"{restarts} > 0",
            "0s",
            "warning",
            (
                f"Model server container {pod} restarted.",
                f"{pod} ({{{{ $labels.container }}}}) restarted "
                f'{{{{ $value | printf "%.0f" }}}} time(s) in the last {t.restart_window}.',
                "kubectl -n {{ $labels.namespace }} logs {{ $labels.pod }} --previous; the "
                "pod's last state says why (liveness probe, OOM, exit code).",
            ),
        ),
        _alert(
            "ModelServerOOMKilled",
            "max by (namespace, pod, container) "
            f'(kube_pod_container_status_last_terminated_reason{{{ksm},reason="OOMKilled"}}) == 1'
            f" and on (namespace, pod, container) {restarts} > 0",
            "0s",
            "warning",
            (
                f"Model server container {pod} was OOM-killed.",
                f"{pod} ({{{{ $labels.container }}}}) was killed for exceeding its memory "
                f"limit and restarted in the last {t.restart_window}.",
                "Compare its memory use with cv-platform:memoryLimit; large batches raise it "
                "(cv-platform:maxBatchSize): raise the limit or lower the batch size.",
            ),
        ),
        _alert(
            "ModelServerModelNotLoaded",
            f"(max by ({by_pod}) (up{{{sel}}} == 1) unless on ({by_pod}) "
            f"max by ({by_pod}) (model_info{{{sel}}}))"
            f" or (sum by ({by_pod}) (rate(model_http_requests_total"
            f'{{{sel},endpoint="{READINESS_SERVED}",status="503"}}[{t.window}])) > 0)',
            t.not_loaded_for,
            "warning",
            (
                f"Model server pod {pod} has no model loaded.",
                f"{pod} is scraped but exports no model_info, or its /readyz answers 503: it "
                "will not become ready by itself.",
                f"kubectl -n {namespace} logs {{{{ $labels.pod }}}} | grep 'model not loaded'; "
                "check cv-platform:modelName and that the image holds the model.",
            ),
        ),
    ]


def rule_groups(
    namespace: str,
    service: str,
    predict: str,
    budgets: Budgets,
    timing: Timing = PRODUCTION,
) -> list[Group]:
    """The recording group, then the alerting group, named ``SERVICE.NAMESPACE.*``."""
    sel = f'namespace="{namespace}",service="{service}"'
    names = RecordNames(timing.window)
    return [
        {
            "name": f"{service}.{namespace}.recording",
            "rules": recording_rules(sel, names, timing.window),
        },
        {
            "name": f"{service}.{namespace}.alerts",
            "rules": alerting_rules(namespace, service, predict, budgets, timing),
        },
    ]


__all__ = ["PRODUCTION", "RATIONALE", "Budgets", "RecordNames", "Timing", "fast", "rule_groups"]
