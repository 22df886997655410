"""ModelEnvironment: one Kubernetes namespace running the model server, hardened.

Everything goes through an explicit Kubernetes provider built from the stack's
kubeconfig and context, so a program run can never touch whatever cluster the
operator's shell happens to point at. The workload follows the Pod Security
"restricted" profile, which the namespace also enforces.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apiextensions import CustomResource
from pulumi_kubernetes.apps.v1 import (
    Deployment,
)
from pulumi_kubernetes.apps.v1.outputs import DeploymentSpec
from pulumi_kubernetes.autoscaling.v2 import HorizontalPodAutoscaler
from pulumi_kubernetes.core.v1 import (
    ConfigMap,
    LimitRange,
    Namespace,
    ResourceQuota,
    Secret,
    Service,
    ServiceAccount,
    ServicePortArgs,
    ServiceSpecArgs,
)
from pulumi_kubernetes.meta.v1 import (
    LabelSelectorArgs,
    ObjectMetaArgs,
)
from pulumi_kubernetes.networking.v1 import (
    Ingress,
    NetworkPolicy,
)
from pulumi_kubernetes.policy.v1 import PodDisruptionBudget, PodDisruptionBudgetSpecArgs

from infra.config import (
    GpuSettings,
    ImageSettings,
    IngressSettings,
    KubernetesSettings,
    ModelSettings,
    MonitoringSettings,
    NetworkSettings,
    RegistrySettings,
    ResourceSettings,
    ScalingSettings,
    ServerSettings,
    Settings,
)
from infra.monitoring.objects import (
    GRAFANA_DASHBOARD_LABEL,
    MONITORING_API,
    monitoring_objects,
)
from infra.network import ingress_spec, network_policies
from infra.workload import (
    Pod,
    autoscaler_spec,
    config_checksum,
    config_data,
    deployment_spec,
    limits_spec,
    quota_spec,
)
from pipeline.verification.labels import POD_VERSION_LABEL, version_label

_Meta = Callable[..., ObjectMetaArgs]

# The Pod Security Standards version the namespace enforces; warn/audit follow
# "latest" so rules of newer releases show up as warnings before they bite.
POD_SECURITY_VERSION = "v1.31"


@dataclass(frozen=True, eq=False)
class ModelEnvironmentArgs:
    project: str
    stack: str
    environment: str
    namespace: str
    app_name: str
    kubernetes: KubernetesSettings
    image: ImageSettings
    scaling: ScalingSettings
    resources: ResourceSettings
    gpu: GpuSettings
    server: ServerSettings
    model: ModelSettings
    network: NetworkSettings
    ingress: IngressSettings | None
    # Credentials for the image pull secret; None (or no username): no secret.
    registry: RegistrySettings | None
    # ServiceMonitor, PrometheusRule, dashboard and the scrape's NetworkPolicy; None: none.
    monitoring: MonitoringSettings | None = None

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
            monitoring=settings.monitoring,
        )


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

        pod = Pod(args.app_name, args.image, args.server, args.resources, args.gpu, args.model)
        policies = network_policies(
            app,
            ns_name,
            self.selector,
            args.network,
            args.ingress,
            args.server.container_port,
            args.monitoring,
        )
        for suffix, object_name, policy in policies:
            NetworkPolicy(f"{name}-{suffix}", metadata=meta(object_name), spec=policy, opts=child)
        self._quota(name, meta, child, pod)

        pull_secret = self._pull_secret(name, meta, child)

        settings_data = config_data(args.environment, pod)
        config_map = ConfigMap(
            f"{name}-settings",
            metadata=meta(f"{app}-settings"),
            data=settings_data,
            opts=child,
        )

        deployment = Deployment(
            f"{name}-deployment",
            metadata=meta(app, labels={**self.labels, **self._version_label()}),
            spec=deployment_spec(
                pod,
                selector=self.selector,
                labels={**self.labels, **self._version_label()},
                service_account=service_account.metadata.apply(lambda m: m.name or app),
                config_map=config_map.metadata.apply(lambda m: m.name or f"{app}-settings"),
                checksum=config_checksum(settings_data),
                pull_secret=pull_secret,
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

        self._scaling(name, meta, child, deployment)
        if args.monitoring is not None:
            self._monitoring(name, meta, child, args.monitoring)

        if args.ingress is not None:
            annotations, spec = ingress_spec(
                args.ingress,
                args.server,
                service.metadata.apply(lambda m: m.name or app),
            )
            Ingress(
                f"{name}-ingress",
                metadata=meta(app, annotations=annotations),
                spec=spec,
                opts=child,
            )

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
        version = version_label(self._args.image.tag, self._args.image.digest)
        return {POD_VERSION_LABEL: version} if version else {}

    def _monitoring(
        self, name: str, meta: _Meta, child: pulumi.ResourceOptions, monitoring: MonitoringSettings
    ) -> None:
        """ServiceMonitor, PrometheusRule and (optionally) the Grafana dashboard ConfigMap."""
        args = self._args
        objects = monitoring_objects(
            args.app_name, args.namespace, args.stack, self.selector, args.server, monitoring
        )
        labels = {**self.labels, **objects.extra_labels}
        for suffix, kind, object_name, spec in objects.custom:
            CustomResource(
                f"{name}-{suffix}",
                api_version=MONITORING_API,
                kind=kind,
                metadata=meta(object_name, labels=labels),
                spec=spec,
                opts=child,
            )
        if objects.dashboard is not None:
            object_name, data = objects.dashboard
            dashboard_labels = {**self.labels, GRAFANA_DASHBOARD_LABEL: "1"}
            ConfigMap(
                f"{name}-dashboard",
                metadata=meta(object_name, labels=dashboard_labels),
                data=data,
                opts=child,
            )

    def _scaling(
        self, name: str, meta: _Meta, child: pulumi.ResourceOptions, deployment: Deployment
    ) -> None:
        """The autoscaler (it owns the replica count) and, when asked for, the disruption budget."""
        args = self._args
        app = args.app_name
        HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            metadata=meta(app),
            spec=autoscaler_spec(args.scaling, deployment.metadata.apply(lambda m: m.name or app)),
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

    def _quota(self, name: str, meta: _Meta, child: pulumi.ResourceOptions, pod: Pod) -> None:
        """Quota sized for the autoscaler's maximum plus the rollout's surge pod, no more."""
        app = self._args.app_name
        ResourceQuota(
            f"{name}-quota",
            metadata=meta(f"{app}-quota"),
            spec=quota_spec(pod, self._args.scaling.max_replicas),
            opts=child,
        )
        # Containers created without requests or limits (kubectl run, debug pods)
        # get the model server's, and none may ask for more.
        LimitRange(
            f"{name}-limits", metadata=meta(f"{app}-limits"), spec=limits_spec(pod), opts=child
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
