"""ModelEnvironment: one Kubernetes namespace running the model server, hardened.

Everything goes through an explicit Kubernetes provider built from the stack's
kubeconfig and context, so a program run can never touch whatever cluster the
operator's shell happens to point at. The workload follows the Pod Security
"restricted" profile, which the namespace also enforces.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import (
    Deployment,
    DeploymentSpecArgs,
    DeploymentStrategyArgs,
    RollingUpdateDeploymentArgs,
)
from pulumi_kubernetes.apps.v1.outputs import DeploymentSpec
from pulumi_kubernetes.autoscaling.v2 import (
    CrossVersionObjectReferenceArgs,
    HorizontalPodAutoscaler,
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
    ConfigMap,
    ConfigMapEnvSourceArgs,
    ContainerArgs,
    ContainerPortArgs,
    EmptyDirVolumeSourceArgs,
    EnvFromSourceArgs,
    HTTPGetActionArgs,
    LifecycleArgs,
    LifecycleHandlerArgs,
    LimitRange,
    LimitRangeItemArgs,
    LimitRangeSpecArgs,
    LocalObjectReferenceArgs,
    Namespace,
    PodSecurityContextArgs,
    PodSpecArgs,
    PodTemplateSpecArgs,
    ProbeArgs,
    ResourceQuota,
    ResourceQuotaSpecArgs,
    ResourceRequirementsArgs,
    SeccompProfileArgs,
    Secret,
    SecurityContextArgs,
    Service,
    ServiceAccount,
    ServicePortArgs,
    ServiceSpecArgs,
    SleepActionArgs,
    TolerationArgs,
    TopologySpreadConstraintArgs,
    VolumeArgs,
    VolumeMountArgs,
)
from pulumi_kubernetes.meta.v1 import (
    LabelSelectorArgs,
    LabelSelectorRequirementArgs,
    ObjectMetaArgs,
)
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    Ingress,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    IPBlockArgs,
    NetworkPolicy,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
    ServiceBackendPortArgs,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs

from infra.config import (
    GpuSettings,
    ImageRef,
    IngressSettings,
    KubernetesSettings,
    ModelSettings,
    NetworkSettings,
    RegistrySettings,
    ResourceSettings,
    ScalingSettings,
    ServerSettings,
    Settings,
)

_Meta = Callable[..., ObjectMetaArgs]
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")

# A fixed high UID/GID outside the range of host users and system accounts.
RUN_AS_USER = 10001
RUN_AS_GROUP = 10001
# The Pod Security Standards version the namespace enforces; warn/audit follow
# "latest" so rules of newer releases show up as warnings before they bite.
POD_SECURITY_VERSION = "v1.31"
TMP_DIR = "/tmp"  # noqa: S108 - an emptyDir of the pod's own, not a shared host /tmp
MODEL_CACHE_DIR = "/var/cache/model"
GPU_RESOURCE = "nvidia.com/gpu"
PROBE_PERIOD_SECONDS = 5
# Time for endpoints and load balancers to stop sending traffic before SIGTERM.
PRE_STOP_SLEEP_SECONDS = 5
TERMINATION_GRACE_SECONDS = 30


@dataclass(frozen=True, eq=False)
class ModelEnvironmentArgs:
    project: str
    stack: str
    environment: str
    namespace: str
    app_name: str
    kubernetes: KubernetesSettings
    image: ImageRef
    scaling: ScalingSettings
    resources: ResourceSettings
    gpu: GpuSettings
    server: ServerSettings
    model: ModelSettings
    network: NetworkSettings
    ingress: IngressSettings | None
    # Credentials for the image pull secret; None (or no username): no secret.
    registry: RegistrySettings | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelEnvironmentArgs:
        return cls(
            project=settings.project,
            stack=settings.stack,
            environment=settings.environment,
            namespace=settings.namespace,
            app_name=settings.app_name,
            kubernetes=settings.kubernetes,
            image=settings.image,
            scaling=settings.scaling,
            resources=settings.resources,
            gpu=settings.gpu,
            server=settings.server,
            model=settings.model,
            network=settings.network,
            ingress=settings.ingress,
            registry=settings.registry,
        )


def config_checksum(data: Mapping[str, str]) -> str:
    """sha256 of the ConfigMap data, stable across runs (sorted keys, no whitespace)."""
    canonical = json.dumps(dict(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def dockerconfigjson(server: str, username: str, password: str) -> str:
    """The base64 ``.dockerconfigjson`` of a kubernetes.io/dockerconfigjson Secret."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    doc = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
    return base64.b64encode(json.dumps(doc, sort_keys=True).encode()).decode()


def label_value(text: str) -> str:
    """``text`` cut to a valid label value (63 characters, alphanumeric at both ends)."""
    cut = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cut)


def _deployed_image(spec: DeploymentSpec, fallback: str) -> str:
    pod = spec.template.spec
    return (pod.containers[0].image if pod is not None else None) or fallback


def _cpu_quantity(millis: int) -> str:
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _memory_quantity(size: int) -> str:
    for unit, factor in (("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


class ModelEnvironment(pulumi.ComponentResource):
    """The model server in its own namespace: workload, service, scaling, network policy."""

    provider: k8s.Provider
    namespace: pulumi.Output[str]
    image: pulumi.Output[str]
    image_digest: pulumi.Output[str]
    service_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: ModelEnvironmentArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("cv-platform:environment:ModelEnvironment", name, None, opts)
        self._args = args
        app = args.app_name
        self.provider = k8s.Provider(
            f"{name}-k8s",
            context=args.kubernetes.context,
            kubeconfig=args.kubernetes.kubeconfig or None,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)

        self.selector = {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/instance": label_value(f"{app}-{args.stack}"),
        }
        self.labels = {
            **self.selector,
            "app.kubernetes.io/component": "inference",
            "app.kubernetes.io/part-of": args.project,
            "app.kubernetes.io/managed-by": "pulumi",
            "cv-platform.io/environment": args.environment,
        }
        ns_name = args.namespace

        ns = Namespace(
            f"{name}-namespace",
            metadata=ObjectMetaArgs(
                name=ns_name,
                labels={
                    **self.labels,
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": POD_SECURITY_VERSION,
                    "pod-security.kubernetes.io/warn": "restricted",
                    "pod-security.kubernetes.io/warn-version": "latest",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/audit-version": "latest",
                },
            ),
            opts=child,
        )
        # Every namespaced object depends on the namespace through its name Output.
        namespace = ns.metadata.apply(lambda m: m.name or ns_name)

        self._namespace = namespace
        meta = self._meta

        service_account = ServiceAccount(
            f"{name}-service-account",
            metadata=meta(app),
            automount_service_account_token=False,
            opts=child,
        )

        self._network_policies(name, meta, child)
        self._quota(name, meta, child)

        pull_secret = self._pull_secret(name, meta, child)

        settings_data = self._config_data()
        config_map = ConfigMap(
            f"{name}-settings",
            metadata=meta(f"{app}-settings"),
            data=settings_data,
            opts=child,
        )

        deployment = Deployment(
            f"{name}-deployment",
            metadata=meta(app, labels={**self.labels, **self._version_label()}),
            spec=self._deployment_spec(
                service_account.metadata.apply(lambda m: m.name or app),
                config_map.metadata.apply(lambda m: m.name or f"{app}-settings"),
                config_checksum(settings_data),
                pull_secret,
            ),
            opts=child,
        )

        service = Service(
            f"{name}-service",
            metadata=meta(app),
            spec=ServiceSpecArgs(
                type="ClusterIP",
                selector=self.selector,
                ports=[
                    ServicePortArgs(
                        name="http",
                        port=args.server.service_port,
                        target_port="http",
                        protocol="TCP",
                    )
                ],
            ),
            opts=child,
        )

        HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=meta(app),
            spec=HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=CrossVersionObjectReferenceArgs(
                    api_version="apps/v1",
                    kind="Deployment",
                    name=deployment.metadata.apply(lambda m: m.name or app),
                ),
                min_replicas=args.scaling.replicas,
                max_replicas=args.scaling.max_replicas,
                metrics=[
                    MetricSpecArgs(
                        type="Resource",
                        resource=ResourceMetricSourceArgs(
                            name="cpu",
                            target=MetricTargetArgs(
                                type="Utilization",
                                average_utilization=args.scaling.target_cpu_utilization,
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
            ),
            opts=child,
        )

        if args.scaling.pod_disruption_budget:
            PodDisruptionBudget(
                f"{name}-disruption-budget",
                metadata=meta(app),
                spec=PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=LabelSelectorArgs(match_labels=self.selector),
                    # A pod that never became ready must not block a node drain.
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=child,
            )

        if args.ingress is not None:
            self._ingress(name, meta, child, args.ingress, service)

        self.namespace = namespace
        reference = args.image.reference
        self.image = deployment.spec.apply(lambda spec: _deployed_image(spec, reference))
        self.image_digest = pulumi.Output.from_input(args.image.digest)
        port = args.server.service_port
        self.service_url = pulumi.Output.all(
            service.metadata.apply(lambda m: m.name or app),
            service.metadata.apply(lambda m: m.namespace or ns_name),
        ).apply(lambda parts: f"http://{parts[0]}.{parts[1]}.svc.cluster.local:{port}")
        self.register_outputs(
            {
                "namespace": self.namespace,
                "image": self.image,
                "imageDigest": self.image_digest,
                "serviceUrl": self.service_url,
            }
        )

    # --- pieces ---------------------------------------------------------------

    def _meta(
        self,
        obj_name: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> ObjectMetaArgs:
        """Metadata of a namespaced object: explicit name, standard labels."""
        return ObjectMetaArgs(
            name=obj_name,
            namespace=self._namespace,
            labels=dict(labels) if labels is not None else self.labels,
            annotations=dict(annotations) if annotations else None,
        )

    def _version_label(self) -> dict[str, str]:
        """The tag (the git sha) when it is a valid label value, else the digest's start."""
        image = self._args.image
        for candidate in (image.tag, image.digest[len("sha256:") :][:12]):
            if candidate and _LABEL_VALUE.match(candidate):
                return {"app.kubernetes.io/version": candidate}
        return {}

    def _config_data(self) -> dict[str, str]:
        args = self._args
        return {
            "ENVIRONMENT": args.environment,
            "LOG_LEVEL": args.model.log_level,
            "MAX_BATCH_SIZE": str(args.model.max_batch_size),
            "MODEL_CACHE_DIR": MODEL_CACHE_DIR,
            "MODEL_NAME": args.model.name,
            "PORT": str(args.server.container_port),
            "TMPDIR": TMP_DIR,
        }

    def _deployment_spec(
        self,
        service_account: pulumi.Input[str],
        config_map: pulumi.Input[str],
        checksum: str,
        pull_secret: pulumi.Output[str] | None,
    ) -> DeploymentSpecArgs:
        args = self._args
        server = args.server
        gpu = args.gpu
        limits: dict[str, str] = {
            "cpu": args.resources.cpu_limit,
            "memory": args.resources.memory_limit,
        }
        requests: dict[str, str] = {
            "cpu": args.resources.cpu_request,
            "memory": args.resources.memory_request,
        }
        if gpu.enabled:
            limits[GPU_RESOURCE] = str(gpu.count)
            requests[GPU_RESOURCE] = str(gpu.count)
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
        container = ContainerArgs(
            name=args.app_name,
            image=args.image.reference,
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
                label_selector=LabelSelectorArgs(match_labels=self.selector),
                match_label_keys=["pod-template-hash"],
            ),
            # Zones are a preference: single-zone clusters (kind) still schedule.
            TopologySpreadConstraintArgs(
                max_skew=1,
                topology_key="topology.kubernetes.io/zone",
                when_unsatisfiable="ScheduleAnyway",
                label_selector=LabelSelectorArgs(match_labels=self.selector),
                match_label_keys=["pod-template-hash"],
            ),
        ]
        pod = PodSpecArgs(
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
                    name="tmp", empty_dir=EmptyDirVolumeSourceArgs(size_limit=args.model.tmp_size)
                ),
                VolumeArgs(
                    name="model-cache",
                    empty_dir=EmptyDirVolumeSourceArgs(size_limit=args.model.cache_size),
                ),
            ],
        )
        return DeploymentSpecArgs(
            # No replicas: the autoscaler owns the count (minReplicas = replicas),
            # so a pulumi up never scales a busy deployment back down.
            selector=LabelSelectorArgs(match_labels=self.selector),
            revision_history_limit=5,
            progress_deadline_seconds=max(600, server.startup_timeout_seconds + 120),
            # Never below desired capacity during a rollout: add one, then remove one.
            strategy=DeploymentStrategyArgs(
                type="RollingUpdate",
                rolling_update=RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
            ),
            template=PodTemplateSpecArgs(
                metadata=ObjectMetaArgs(
                    labels={**self.labels, **self._version_label()}, annotations=annotations
                ),
                spec=pod,
            ),
        )

    def _network_policies(self, name: str, meta: _Meta, child: pulumi.ResourceOptions) -> None:
        args = self._args
        app = args.app_name
        # Nothing in or out of any pod of the namespace unless a policy below allows it.
        NetworkPolicy(
            f"{name}-default-deny",
            metadata=meta("default-deny"),
            spec=NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(),
                policy_types=["Ingress", "Egress"],
            ),
            opts=child,
        )
        peers: list[NetworkPolicyPeerArgs] = []
        namespaces = list(args.network.ingress_namespaces)
        if args.ingress is not None and args.ingress.controller_namespace not in namespaces:
            namespaces.append(args.ingress.controller_namespace)
        if namespaces:
            peers.append(
                NetworkPolicyPeerArgs(
                    namespace_selector=LabelSelectorArgs(
                        match_expressions=[
                            LabelSelectorRequirementArgs(
                                key="kubernetes.io/metadata.name",
                                operator="In",
                                values=sorted(namespaces),
                            )
                        ]
                    )
                )
            )
        peers.extend(
            NetworkPolicyPeerArgs(pod_selector=LabelSelectorArgs(match_labels={key: value}))
            for key, value in args.network.ingress_pod_labels
        )
        # With no peer there is no allow rule at all: an empty "from" would admit everyone.
        if peers:
            NetworkPolicy(
                f"{name}-allow-ingress",
                metadata=meta(f"{app}-allow-ingress"),
                spec=NetworkPolicySpecArgs(
                    pod_selector=LabelSelectorArgs(match_labels=self.selector),
                    policy_types=["Ingress"],
                    ingress=[
                        NetworkPolicyIngressRuleArgs(
                            from_=peers,
                            ports=[
                                NetworkPolicyPortArgs(
                                    protocol="TCP", port=args.server.container_port
                                )
                            ],
                        )
                    ],
                ),
                opts=child,
            )
        NetworkPolicy(
            f"{name}-allow-dns",
            metadata=meta(f"{app}-allow-dns"),
            spec=NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(match_labels=self.selector),
                policy_types=["Egress"],
                egress=[
                    NetworkPolicyEgressRuleArgs(
                        to=[
                            NetworkPolicyPeerArgs(
                                namespace_selector=LabelSelectorArgs(
                                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                                ),
                                pod_selector=LabelSelectorArgs(
                                    match_labels={"k8s-app": "kube-dns"}
                                ),
                            )
                        ],
                        ports=[
                            NetworkPolicyPortArgs(protocol="UDP", port=53),
                            NetworkPolicyPortArgs(protocol="TCP", port=53),
                        ],
                    )
                ],
            ),
            opts=child,
        )
        if args.network.egress:
            NetworkPolicy(
                f"{name}-allow-egress",
                metadata=meta(f"{app}-allow-egress"),
                spec=NetworkPolicySpecArgs(
                    pod_selector=LabelSelectorArgs(match_labels=self.selector),
                    policy_types=["Egress"],
                    egress=[
                        NetworkPolicyEgressRuleArgs(
                            to=[NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=rule.cidr))],
                            ports=[NetworkPolicyPortArgs(protocol="TCP", port=rule.port)],
                        )
                        for rule in args.network.egress
                    ],
                ),
                opts=child,
            )

    def _quota(self, name: str, meta: _Meta, child: pulumi.ResourceOptions) -> None:
        """Quota sized for the autoscaler's maximum plus the rollout's surge pod, no more."""
        args = self._args
        res = args.resources
        pods = args.scaling.max_replicas + 1
        hard = {
            "pods": str(pods),
            "requests.cpu": _cpu_quantity(pods * res.cpu_request_millis),
            "limits.cpu": _cpu_quantity(pods * res.cpu_limit_millis),
            "requests.memory": _memory_quantity(pods * res.memory_request_bytes),
            "limits.memory": _memory_quantity(pods * res.memory_limit_bytes),
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        }
        if args.gpu.enabled:
            hard[f"requests.{GPU_RESOURCE}"] = str(pods * args.gpu.count)
        ResourceQuota(
            f"{name}-quota",
            metadata=meta(f"{args.app_name}-quota"),
            spec=ResourceQuotaSpecArgs(hard=hard),
            opts=child,
        )
        # Containers created without requests or limits (kubectl run, debug pods)
        # get the model server's, and none may ask for more.
        LimitRange(
            f"{name}-limits",
            metadata=meta(f"{args.app_name}-limits"),
            spec=LimitRangeSpecArgs(
                limits=[
                    LimitRangeItemArgs(
                        type="Container",
                        default={"cpu": res.cpu_limit, "memory": res.memory_limit},
                        default_request={"cpu": res.cpu_request, "memory": res.memory_request},
                        max={"cpu": res.cpu_limit, "memory": res.memory_limit},
                    )
                ]
            ),
            opts=child,
        )

    def _pull_secret(
        self, name: str, meta: _Meta, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str] | None:
        registry = self._args.registry
        if registry is None or not registry.has_credentials or registry.password is None:
            return None
        server, username = registry.server, registry.username
        payload: pulumi.Output[str] = pulumi.Output.secret(
            registry.password.apply(lambda pw: dockerconfigjson(server, username, pw))
        )
        secret = Secret(
            f"{name}-registry-pull",
            metadata=meta(f"{self._args.app_name}-registry-pull"),
            type="kubernetes.io/dockerconfigjson",
            data={".dockerconfigjson": payload},
            opts=child,
        )
        fallback = f"{self._args.app_name}-registry-pull"
        return secret.metadata.apply(lambda m: m.name or fallback)

    def _ingress(
        self,
        name: str,
        meta: _Meta,
        child: pulumi.ResourceOptions,
        ingress: IngressSettings,
        service: Service,
    ) -> None:
        args = self._args
        annotations: dict[str, str] = {}
        if ingress.class_name == "nginx":
            # Images are larger than ingress-nginx's 1m default request body.
            annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = "16m"
        Ingress(
            f"{name}-ingress",
            metadata=meta(args.app_name, annotations=annotations or None),
            spec=IngressSpecArgs(
                ingress_class_name=ingress.class_name,
                tls=[IngressTLSArgs(hosts=[ingress.host], secret_name=ingress.tls_secret_name)],
                rules=[
                    IngressRuleArgs(
                        host=ingress.host,
                        http=HTTPIngressRuleValueArgs(
                            # Only the prediction endpoint is public: health and
                            # metrics stay inside the cluster.
                            paths=[
                                HTTPIngressPathArgs(
                                    path=args.server.predict_path,
                                    path_type="Exact",
                                    backend=IngressBackendArgs(
                                        service=IngressServiceBackendArgs(
                                            name=service.metadata.apply(
                                                lambda m: m.name or args.app_name
                                            ),
                                            port=ServiceBackendPortArgs(
                                                number=args.server.service_port
                                            ),
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=child,
        )
