"""Each rule of the policy pack: one passing and one violating resource, through `validate`."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from policy import rules
from policy.adapter import CheckedResource, evaluate

DIGEST = "sha256:" + "ab" * 32
GOOD_CONTAINER: dict[str, Any] = {
    "name": "model-server",
    "image": f"registry.example.internal/cv-platform/model-server@{DIGEST}",
    "resources": {
        "limits": {"cpu": "2", "memory": "2Gi", "ephemeral-storage": "2Gi"},
        "requests": {"cpu": "500m"},
    },
    "env": [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db"},
    ],
    "ports": [{"containerPort": 8080.0, "name": "http"}],
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
    },
}
GOOD_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "model-server", "namespace": "cv-prod"},
    "spec": {
        "replicas": 3.0,
        "template": {
            "spec": {
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001.0,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [GOOD_CONTAINER],
                "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
            }
        },
    },
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _opts(protect: bool = False) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def _violations(
    policy: ResourceValidationPolicy,
    rtype: str,
    props: dict[str, Any],
    stack: str = "prod",
    opts: PolicyResourceOptions | None = None,
) -> list[str]:
    name = "res"
    args = ResourceValidationArgs(
        resource_type=rtype,
        props=props,
        urn=f"urn:pulumi:{stack}::cv-platform::{rtype}::{name}",
        name=name,
        opts=opts or _opts(),
        provider=None,
    )
    found: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        found.append(message)

    result = policy.validate(args, report)
    assert result is None  # every rule is synchronous
    return found


def _deployment(**container_changes: Any) -> dict[str, Any]:
    dep = copy.deepcopy(GOOD_DEPLOYMENT)
    dep["spec"]["template"]["spec"]["containers"][0].update(container_changes)
    return dep


# --- restricted pod security -------------------------------------------------------------


def test_restricted_accepts_a_hardened_deployment() -> None:
    assert _violations(rules.RESTRICTED_POD_SECURITY, DEPLOYMENT, GOOD_DEPLOYMENT) == []


def test_restricted_refuses_a_privileged_root_container() -> None:
    dep = _deployment(securityContext={"privileged": True, "runAsUser": 0.0})
    dep["spec"]["template"]["spec"]["hostNetwork"] = True
    dep["spec"]["template"]["spec"]["volumes"].append({"name": "sock", "hostPath": {"path": "/"}})
    found = _violations(rules.RESTRICTED_POD_SECURITY, DEPLOYMENT, dep)
    assert "container model-server is privileged" in found
    assert "container model-server must drop ALL capabilities" in found
    assert "container model-server securityContext.runAsUser is 0 (root)" in found
    assert "pod sets hostNetwork: true" in found
    assert "volume sock uses hostPath" in found


def test_restricted_needs_seccomp_and_non_root_somewhere() -> None:
    dep = copy.deepcopy(GOOD_DEPLOYMENT)
    dep["spec"]["template"]["spec"]["securityContext"] = {}
    found = _violations(rules.RESTRICTED_POD_SECURITY, DEPLOYMENT, dep)
    assert any("runAsNonRoot" in f for f in found)
    assert any("seccompProfile" in f for f in found)


def test_restricted_namespace_label_passes() -> None:
    ns = {"metadata": {"name": "cv-prod", "labels": {rules.PSA_ENFORCE_LABEL: "restricted"}}}
    assert _violations(rules.RESTRICTED_POD_SECURITY, rules.K8S_NAMESPACE, ns) == []


def test_restricted_namespace_without_label_fails() -> None:
    ns = {"metadata": {"name": "cv-prod", "labels": {rules.PSA_ENFORCE_LABEL: "baseline"}}}
    found = _violations(rules.RESTRICTED_POD_SECURITY, rules.K8S_NAMESPACE, ns)
    assert found == [f"namespace must carry the label {rules.PSA_ENFORCE_LABEL}: restricted"]


def test_restricted_reaches_cronjob_pod_templates() -> None:
    cron = {
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "x"}]}}}}}
    }
    found = _violations(rules.RESTRICTED_POD_SECURITY, "kubernetes:batch/v1:CronJob", cron)
    assert "container x must drop ALL capabilities" in found


# --- images pinned by digest in prod ---------------------------------------------------------


def test_prod_image_by_digest_passes() -> None:
    assert _violations(rules.IMAGES_PINNED_BY_DIGEST, DEPLOYMENT, GOOD_DEPLOYMENT) == []


def test_prod_image_by_tag_fails() -> None:
    dep = _deployment(image="registry.example.internal/cv-platform/model-server:latest")
    found = _violations(rules.IMAGES_PINNED_BY_DIGEST, DEPLOYMENT, dep)
    assert found == ["container model-server image is not pinned by digest (repo@sha256:<64 hex>)"]


def test_staging_may_use_a_tag() -> None:
    dep = _deployment(image="registry.example.internal/cv-platform/model-server:9f3c2ab")
    assert _violations(rules.IMAGES_PINNED_BY_DIGEST, DEPLOYMENT, dep, stack="staging") == []


def test_an_object_labelled_prod_needs_a_digest_whatever_its_stack_is_called() -> None:
    dep = _deployment(image="registry.example.internal/cv-platform/model-server:9f3c2ab")
    dep["metadata"].setdefault("labels", {})[rules.ENVIRONMENT_LABEL] = "prod"
    found = _violations(rules.IMAGES_PINNED_BY_DIGEST, DEPLOYMENT, dep, stack="eu-live")
    assert found == ["container model-server image is not pinned by digest (repo@sha256:<64 hex>)"]


def test_prod_docker_container_needs_a_digest() -> None:
    rtype = rules.DOCKER_CONTAINER
    assert _violations(rules.IMAGES_PINNED_BY_DIGEST, rtype, {"image": DIGEST}) == []
    assert _violations(rules.IMAGES_PINNED_BY_DIGEST, rtype, {"image": "registry:2"}) != []


# --- limits ----------------------------------------------------------------------------------


def test_limits_present_pass() -> None:
    assert _violations(rules.RESOURCE_LIMITS, DEPLOYMENT, GOOD_DEPLOYMENT) == []


def test_missing_memory_limit_fails() -> None:
    limits = {"cpu": "1", "ephemeral-storage": "1Gi"}
    dep = _deployment(resources={"limits": limits, "requests": {"memory": "1Gi"}})
    found = _violations(rules.RESOURCE_LIMITS, DEPLOYMENT, dep)
    assert found == ["container model-server has no memory limit (resources.limits)"]


def test_missing_ephemeral_storage_limit_fails() -> None:
    dep = _deployment(resources={"limits": {"cpu": "1", "memory": "1Gi"}})
    found = _violations(rules.RESOURCE_LIMITS, DEPLOYMENT, dep)
    assert found == ["container model-server has no ephemeral-storage limit (resources.limits)"]


# --- LoadBalancer ----------------------------------------------------------------------------


def test_load_balancer_with_allowlist_passes() -> None:
    svc = {"spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.20.0.0/16"]}}
    assert _violations(rules.LOAD_BALANCER_SOURCE_RANGES, rules.K8S_SERVICE, svc) == []
    cluster_ip = {"spec": {"type": "ClusterIP"}}
    assert _violations(rules.LOAD_BALANCER_SOURCE_RANGES, rules.K8S_SERVICE, cluster_ip) == []


@pytest.mark.parametrize("ranges", [None, [], ["0.0.0.0/0"]])
def test_load_balancer_without_allowlist_fails(ranges: list[str] | None) -> None:
    spec: dict[str, Any] = {"type": "LoadBalancer"}
    if ranges is not None:
        spec["loadBalancerSourceRanges"] = ranges
    found = _violations(rules.LOAD_BALANCER_SOURCE_RANGES, rules.K8S_SERVICE, {"spec": spec})
    assert len(found) == 1
    assert "LoadBalancer" in found[0]


# --- plaintext secrets in env ----------------------------------------------------------------


def test_env_from_secret_ref_passes() -> None:
    assert _violations(rules.NO_PLAINTEXT_SECRETS, DEPLOYMENT, GOOD_DEPLOYMENT) == []


def test_literal_password_in_env_fails_without_showing_it() -> None:
    dep = _deployment(env=[{"name": "DB_PASSWORD", "value": "hunter2-literal"}])
    found = _violations(rules.NO_PLAINTEXT_SECRETS, DEPLOYMENT, dep)
    assert found == [
        "container model-server env DB_PASSWORD holds a literal secret (use valueFrom.secretKeyRef)"
    ]
    assert "hunter2" not in found[0]


def test_secret_shaped_value_under_any_name_fails() -> None:
    dep = _deployment(env=[{"name": "UPSTREAM", "value": "https://bot:pw-1234@git.example/x"}])
    assert len(_violations(rules.NO_PLAINTEXT_SECRETS, DEPLOYMENT, dep)) == 1


def test_docker_container_envs_are_checked() -> None:
    rtype = rules.DOCKER_CONTAINER
    ok = {"envs": ["JENKINS_ADMIN_PASSWORD_FILE=/run/secrets/admin", "JAVA_OPTS=-Xmx1g"]}
    bad = {"envs": ["JENKINS_ADMIN_PASSWORD=changeme123"]}
    assert _violations(rules.NO_PLAINTEXT_SECRETS, rtype, ok) == []
    assert _violations(rules.NO_PLAINTEXT_SECRETS, rtype, bad) == [
        "env JENKINS_ADMIN_PASSWORD holds a literal secret (mount a file or use a secret)"
    ]


# --- protected tooling volumes ---------------------------------------------------------------


def test_protected_volume_passes() -> None:
    props = {"name": "jenkins-home"}
    opts = _opts(protect=True)
    assert (
        _violations(rules.PROTECTED_TOOLING_VOLUMES, rules.DOCKER_VOLUME, props, "staging", opts)
        == []
    )


def test_volume_labelled_disposable_needs_no_protection() -> None:
    props = {"name": "cache", "labels": [{"label": rules.DISPOSABLE_LABEL, "value": "true"}]}
    assert _violations(rules.PROTECTED_TOOLING_VOLUMES, rules.DOCKER_VOLUME, props) == []


def test_unprotected_volume_fails() -> None:
    found = _violations(rules.PROTECTED_TOOLING_VOLUMES, rules.DOCKER_VOLUME, {"name": "x"})
    assert len(found) == 1
    assert "not protected" in found[0]


# --- the adapter -----------------------------------------------------------------------------


def test_adapter_reports_rule_resource_and_location() -> None:
    svc = {"spec": {"type": "LoadBalancer"}}
    outcome = evaluate(
        [
            CheckedResource(DEPLOYMENT, "cv-prod/model-server", GOOD_DEPLOYMENT),
            CheckedResource(
                rules.K8S_SERVICE, "cv-prod/public", svc, location="service-cv-prod-public.yaml"
            ),
        ],
        "prod",
    )
    assert [(v.policy, v.resource_name, v.location) for v in outcome.violations] == [
        ("load-balancer-source-ranges", "cv-prod/public", "service-cv-prod-public.yaml")
    ]
    assert outcome.resources_checked == 2
    assert outcome.mandatory == outcome.violations


def test_adapter_marks_protect_not_checked_when_options_are_unknown() -> None:
    outcome = evaluate(
        [CheckedResource(rules.DOCKER_VOLUME, "jenkins-home", {"name": "j"})], "staging"
    )
    assert outcome.violations == ()
    (nc,) = outcome.not_checked
    assert (nc.policy, nc.resource_name) == ("protected-tooling-volumes", "jenkins-home")
    assert "offline render" in nc.reason


def test_adapter_sees_protect_when_the_source_has_it() -> None:
    bad = evaluate([CheckedResource(rules.DOCKER_VOLUME, "v", {}, protect=False)], "staging")
    good = evaluate([CheckedResource(rules.DOCKER_VOLUME, "v", {}, protect=True)], "staging")
    assert [v.policy for v in bad.violations] == ["protected-tooling-volumes"]
    assert good.violations == ()
    assert good.not_checked == ()


# --- the pack itself -------------------------------------------------------------------------


def test_policy_pack_is_constructed_only_in_its_entry_point(project_root: Path) -> None:
    users = [
        p.relative_to(project_root).as_posix()
        for p in (project_root / "policy").glob("*.py")
        if "PolicyPack(" in p.read_text(encoding="utf-8")
    ]
    assert users == ["policy/__main__.py"]
