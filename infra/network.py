"""How traffic reaches the model server: NetworkPolicies, and the optional Ingress.

A default deny for every pod of the namespace; the serving port open only to pods
the settings name, each peer selecting a namespace *and* pod labels in one peer
(so that no namespace is admitted whole): the client pods of
``allowedIngressNamespaces``, the labelled pods of the environment's own namespace,
and the ingress controller's pods when the Ingress is on; with monitoring on, the
Prometheus pods of its namespace admitted to the port that serves the metrics path
(the server's one port); DNS to kube-dns; and only the egress the settings list.
With no peer there is no allow rule at all: an empty ``from`` would admit everyone.
The Ingress publishes the prediction endpoint alone, over TLS. Pure: it builds Args.
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


NAMESPACE_NAME = "kubernetes.io/metadata.name"


def _peer(namespaces: list[str], label: tuple[str, str]) -> NetworkPolicyPeerArgs:
    """Pods labelled ``label`` in ``namespaces``: both selectors in one peer (an AND)."""
    if len(namespaces) == 1:
        namespace = LabelSelectorArgs(match_labels={NAMESPACE_NAME: namespaces[0]})
    else:
        namespace = LabelSelectorArgs(
            match_expressions=[
                LabelSelectorRequirementArgs(key=NAMESPACE_NAME, operator="In", values=namespaces)
            ]
        )
    return NetworkPolicyPeerArgs(
        namespace_selector=namespace, pod_selector=LabelSelectorArgs(match_labels=dict([label]))
    )


def _ingress_peers(
    namespace: str, network: NetworkSettings, ingress: IngressSettings | None
) -> list[NetworkPolicyPeerArgs]:
    peers: list[NetworkPolicyPeerArgs] = []
    if network.ingress_namespaces:
        peers.append(_peer(sorted(network.ingress_namespaces), network.ingress_client_label))
    peers.extend(_peer([namespace], label) for label in network.ingress_pod_labels)
    if ingress is not None:
        peers.append(_peer([ingress.controller_namespace], ingress.controller_pod_label))
    return peers


def _prometheus_rule(monitoring: MonitoringSettings, port: int) -> NetworkPolicyIngressRuleArgs:
    """Prometheus' pods (by label, in their namespace) to the metrics port, nothing else."""
    peer = _peer([monitoring.prometheus_namespace], monitoring.prometheus_pod_label)
    return NetworkPolicyIngressRuleArgs(
        from_=[peer], ports=[NetworkPolicyPortArgs(protocol="TCP", port=port)]
    )


def network_policies(
    app: str,
    namespace: str,
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
    peers = _ingress_peers(namespace, network, ingress)
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
                namespace_selector=LabelSelectorArgs(match_labels={NAMESPACE_NAME: "kube-system"}),
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
