"""How traffic reaches the model server: NetworkPolicies, and the optional Ingress.

A default deny for every pod of the namespace; the serving port open only to the
namespaces and pod labels the settings name (and the ingress controller when the
Ingress is on); with monitoring on, the Prometheus pods of its namespace admitted
to the port that serves the metrics path (the server's one port); DNS to kube-dns;
and only the egress the settings list. With no peer there is no allow rule at
all: an empty ``from`` would admit everyone. The Ingress publishes the prediction
endpoint alone, over TLS. Pure: it builds Args.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
from pulumi_kubernetes.meta.v1 import LabelSelectorArgs, LabelSelectorRequirementArgs
from pulumi_kubernetes.networking.v1 import (
    HTTPIngressPathArgs,
    HTTPIngressRuleValueArgs,
    IngressBackendArgs,
    IngressRuleArgs,
    IngressServiceBackendArgs,
    IngressSpecArgs,
    IngressTLSArgs,
    IPBlockArgs,
    NetworkPolicyEgressRuleArgs,
    NetworkPolicyIngressRuleArgs,
    NetworkPolicyPeerArgs,
    NetworkPolicyPortArgs,
    NetworkPolicySpecArgs,
    ServiceBackendPortArgs,
)

from infra.config import IngressSettings, MonitoringSettings, NetworkSettings, ServerSettings

# (suffix of the Pulumi resource name, Kubernetes object name, spec)
Policy = tuple[str, str, NetworkPolicySpecArgs]


def _ingress_peers(
    network: NetworkSettings, ingress: IngressSettings | None
) -> list[NetworkPolicyPeerArgs]:
    peers: list[NetworkPolicyPeerArgs] = []
    namespaces = list(network.ingress_namespaces)
    if ingress is not None and ingress.controller_namespace not in namespaces:
        namespaces.append(ingress.controller_namespace)
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
        for key, value in network.ingress_pod_labels
    )
    return peers


def _prometheus_rule(monitoring: MonitoringSettings, port: int) -> NetworkPolicyIngressRuleArgs:
    """Prometheus' pods (by label, in their namespace) to the metrics port, nothing else."""
    namespace = LabelSelectorArgs(
        match_labels={"kubernetes.io/metadata.name": monitoring.prometheus_namespace}
    )
    label = monitoring.prometheus_pod_label
    peer = NetworkPolicyPeerArgs(
        namespace_selector=namespace,
        pod_selector=LabelSelectorArgs(match_labels=dict([label])) if label else None,
    )
    return NetworkPolicyIngressRuleArgs(
        from_=[peer], ports=[NetworkPolicyPortArgs(protocol="TCP", port=port)]
    )


def network_policies(
    app: str,
    selector: Mapping[str, str],
    network: NetworkSettings,
    ingress: IngressSettings | None,
    container_port: int,
    monitoring: MonitoringSettings | None = None,
) -> list[Policy]:
    """Every NetworkPolicy of the namespace, in the order they are declared."""
    pods = LabelSelectorArgs(match_labels=dict(selector))
    # Nothing in or out of any pod of the namespace unless a policy below allows it.
    policies: list[Policy] = [
        (
            "default-deny",
            "default-deny",
            NetworkPolicySpecArgs(
                pod_selector=LabelSelectorArgs(), policy_types=["Ingress", "Egress"]
            ),
        )
    ]
    peers = _ingress_peers(network, ingress)
    if peers:
        serving = NetworkPolicyIngressRuleArgs(
            from_=peers, ports=[NetworkPolicyPortArgs(protocol="TCP", port=container_port)]
        )
        spec = NetworkPolicySpecArgs(pod_selector=pods, policy_types=["Ingress"], ingress=[serving])
        policies.append(("allow-ingress", f"{app}-allow-ingress", spec))
    if monitoring is not None:
        spec = NetworkPolicySpecArgs(
            pod_selector=pods,
            policy_types=["Ingress"],
            ingress=[_prometheus_rule(monitoring, container_port)],
        )
        policies.append(("allow-prometheus", f"{app}-allow-prometheus", spec))
    dns = NetworkPolicyEgressRuleArgs(
        to=[
            NetworkPolicyPeerArgs(
                namespace_selector=LabelSelectorArgs(
                    match_labels={"kubernetes.io/metadata.name": "kube-system"}
                ),
                pod_selector=LabelSelectorArgs(match_labels={"k8s-app": "kube-dns"}),
            )
        ],
        ports=[
            NetworkPolicyPortArgs(protocol="UDP", port=53),
            NetworkPolicyPortArgs(protocol="TCP", port=53),
        ],
    )
    spec = NetworkPolicySpecArgs(pod_selector=pods, policy_types=["Egress"], egress=[dns])
    policies.append(("allow-dns", f"{app}-allow-dns", spec))
    if network.egress:
        egress = [
            NetworkPolicyEgressRuleArgs(
                to=[NetworkPolicyPeerArgs(ip_block=IPBlockArgs(cidr=rule.cidr))],
                ports=[NetworkPolicyPortArgs(protocol="TCP", port=rule.port)],
            )
            for rule in network.egress
        ]
        spec = NetworkPolicySpecArgs(pod_selector=pods, policy_types=["Egress"], egress=egress)
        policies.append(("allow-egress", f"{app}-allow-egress", spec))
    return policies


def ingress_spec(
    ingress: IngressSettings, server: ServerSettings, service_name: pulumi.Input[str]
) -> tuple[dict[str, str] | None, IngressSpecArgs]:
    """The Ingress's annotations and spec: ``predictPath`` only, over TLS, to the Service."""
    annotations: dict[str, str] = {}
    if ingress.class_name == "nginx":
        # Images are larger than ingress-nginx's 1m default request body.
        annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = "16m"
    backend = IngressBackendArgs(
        service=IngressServiceBackendArgs(
            name=service_name, port=ServiceBackendPortArgs(number=server.service_port)
        )
    )
    # Only the prediction endpoint is public: health and metrics stay inside the cluster.
    path = HTTPIngressPathArgs(path=server.predict_path, path_type="Exact", backend=backend)
    spec = IngressSpecArgs(
        ingress_class_name=ingress.class_name,
        tls=[IngressTLSArgs(hosts=[ingress.host], secret_name=ingress.tls_secret_name)],
        rules=[IngressRuleArgs(host=ingress.host, http=HTTPIngressRuleValueArgs(paths=[path]))],
    )
    return annotations or None, spec


__all__ = ["Policy", "ingress_spec", "network_policies"]
