"""The model server's pods: the Deployment ``ModelEnvironment`` declares, spelled out.

One container under the "restricted" Pod Security profile (non-root, read-only root
filesystem, no capabilities, RuntimeDefault seccomp), probes sized for a slow model
load, GPU requests and scheduling when asked for, spread strictly over nodes and
preferably over zones, and a rollout that never drops below the desired capacity.
Pure: it builds Args, the component declares the resources.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_kubernetes.apps.v1 import (
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscalerBehaviorArgs,
    HorizontalPodAutoscalerSpecArgs,
    HPAScalingPolicyArgs,
    HPAScalingRulesArgs,
    MetricSpecArgs,
    MetricTargetArgs,
    ResourceMetricSourceArgs,
)
from pulumi_kubernetes.core.v1 import (
    CapabilitiesArgs,
    ConfigMapEnvSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvFromSourceArgs,
    HTTPGetActionArgs,
    LifecycleArgs,
    LifecycleHandlerArgs,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    LocalObjectReferenceArgs,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceQuotaSpecArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    SecurityContextArgs,
    SleepActionArgs,
    TolerationArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, ObjectMetaArgs

from infra.config import (
    GpuSettings,
    ImageSettings,
    ModelSettings,
    ResourceSettings,
    ScalingSettings,
    ServerSettings,
)

# A fixed high UID/GID outside the range of host users and system accounts.
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001
TMP_DIR = "/tmp"  # noqa: S108 - an emptyDir of the pod's own, not a shared host /tmp
MODEL_CACHE_DIR = "/var/cache/model"
GPU_RESOURCE = "nvidia.com/gpu"
PROBE_PERIOD_SECONDS = 5
# Time for endpoints and load balancers to stop sending traffic before SIGTERM.
PRE_STOP_SLEEP_SECONDS = 5
TERMINATION_GRACE_SECONDS = 30


@dataclass(frozen=True, eq=False)
class Pod:
    """The settings the model server's pod is made of."""

    app_name: str
    image: ImageSettings
    server: ServerSettings
    resources: ResourceSettings
    gpu: GpuSettings
    model: ModelSettings


def config_data(environment: str, pod: Pod) -> dict[str, str]:
    """The server's environment, from the ConfigMap the container reads."""
    return {
        "ENVIRONMENT": environment,
        "LOG_LEVEL": pod.model.log_level,
        "MAX_BATCH_SIZE": str(pod.model.max_batch_size),
        "MODEL_CACHE_DIR": MODEL_CACHE_DIR,
        "MODEL_NAME": pod.model.name,
        "PORT": str(pod.server.container_port),
        "TMPDIR": TMP_DIR,
    }


def _container(pod: Pod, config_map: pulumi.Input[str]) -> ContainerArgs:
    """The model server's container: restricted, probed, its settings from ``config_map``."""
    server = pod.server
    gpu = pod.gpu
    limits = pod.resources.limits()
    requests = pod.resources.requests()
    if gpu.enabled:
        limits[GPU_RESOURCE] = str(gpu.count)
        requests[GPU_RESOURCE] = str(gpu.count)
    return ContainerArgs(
        name=pod.app_name,
        image=pod.image.reference,
        # Always: the kubelet re-checks credentials for a private image on a
        # shared node; with a digest it still runs exactly the pinned bytes.
        image_pull_policy="Always",
        ports=[
            ContainerPortArgs(name="http", container_port=server.container_port, protocol="TCP")
        ],
        env_from=[EnvFromSourceArgs(config_map_ref=ConfigMapEnvSourceArgs(name=config_map))],
        resources=ResourceRequirementsArgs(limits=limits, requests=requests),
        # The model may take a while to load: the startup probe allows for it
        # and holds the liveness probe back until the server is ready once.
        startup_probe=ProbeArgs(
            http_get=HTTPGetActionArgs(path=server.readiness_path, port="http"),
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=3,
            failure_threshold=math.ceil(server.startup_timeout_seconds / PROBE_PERIOD_SECONDS),
        ),
        readiness_probe=ProbeArgs(
            http_get=HTTPGetActionArgs(path=server.readiness_path, port="http"),
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=3,
            failure_threshold=3,
        ),
        liveness_probe=ProbeArgs(
            http_get=HTTPGetActionArgs(path=server.liveness_path, port="http"),
            period_seconds=10,
            timeout_seconds=3,
            failure_threshold=3,
        ),
        lifecycle=LifecycleArgs(
            pre_stop=LifecycleHandlerArgs(sleep=SleepActionArgs(seconds=PRE_STOP_SLEEP_SECONDS))
        ),
        security_context=SecurityContextArgs(
            allow_privilege_escalation=False,
            privileged=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_GROUP,
            capabilities=CapabilitiesArgs(drop=["ALL"]),
            seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
        ),
        volume_mounts=[
            VolumeMountArgs(name="tmp", mount_path=TMP_DIR),
            VolumeMountArgs(name="model-cache", mount_path=MODEL_CACHE_DIR),
        ],
    )


def deployment_spec(
    pod: Pod,
    *,
    selector: Mapping[str, str],
    labels: Mapping[str, str],
    service_account: pulumi.Input[str],
    config_map: pulumi.Input[str],
    checksum: str,
    pull_secret: pulumi.Output[str] | None,
) -> DeploymentSpecArgs:
    """The Deployment: ``pod``'s template, labelled ``labels``, rolled one surge pod at a time.

    ``checksum`` (of the ConfigMap's data) is a pod annotation, so a settings
    change rolls the pods; ``pull_secret`` names the image pull secret, if any.
    """
    server = pod.server
    gpu = pod.gpu
    node_selector = {"kubernetes.io/os": "linux"}
    tolerations: list[TolerationArgs] = []
    if gpu.enabled:
        node_selector.update(dict(gpu.node_selector))
        tolerations = [
            TolerationArgs(
                key=t.key,
                operator="Equal" if t.value else "Exists",
                value=t.value or None,
                effect=t.effect,
            )
            for t in gpu.tolerations
        ]
    container = _container(pod, config_map)
    annotations = {
        # A change of the model settings changes the pod template: pods roll.
        "checksum/config": checksum,
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(server.container_port),
        "prometheus.io/path": server.metrics_path,
    }
    spread = [
        # Every node carries a hostname label: spread strictly over nodes.
        TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="kubernetes.io/hostname",
            when_unsatisfiable="DoNotSchedule",
            label_selector=LabelSelectorArgs(match_labels=dict(selector)),
            match_label_keys=["pod-template-hash"],
        ),
        # Zones are a preference: single-zone clusters (kind) still schedule.
        TopologySpreadConstraintArgs(
            max_skew=1,
            topology_key="topology.kubernetes.io/zone",
            when_unsatisfiable="ScheduleAnyway",
            label_selector=LabelSelectorArgs(match_labels=dict(selector)),
            match_label_keys=["pod-template-hash"],
        ),
    ]
    pod_spec = PodSpecArgs(
        service_account_name=service_account,
        automount_service_account_token=False,
        enable_service_links=False,
        termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
        security_context=PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=RUN_AS_USER,
            run_as_group=RUN_AS_GROUP,
            fs_group=RUN_AS_GROUP,
            fs_group_change_policy="OnRootMismatch",
            seccomp_profile=SeccompProfileArgs(type="RuntimeDefault"),
        ),
        image_pull_secrets=(
            [LocalObjectReferenceArgs(name=pull_secret)] if pull_secret is not None else None
        ),
        node_selector=node_selector,
        tolerations=tolerations or None,
        topology_spread_constraints=spread,
        containers=[container],
        volumes=[
            VolumeArgs(
                name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit=pod.model.tmp_size)
            ),
            VolumeArgs(
                name="model-cache",
                empty_dir=EmptyDirVolumeSourceArgs(size_limit=pod.model.cache_size),
            ),
        ],
    )
    return DeploymentSpecArgs(
        # No replicas: the autoscaler owns the count (minReplicas = replicas),
        # so a pulumi up never scales a busy deployment back down.
        selector=LabelSelectorArgs(match_labels=dict(selector)),
        revision_history_limit=5,
        progress_deadline_seconds=max(600, server.startup_timeout_seconds + 120),
        # Never below desired capacity during a rollout: add one, then remove one.
        strategy=DeploymentStrategyArgs(
            type="RollingUpdate",
            rolling_update=RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
        ),
        template=PodTemplateSpecArgs(
            metadata=ObjectMetaArgs(labels=dict(labels), annotations=annotations),
            spec=pod_spec,
        ),
    )


def _cpu_quantity(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _memory_quantity(size: int) -> str:
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def quota_spec(pod: Pod, max_replicas: int) -> ResourceQuotaSpecArgs:
    """The namespace's quota: the autoscaler's maximum plus the rollout's surge pod."""
    res = pod.resources
    pods = max_replicas + 1
    hard = {
        "pods": str(pods),
        "requests.cpu": _cpu_quantity(pods * res.cpu_request_millis),
        "limits.cpu": _cpu_quantity(pods * res.cpu_limit_millis),
        "requests.memory": _memory_quantity(pods * res.memory_request_bytes),
        "limits.memory": _memory_quantity(pods * res.memory_limit_bytes),
        "requests.ephemeral-storage": _memory_quantity(pods * res.ephemeral_storage_request_bytes),
        "limits.ephemeral-storage": _memory_quantity(pods * res.ephemeral_storage_limit_bytes),
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }
    if pod.gpu.enabled:
        hard[f"requests.{GPU_RESOURCE}"] = str(pods * pod.gpu.count)
    return ResourceQuotaSpecArgs(hard=hard)


def limits_spec(pod: Pod) -> LimitRangeSpecArgs:
    """Defaults and maximums for any container: the model server's own requests and limits."""
    res = pod.resources
    return LimitRangeSpecArgs(
        limits=[
            LimitRangeItemArgs(
                type="Container",
                default=res.limits(),
                default_request=res.requests(),
                max=res.limits(),
            )
        ]
    )


def config_checksum(data: Mapping[str, str]) -> str:
    """sha256 of the ConfigMap data, stable across runs (sorted keys, no whitespace)."""
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def autoscaler_spec(
    scaling: ScalingSettings, deployment: pulumi.Input[str]
) -> HorizontalPodAutoscalerSpecArgs:
    """The autoscaler owns the replica count: CPU-driven, up at once, down slowly."""
    return HorizontalPodAutoscalerSpecArgs(
        scale_target_ref=CrossVersionObjectReferenceArgs(
            api_version="apps/v1", kind="Deployment", name=deployment
        ),
        min_replicas=scaling.replicas,
        max_replicas=scaling.max_replicas,
        metrics=[
            MetricSpecArgs(
                type="Resource",
                resource=ResourceMetricSourceArgs(
                    name="cpu",
                    target=MetricTargetArgs(
                        type="Utilization", average_utilization=scaling.target_cpu_utilization
                    ),
                ),
            )
        ],
        # Scale up at once, scale down slowly: model pods are slow to start.
        behavior=HorizontalPodAutoscalerBehaviorArgs(
            scale_down=HPAScalingRulesArgs(
                stabilization_window_seconds=300,
                select_policy="Max",
                policies=[HPAScalingPolicyArgs(type="Pods", value=1, period_seconds=60)],
            ),
        ),
    )


__all__ = [
    "GPU_RESOURCE",
    "MODEL_CACHE_DIR",
    "RUN_AS_GROUP",
    "RUN_AS_USER",
    "TMP_DIR",
    "Pod",
    "autoscaler_spec",
    "config_data",
    "deployment_spec",
    "limits_spec",
    "quota_spec",
]
