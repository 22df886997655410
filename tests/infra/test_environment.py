"""ModelEnvironment: what the real program declares for the real stack files, rule by rule."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret

from infra.config import SettingsError, parse_settings
from infra.environment import ModelEnvironment, ModelEnvironmentArgs, label_value
from infra.workload import RUN_AS_GROUP, RUN_AS_USER
from pipeline.render.mocks import ProgramRun
from tests.infra.conftest import (
    BASE,
    DIGEST,
    REPOSITORY,
    TEST_PASSWORD,
    by_kind,
    container,
    engine_values,
    one,
    pod_spec,
    pulumi_test,
    settings_map,
)

# The image the pipeline writes into a stack file changes with every deploy-bot commit,
# so tests that are about the image pin their own (never the committed one).
PINNED_DIGEST = "sha256:" + "5e" * 32
PINNED = {"repository": REPOSITORY, "tag": "4e1d07c", "digest": PINNED_DIGEST}
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


# --- The real stack files through the real settings path -----------------------------------


def environment_outputs(run: ProgramRun) -> dict[str, Any]:
    # The staging stack exports the CI tooling's outputs too.
    return {k: run.outputs[k] for k in ("image", "imageDigest", "namespace", "serviceUrl")}


def test_staging_stack_file_deploys_the_pinned_image_by_digest(run_stack: Any) -> None:
    staging = run_stack("staging", {"image": PINNED})
    assert environment_outputs(staging) == {
        "image": f"{REPOSITORY}@{PINNED_DIGEST}",
        "imageDigest": PINNED_DIGEST,
        "namespace": "cv-staging",
        "serviceUrl": "http://model-server.cv-staging.svc.cluster.local:80",
    }


def test_staging_stack_also_exports_the_tooling_endpoints(staging: ProgramRun) -> None:
    # The staging stack owns the CI tooling (DESIGN.md contracts).
    assert staging.outputs["registryHost"] == "127.0.0.1:5000"
    assert staging.outputs["jenkinsUrl"] == "http://127.0.0.1:8080/"


def test_prod_stack_file_deploys_the_pinned_image_by_digest(run_stack: Any) -> None:
    prod = run_stack("prod", {"image": PINNED})
    assert environment_outputs(prod) == {
        "image": f"{REPOSITORY}@{PINNED_DIGEST}",
        "imageDigest": PINNED_DIGEST,
        "namespace": "cv-prod",
        "serviceUrl": "http://model-server.cv-prod.svc.cluster.local:80",
    }


def test_prod_stack_without_digest_is_refused_by_the_program(run_stack: Any) -> None:
    with pytest.raises(SettingsError, match=r"^cv-platform:image\.digest is required in prod"):
        run_stack("prod", {"image": {"repository": REPOSITORY, "tag": "4e1d07c"}})


def test_staging_tag_without_digest_deploys_the_tag(run_stack: Any) -> None:
    run = run_stack("staging", {"image": {"repository": REPOSITORY, "tag": "9f3c2ab"}})
    assert container(run)["image"] == f"{REPOSITORY}:9f3c2ab"
    assert run.outputs["imageDigest"] == ""


def test_two_runs_declare_identical_inputs(run_stack: Any) -> None:
    def declared(run: ProgramRun) -> str:
        # Registration order may vary (resources resolve concurrently); inputs may not.
        declared = sorted((r.type, r.name, r.inputs) for r in run.resources)
        return json.dumps(declared, sort_keys=True)

    assert declared(run_stack("prod")) == declared(run_stack("prod"))


# --- Every object ------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_object_has_an_explicit_name_and_standard_labels(run_stack: Any, stack: str) -> None:
    run = run_stack(stack)
    objects = [r for r in run.resources if r.is_kubernetes_object]
    assert objects
    for obj in objects:
        meta = obj.inputs["metadata"]
        assert meta.get("name"), f"{obj.inputs['kind']} {obj.name} has no metadata.name"
        assert obj.outputs["metadata"]["name"] == meta["name"]
        for label in STANDARD_LABELS:
            assert label in meta["labels"], f"{obj.inputs['kind']} {meta['name']} lacks {label}"
        if obj.inputs["kind"] != "Namespace":
            assert meta["namespace"] == run.outputs["namespace"]


def test_every_kubernetes_resource_uses_the_explicit_provider(pulumi_mocks: Any) -> None:
    mocks = pulumi_mocks("staging")
    settings = parse_settings(
        engine_values({**BASE, "kubeconfig": "/etc/cv/kubeconfig"}), stack="staging"
    )

    @pulumi_test
    def build() -> pulumi.Output[str]:
        return ModelEnvironment(
            "model-server", ModelEnvironmentArgs.from_settings(settings)
        ).service_url

    build()
    provider = one_resource(mocks, "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-cv-test"
    assert provider.inputs["kubeconfig"] == "/etc/cv/kubeconfig"
    kube = [r for r in mocks.resources if r.type.startswith("kubernetes:")]
    assert len(kube) >= 10
    for res in kube:
        ref = mocks.providers[f"{res.type}::{res.name}"]
        assert ref is not None, f"{res.name} uses the default provider"
        urn, _, _id = ref.rpartition("::")
        assert urn.endswith("$pulumi:providers:kubernetes::model-server-k8s"), res.name


def one_resource(mocks: Any, typ: str) -> Any:
    found = [r for r in mocks.resources if r.type == typ]
    assert len(found) == 1
    return found[0]


@pulumi_test
def test_component_outputs_name_image_namespace_and_service_url(
    pulumi_mocks: Any,
) -> pulumi.Output[Any]:
    pulumi_mocks("staging")
    settings = parse_settings(engine_values({**BASE, "namespace": "cv-test"}), stack="staging")
    env = ModelEnvironment("model-server", ModelEnvironmentArgs.from_settings(settings))

    def check(values: list[str]) -> None:
        image, digest, namespace, url = values
        assert image == f"{REPOSITORY}@{DIGEST}"
        assert digest == DIGEST
        assert namespace == "cv-test"
        assert url == "http://model-server.cv-test.svc.cluster.local:80"

    return pulumi.Output.all(env.image, env.image_digest, env.namespace, env.service_url).apply(
        check
    )


# --- Namespace and service account ----------------------------------------------------------


def test_namespace_enforces_the_restricted_pod_security_profile(staging: ProgramRun) -> None:
    labels = one(staging, "Namespace").inputs["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"]
    assert labels["pod-security.kubernetes.io/enforce-version"] == "v1.31"


def test_service_account_does_not_automount_a_token(staging: ProgramRun) -> None:
    account = one(staging, "ServiceAccount").inputs
    assert account["automountServiceAccountToken"] is False
    assert pod_spec(staging)["serviceAccountName"] == account["metadata"]["name"]
    assert pod_spec(staging)["automountServiceAccountToken"] is False


# --- Deployment ---------------------------------------------------------------------------


def test_deployment_runs_the_image_by_digest(run_stack: Any) -> None:
    prod = run_stack("prod", {"image": PINNED})
    assert container(prod)["image"] == f"{REPOSITORY}@{PINNED_DIGEST}"
    assert container(prod)["imagePullPolicy"] == "Always"


def test_probes_use_the_model_server_endpoints(staging: ProgramRun) -> None:
    c = container(staging)
    assert c["ports"] == [{"name": "http", "containerPort": 8080.0, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_startup_probe_allows_the_configured_model_load_time(run_stack: Any) -> None:
    probe = container(run_stack("staging", {"startupTimeoutSeconds": 600}))["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] == 600


def test_probe_paths_and_port_follow_config(run_stack: Any) -> None:
    run = run_stack("staging", {"containerPort": 9000, "livenessPath": "/live"})
    c = container(run)
    assert c["ports"][0]["containerPort"] == 9000
    assert c["livenessProbe"]["httpGet"]["path"] == "/live"
    assert settings_map(run).inputs["data"]["PORT"] == "9000"


def test_requests_and_limits_come_from_config(staging: ProgramRun) -> None:
    assert container(staging)["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
        "limits": {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"},
    }


def test_prod_ephemeral_storage_holds_the_model_cache_and_scratch(prod: ProgramRun) -> None:
    resources = container(prod)["resources"]
    assert resources["requests"]["ephemeral-storage"] == "4Gi"
    assert resources["limits"]["ephemeral-storage"] == "6Gi"  # 4Gi cache + 256Mi /tmp + logs


def test_pod_runs_restricted_as_a_high_uid(staging: ProgramRun) -> None:
    pod = pod_spec(staging)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == RUN_AS_USER >= 10000
    assert pod["runAsGroup"] == RUN_AS_GROUP
    assert pod["fsGroup"] == RUN_AS_GROUP
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}


def test_container_drops_everything_and_cannot_escalate(staging: ProgramRun) -> None:
    ctx = container(staging)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["runAsNonRoot"] is True
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}


def test_scratch_and_model_cache_are_size_limited_empty_dirs(prod: ProgramRun) -> None:
    mounts = {m["name"]: m["mountPath"] for m in container(prod)["volumeMounts"]}
    assert mounts == {"tmp": "/tmp", "model-cache": "/var/cache/model"}
    volumes = {v["name"]: v["emptyDir"] for v in pod_spec(prod)["volumes"]}
    assert volumes == {"tmp": {"sizeLimit": "256Mi"}, "model-cache": {"sizeLimit": "4Gi"}}


def test_pods_spread_over_nodes_and_zones(prod: ProgramRun) -> None:
    spread = {c["topologyKey"]: c for c in pod_spec(prod)["topologySpreadConstraints"]}
    assert spread["kubernetes.io/hostname"]["whenUnsatisfiable"] == "DoNotSchedule"
    assert spread["topology.kubernetes.io/zone"]["maxSkew"] == 1
    selector = one(prod, "Deployment").inputs["spec"]["selector"]
    for constraint in spread.values():
        assert constraint["labelSelector"] == selector


def test_rolling_update_never_drops_below_desired_capacity(staging: ProgramRun) -> None:
    strategy = one(staging, "Deployment").inputs["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0.0, "maxSurge": 1.0},
    }


def test_autoscaler_owns_the_replica_count(prod: ProgramRun) -> None:
    assert "replicas" not in one(prod, "Deployment").inputs["spec"]
    hpa = one(prod, "HorizontalPodAutoscaler").inputs
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["spec"]["maxReplicas"] == 10
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "model-server",
    }
    target = hpa["spec"]["metrics"][0]["resource"]
    assert target == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60.0}}


def test_config_checksum_annotation_matches_the_config_map(staging: ProgramRun) -> None:
    data = settings_map(staging).inputs["data"]
    expected = hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    annotations = one(staging, "Deployment").inputs["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/config"] == expected
    ref = container(staging)["envFrom"][0]["configMapRef"]["name"]
    assert ref == settings_map(staging).inputs["metadata"]["name"]


def test_changing_a_model_setting_rolls_the_pods(run_stack: Any) -> None:
    def checksum(run: ProgramRun) -> str:
        template = one(run, "Deployment").inputs["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/config"]
        return value

    assert checksum(run_stack("staging")) != checksum(run_stack("staging", {"logLevel": "info"}))


def test_gpu_pods_ask_for_gpus_and_land_on_gpu_nodes(prod: ProgramRun) -> None:
    assert container(prod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    pod = pod_spec(prod)
    assert pod["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    assert pod["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_cpu_pods_have_no_gpu_scheduling(staging: ProgramRun) -> None:
    pod = pod_spec(staging)
    assert "nvidia.com/gpu" not in container(staging)["resources"]["limits"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert "tolerations" not in pod


# --- Service, budget --------------------------------------------------------------------------


def test_service_is_cluster_ip_on_the_named_port(staging: ProgramRun) -> None:
    spec = one(staging, "Service").inputs["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["ports"] == [
        {"name": "http", "port": 80.0, "targetPort": "http", "protocol": "TCP"}
    ]
    pod_labels = one(staging, "Deployment").inputs["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"].items() <= pod_labels.items()


def test_prod_has_a_pod_disruption_budget(prod: ProgramRun) -> None:
    spec = one(prod, "PodDisruptionBudget").inputs["spec"]
    assert spec["maxUnavailable"] == 1
    assert spec["selector"] == one(prod, "Deployment").inputs["spec"]["selector"]


def test_staging_has_no_pod_disruption_budget(staging: ProgramRun) -> None:
    assert by_kind(staging, "PodDisruptionBudget") == []


# --- Network policies --------------------------------------------------------------------------


def policies(run: ProgramRun) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in by_kind(run, "NetworkPolicy")}


def test_default_deny_covers_all_pods_both_directions(staging: ProgramRun) -> None:
    deny = policies(staging)["default-deny"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_ingress_is_allowed_only_to_the_serving_port_from_configured_peers(
    prod: ProgramRun,
) -> None:
    allow = policies(prod)["model-server-allow-ingress"]
    (rule,) = allow["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080.0}]
    # The client pods of api-gateway, and the ingress controller's pods (the Ingress is on).
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "api-gateway"}},
            "podSelector": {"matchLabels": {"cv-platform.io/model-client": "true"}},
        },
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}},
        },
    ]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_ingress_peer_admits_a_whole_namespace(run_stack: Any, stack: str) -> None:
    run = run_stack(
        stack,
        {
            "allowedIngressNamespaces": ["api-gateway", "ci"],
            "allowedIngressPodLabels": ["app=smoke-test"],
        },
    )
    found = policies(run)
    peers = [
        peer
        for name in ("model-server-allow-ingress", "model-server-allow-prometheus")
        for rule in found[name]["ingress"]
        for peer in rule["from"]
    ]
    assert len(peers) >= 3
    for peer in peers:
        assert set(peer) == {"namespaceSelector", "podSelector"}
        assert peer["podSelector"]["matchLabels"]


def test_client_namespaces_share_one_peer_with_the_client_label(run_stack: Any) -> None:
    run = run_stack(
        "staging",
        {
            "allowedIngressNamespaces": ["ci", "api-gateway"],
            "allowedIngressClientPodSelector": "app.kubernetes.io/part-of=gateway",
        },
    )
    (peer,) = policies(run)["model-server-allow-ingress"]["ingress"][0]["from"]
    assert peer == {
        "namespaceSelector": {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": ["api-gateway", "ci"],
                }
            ]
        },
        "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "gateway"}},
    }


def test_ingress_controller_pods_are_selected_by_their_label(run_stack: Any) -> None:
    run = run_stack(
        "prod",
        {
            "allowedIngressNamespaces": [],
            "ingressControllerNamespace": "edge",
            "ingressControllerPodSelector": "app.kubernetes.io/name=traefik",
        },
    )
    (peer,) = policies(run)["model-server-allow-ingress"]["ingress"][0]["from"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "edge"}},
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}},
    }


def test_prometheus_is_admitted_to_the_metrics_port_only(prod: ProgramRun) -> None:
    allow = policies(prod)["model-server-allow-prometheus"]
    assert allow["podSelector"] == {
        "matchLabels": {
            "app.kubernetes.io/name": "model-server",
            "app.kubernetes.io/instance": "model-server-prod",
        }
    }
    assert allow["policyTypes"] == ["Ingress"]
    (rule,) = allow["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080.0}]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_prometheus_pods_are_selected_in_the_configured_namespace(run_stack: Any) -> None:
    run = run_stack(
        "staging",
        {"monitoring": {"prometheusNamespace": "obs", "prometheusPodSelector": "app=prom"}},
    )
    (rule,) = policies(run)["model-server-allow-prometheus"]["ingress"]
    assert rule["from"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "obs"}},
            "podSelector": {"matchLabels": {"app": "prom"}},
        }
    ]


def test_monitoring_off_admits_no_prometheus(run_stack: Any) -> None:
    run = run_stack("staging", {"monitoring": {"enabled": False}})
    assert "model-server-allow-prometheus" not in policies(run)


def test_pod_label_peers_are_allowed_from_the_own_namespace(run_stack: Any) -> None:
    run = run_stack("staging", {"allowedIngressPodLabels": ["app=smoke-test"]})
    peers = policies(run)["model-server-allow-ingress"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "cv-staging"}},
        "podSelector": {"matchLabels": {"app": "smoke-test"}},
    } in peers


def test_no_peers_means_no_ingress_allow_rule(run_stack: Any) -> None:
    run = run_stack("staging", {"allowedIngressNamespaces": []})
    assert "model-server-allow-ingress" not in policies(run)


def test_egress_is_only_dns_to_kube_system_by_default(staging: ProgramRun) -> None:
    egress_policies = {name: spec for name, spec in policies(staging).items() if spec.get("egress")}
    assert list(egress_policies) == ["model-server-allow-dns"]
    (rule,) = egress_policies["model-server-allow-dns"]["egress"]
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ]
    assert {p["port"] for p in rule["ports"]} == {53.0}


def test_configured_egress_is_allowed_to_cidr_and_port(run_stack: Any) -> None:
    run = run_stack("staging", {"allowedEgress": ["10.20.0.0/16:443"]})
    (rule,) = policies(run)["model-server-allow-egress"]["egress"]
    assert rule == {
        "to": [{"ipBlock": {"cidr": "10.20.0.0/16"}}],
        "ports": [{"protocol": "TCP", "port": 443.0}],
    }


# --- Quota and limits ----------------------------------------------------------------------


def test_quota_fits_the_autoscaler_maximum_plus_the_surge_pod(prod: ProgramRun) -> None:
    hard = one(prod, "ResourceQuota").inputs["spec"]["hard"]
    # prod: maxReplicas 10 + 1 surge pod; 2/4 CPU, 8Gi, 1 GPU per pod.
    assert hard == {
        "pods": "11",
        "requests.cpu": "22",
        "limits.cpu": "44",
        "requests.memory": "88Gi",
        "limits.memory": "88Gi",
        "requests.ephemeral-storage": "44Gi",
        "limits.ephemeral-storage": "66Gi",
        "requests.nvidia.com/gpu": "11",
        "services.loadbalancers": "0",
        "services.nodeports": "0",
    }


def test_limit_range_defaults_and_caps_containers(staging: ProgramRun) -> None:
    (item,) = one(staging, "LimitRange").inputs["spec"]["limits"]
    assert item["type"] == "Container"
    limits = {"cpu": "1", "memory": "1Gi", "ephemeral-storage": "2Gi"}
    assert item["default"] == item["max"] == limits
    assert item["defaultRequest"] == {"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"}


# --- Pull secret and Ingress ----------------------------------------------------------------


def test_pull_secret_is_dockerconfigjson_and_stays_secret(pulumi_mocks: Any) -> None:
    mocks = pulumi_mocks("staging")
    settings = parse_settings(
        engine_values({**BASE, "registry": {"username": "puller"}}),
        stack="staging",
        secret=lambda _name: pulumi.Output.secret(TEST_PASSWORD),
    )

    @pulumi_test
    def build() -> pulumi.Output[str]:
        return ModelEnvironment("model-server", ModelEnvironmentArgs.from_settings(settings)).image

    build()
    secret = next(r for r in mocks.resources if r.type == "kubernetes:core/v1:Secret")
    assert secret.inputs["type"] == "kubernetes.io/dockerconfigjson"
    assert is_rpc_secret(secret.inputs["data"])
    assert TEST_PASSWORD not in json.dumps({k: v for k, v in secret.inputs.items() if k != "data"})
    payload = secret.inputs["data"]["value"][".dockerconfigjson"]
    payload = payload["value"] if is_rpc_secret(payload) else payload
    doc = json.loads(base64.b64decode(payload))
    auth = doc["auths"]["registry.example.internal"]
    assert auth["username"] == "puller"
    assert base64.b64decode(auth["auth"]).decode() == f"puller:{TEST_PASSWORD}"
    deployment = next(r for r in mocks.resources if r.type == "kubernetes:apps/v1:Deployment")
    pull = deployment.inputs["spec"]["template"]["spec"]["imagePullSecrets"]
    assert pull == [{"name": secret.inputs["metadata"]["name"]}]
    for res in mocks.resources:
        if res is not secret:
            assert TEST_PASSWORD not in json.dumps(res.inputs, default=str), res.name


def test_missing_registry_password_is_refused_by_the_program(project: Any) -> None:
    from pipeline.render.mocks import run_program
    from pipeline.stacks.config import engine_config, load_stack_config

    config, secret_keys = engine_config(load_stack_config(project, "staging"))
    config.pop("cv-platform:registryPassword")
    with pytest.raises(SettingsError, match=r"^cv-platform:registryPassword is required when"):
        run_program(project.root, "staging", config, secret_keys)


def test_no_registry_username_means_no_pull_secret(run_stack: Any) -> None:
    run = run_stack("staging", {"registry": {"server": "", "username": ""}})
    assert by_kind(run, "Secret") == []
    assert "imagePullSecrets" not in pod_spec(run)


def test_ingress_serves_only_predict_over_tls(prod: ProgramRun) -> None:
    spec = one(prod, "Ingress").inputs["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [
        {"hosts": ["detect.example.com"], "secretName": "detect-example-com-tls"}
    ]
    (rule,) = spec["rules"]
    assert rule["host"] == "detect.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/predict"
    assert path["pathType"] == "Exact"
    assert path["backend"]["service"] == {"name": "model-server", "port": {"number": 80.0}}


def test_staging_has_no_ingress(staging: ProgramRun) -> None:
    assert by_kind(staging, "Ingress") == []


def test_long_stack_names_still_give_valid_label_values() -> None:
    value = label_value("model-server-" + "feature.branch_" * 6)
    assert len(value) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", value)


def test_version_label_is_the_tag_else_the_digest(run_stack: Any) -> None:
    def version(run: ProgramRun) -> str | None:
        labels = one(run, "Deployment").inputs["spec"]["template"]["metadata"]["labels"]
        value: str | None = labels.get("app.kubernetes.io/version")
        return value

    assert version(run_stack("prod", {"image": PINNED})) == "4e1d07c"
    untagged = {**PINNED, "tag": ""}
    assert version(run_stack("prod", {"image": untagged})) == PINNED_DIGEST[7:19]
    odd_tag = {**PINNED, "tag": "_build."}
    assert version(run_stack("prod", {"image": odd_tag})) == PINNED_DIGEST[7:19]
