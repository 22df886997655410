"""The settings tree ``parse_settings`` returns: frozen, validated, typed.

Secrets stay ``pulumi.Output`` secrets end to end; every other field is a plain
value. The CI tooling's part of the tree is ``infra.config.tooling``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi

from infra.config.defaults import Environment
from infra.config.kubernetes import TaintEffect, cpu_millis, memory_bytes
from infra.config.monitoring import MonitoringSettings
from infra.config.tooling import ToolingSettings

LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True)
class ImageSettings:
    repository: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        """What the pods run: ``repository@digest``, else ``repository:tag``."""
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag}"

    @property
    def registry_host(self) -> str:
        return self.repository.split("/", 1)[0]


@dataclass(frozen=True)
class KubernetesSettings:
    context: str
    kubeconfig: str  # path; empty: $KUBECONFIG, else ~/.kube/config


@dataclass(frozen=True)
class ScalingSettings:
    replicas: int
    max_replicas: int
    target_cpu_utilization: int
    pod_disruption_budget: bool


@dataclass(frozen=True)
class ResourceSettings:
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    ephemeral_storage_request: str
    ephemeral_storage_limit: str

    @property
    def cpu_limit_millis(self) -> int:
        return cpu_millis(self.cpu_limit)

    @property
    def cpu_request_millis(self) -> int:
        return cpu_millis(self.cpu_request)

    @property
    def memory_limit_bytes(self) -> int:
        return memory_bytes(self.memory_limit)

    @property
    def memory_request_bytes(self) -> int:
        return memory_bytes(self.memory_request)

    @property
    def ephemeral_storage_limit_bytes(self) -> int:
        return memory_bytes(self.ephemeral_storage_limit)

    @property
    def ephemeral_storage_request_bytes(self) -> int:
        return memory_bytes(self.ephemeral_storage_request)

    def limits(self) -> dict[str, str]:
        """The limits by Kubernetes resource name (a new dict: callers add to it)."""
        return {
            "cpu": self.cpu_limit,
            "memory": self.memory_limit,
            "ephemeral-storage": self.ephemeral_storage_limit,
        }

    def requests(self) -> dict[str, str]:
        """The requests by Kubernetes resource name (a new dict: callers add to it)."""
        return {
            "cpu": self.cpu_request,
            "memory": self.memory_request,
            "ephemeral-storage": self.ephemeral_storage_request,
        }


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str  # empty: any value (operator Exists)
    effect: TaintEffect


@dataclass(frozen=True)
class GpuSettings:
    count: int
    node_selector: tuple[tuple[str, str], ...]
    tolerations: tuple[Toleration, ...]

    @property
    def enabled(self) -> bool:
        return self.count > 0


@dataclass(frozen=True)
class ServerSettings:
    container_port: int
    service_port: int
    liveness_path: str
    readiness_path: str
    predict_path: str
    metrics_path: str
    startup_timeout_seconds: int


@dataclass(frozen=True)
class ModelSettings:
    name: str
    max_batch_size: int
    log_level: LogLevel
    cache_size: str
    tmp_size: str


@dataclass(frozen=True)
class EgressRule:
    cidr: str
    port: int


@dataclass(frozen=True)
class NetworkSettings:
    ingress_namespaces: tuple[str, ...]
    # (key, value) a pod in ingress_namespaces must carry: a namespace is never admitted whole.
    ingress_client_label: tuple[str, str]
    ingress_pod_labels: tuple[tuple[str, str], ...]
    egress: tuple[EgressRule, ...]


@dataclass(frozen=True)
class IngressSettings:
    host: str
    class_name: str
    tls_secret_name: str
    controller_namespace: str
    # (key, value) of the controller's pods: only they, in controller_namespace, are admitted.
    controller_pod_label: tuple[str, str]


@dataclass(frozen=True, eq=False)
class RegistrySettings:
    """Where images are pulled from and, optionally, the credentials for the pull secret."""

    server: str
    username: str
    password: pulumi.Output[str] | None  # stays an Output secret

    @property
    def has_credentials(self) -> bool:
        return bool(self.username) and self.password is not None


@dataclass(frozen=True, eq=False)
class Settings:
    project: str
    stack: str
    environment: Environment
    namespace: str
    app_name: str
    kubernetes: KubernetesSettings
    image: ImageSettings
    mutable_tags: tuple[str, ...]
    scaling: ScalingSettings
    resources: ResourceSettings
    gpu: GpuSettings
    server: ServerSettings
    model: ModelSettings
    network: NetworkSettings
    ingress: IngressSettings | None  # None: no Ingress
    registry: RegistrySettings
    # The CI tooling (Jenkins, registry on the CI Docker host) that the staging
    # stack owns; None when cv-platform:tooling is not enabled (always in prod).
    tooling: ToolingSettings | None = None
    # The ServiceMonitor, PrometheusRule and dashboard; None when monitoring.enabled is false.
    monitoring: MonitoringSettings | None = None
