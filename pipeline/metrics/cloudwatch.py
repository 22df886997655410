"""Put the metrics to CloudWatch (``put_metric_data``), with the stacks as a dimension.

boto3 is imported only when asked for; credentials, region and endpoint come from
the environment as boto3 reads them. Figures with no data are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import PipelineError, UsageError
from pipeline.metrics.compute import Metrics
from pipeline.metrics.report import stack_label


def cloudwatch_data(metrics: Metrics) -> list[dict[str, Any]]:
    """``MetricData`` entries for ``put_metric_data``; no-data metrics are left out."""
    m = metrics
    d = m.dora
    stack = stack_label(m)
    at = m.until or datetime.now(UTC)

    def minutes_to_s(value: float | None) -> float | None:
        return None if value is None else value * 60

    def hours_to_s(value: float | None) -> float | None:
        return None if value is None else value * 3600

    entries: list[tuple[str, float | None, str, str]] = [
        ("MCI", minutes_to_s(m.m_ci_minutes), "Seconds", stack),
        ("BuildTime", minutes_to_s(m.t_c_minutes), "Seconds", stack),
        ("TestTime", minutes_to_s(m.t_t_minutes), "Seconds", stack),
        ("DeployTime", minutes_to_s(m.t_d_minutes), "Seconds", stack),
        ("MCD", m.m_cd, "None", stack),
        ("TestPassRatio", m.p_t, "None", stack),
        ("DeploySuccessRatio", m.p_d, "None", stack),
        ("CIRuns", float(m.ci_runs), "Count", stack),
        ("Deployments", float(m.deployments), "Count", stack),
    ]
    dora_stack = ", ".join(d.stacks) or "none"
    entries += [
        ("DeploymentFrequencyPerWeek", d.deployment_frequency_per_week, "None", dora_stack),
        ("LeadTime", hours_to_s(d.lead_time_hours), "Seconds", dora_stack),
        ("ChangeFailureRate", d.change_failure_rate, "None", dora_stack),
        ("RecoveryTime", hours_to_s(d.recovery_time_hours), "Seconds", dora_stack),
    ]
    return [
        {
            "MetricName": name,
            "Dimensions": [{"Name": "Stack", "Value": dim}],
            "Timestamp": at,
            "Value": float(value),
            "Unit": unit,
        }
        for name, value, unit, dim in entries
        if value is not None
    ]


def check_namespace(namespace: str) -> str:
    if not namespace or namespace.startswith("AWS/") or len(namespace) > 255:
        raise UsageError(
            f"--push-cloudwatch {namespace!r}: a namespace of your own (not AWS/...), 1-255 chars"
        )
    return namespace


def push_cloudwatch(metrics: Metrics, namespace: str, client_factory: Callable[[], Any]) -> int:
    """Put the metrics to CloudWatch through ``client_factory()`` (a boto3 client)."""
    check_namespace(namespace)
    from botocore.exceptions import BotoCoreError, ClientError

    data = cloudwatch_data(metrics)
    if not data:
        return 0
    try:
        client: Any = client_factory()
        for start in range(0, len(data), 20):
            client.put_metric_data(Namespace=namespace, MetricData=data[start : start + 20])
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise PipelineError(
            f"CloudWatch refused put_metric_data: {error.get('Code', 'error')}: "
            f"{error.get('Message', '')}".rstrip(": ")
        ) from None
    except BotoCoreError as exc:
        raise PipelineError(f"CloudWatch: {exc}") from None
    return len(data)
