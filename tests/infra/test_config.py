"""infra/config.py: every validation rule, through parse_settings (the pure core)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from infra.config import (
    DEFAULTS,
    PIPELINE_KEYS,
    REQUIRED_KEYS,
    SECRET_KEYS,
    Settings,
    SettingsError,
    cpu_millis,
    memory_bytes,
    parse_settings,
)
from tests.infra.conftest import BASE, DIGEST, PROD_BASE, REPOSITORY, engine_values


def parse(stack: str = "staging", **overrides: Any) -> Settings:
    base: Mapping[str, Any] = PROD_BASE if stack == "prod" else BASE
    values = engine_values({**base, **overrides})
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
    return parse_settings(values, stack=stack)


def refused(stack: str = "staging", **overrides: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        parse(stack, **overrides)
    return str(caught.value)


# --- Defaults -------------------------------------------------------------------


def test_defaults_equal_pulumi_yaml_declarations(project_root: Path) -> None:
    block = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    declared = {
        key: entry["default"] if "default" in entry else entry["value"]
        for key, entry in block.items()
        if "default" in entry or "value" in entry
    }
    program_defaults = {k: v for k, v in declared.items() if k not in PIPELINE_KEYS}
    assert program_defaults == dict(DEFAULTS)


def test_every_pulumi_yaml_key_is_read_or_owned_by_the_pipeline(project_root: Path) -> None:
    block = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    known = {*DEFAULTS, *REQUIRED_KEYS, *PIPELINE_KEYS}
    assert set(block) == known


def test_secrets_are_declared_secret_without_default_under_template_config(
    project_root: Path,
) -> None:
    # Typed, they would be demanded in every stack (prod has no tooling): see Pulumi.yaml.
    document = yaml.safe_load((project_root / "Pulumi.yaml").read_text())
    declared = document["template"]["config"]
    assert set(declared) == set(SECRET_KEYS)
    for key in SECRET_KEYS:
        assert declared[key]["secret"] is True
        assert declared[key].get("description")
        assert "default" not in declared[key]
        assert key not in document["config"]


def test_the_cli_demands_only_the_required_keys_in_every_stack(project_root: Path) -> None:
    # Pulumi refuses `up` on a stack missing a typed key that has no default or value.
    block = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    demanded = {k for k, e in block.items() if "type" in e and "default" not in e}
    assert demanded == set(REQUIRED_KEYS)


def test_defaults_give_a_valid_staging_stack() -> None:
    settings = parse_settings(engine_values(BASE), stack="staging")
    assert settings.scaling.replicas == 1
    assert settings.server.container_port == 8080
    assert settings.server.liveness_path == "/healthz"
    assert settings.server.readiness_path == "/readyz"
    assert settings.namespace == "cv-platform-staging"
    assert settings.tooling is None


def test_settings_are_frozen() -> None:
    settings = parse()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.namespace = "other"  # type: ignore[misc]


# --- Types ------------------------------------------------------------------------


def test_integer_key_refuses_words() -> None:
    assert refused(replicas="three") == "cv-platform:replicas must be an integer >= 1, got 'three'"


def test_integer_key_refuses_zero_replicas() -> None:
    assert refused(replicas=0).startswith("cv-platform:replicas must be an integer >= 1")


def test_boolean_key_refuses_other_words() -> None:
    message = refused(podDisruptionBudget="yes")
    assert message == "cv-platform:podDisruptionBudget must be true or false, got 'yes'"


def test_array_key_refuses_a_plain_string() -> None:
    message = refused(allowedIngressNamespaces="ci")
    assert message.startswith("cv-platform:allowedIngressNamespaces must be a list of strings")


def test_image_must_be_an_object() -> None:
    assert refused(image="repo:tag").startswith("cv-platform:image must be an object")


def test_image_refuses_unknown_fields() -> None:
    message = refused(image={"repository": REPOSITORY, "digest": DIGEST, "tga": "x"})
    assert message.startswith("cv-platform:image.tga is not a known field")


# --- Environment and stack name -------------------------------------------------------


def test_environment_defaults_to_the_stack_name() -> None:
    assert parse("prod").environment == "prod"
    assert parse("staging").environment == "staging"


def test_other_stack_names_must_choose_an_environment() -> None:
    message = refused("dev-alice")
    assert message.startswith("cv-platform:environment must be staging or prod")
    assert "pulumi config set environment" in message


def test_other_stack_names_follow_the_chosen_environment() -> None:
    settings = parse("dev-alice", environment="staging", namespace="cv-dev-alice")
    assert settings.environment == "staging"


def test_prod_stack_cannot_claim_staging_rules() -> None:
    message = refused("prod", environment="staging")
    assert message.startswith("cv-platform:environment is 'staging' but the stack is 'prod'")


def test_unknown_environment_is_refused() -> None:
    assert refused(environment="qa") == "cv-platform:environment must be staging or prod, got 'qa'"


# --- Cluster access ------------------------------------------------------------------


def test_kube_context_is_required() -> None:
    message = refused(kubeContext=None)
    assert message.startswith("cv-platform:kubeContext is required")


def test_kubeconfig_path_is_kept() -> None:
    settings = parse(kubeconfig="/etc/cv/kubeconfig")
    assert settings.kubernetes.kubeconfig == "/etc/cv/kubeconfig"
    assert settings.kubernetes.context == "kind-cv-test"


# --- Image -------------------------------------------------------------------------


def test_prod_refuses_tag_without_digest() -> None:
    message = refused("prod", image={"repository": REPOSITORY, "tag": "9f3c2ab"})
    assert message.startswith("cv-platform:image.digest is required in prod")


def test_staging_allows_tag_without_digest() -> None:
    settings = parse(image={"repository": REPOSITORY, "tag": "9f3c2ab"})
    assert settings.image.reference == f"{REPOSITORY}:9f3c2ab"


def test_staging_refuses_mutable_tag_without_digest() -> None:
    message = refused(image={"repository": REPOSITORY, "tag": "latest"})
    assert message.startswith("cv-platform:image.tag 'latest' is a mutable tag")


def test_mutable_tags_come_from_config() -> None:
    message = refused(image={"repository": REPOSITORY, "tag": "main"}, mutableTags=["main"])
    assert "'main' is a mutable tag" in message


def test_image_needs_tag_or_digest() -> None:
    assert refused(image={"repository": REPOSITORY}).startswith("cv-platform:image needs a digest")


def test_all_digit_tag_written_unquoted_is_read_as_text() -> None:
    settings = parse(image={"repository": REPOSITORY, "tag": 1234567, "digest": DIGEST})
    assert settings.image.tag == "1234567"


def test_image_fields_refuse_other_types() -> None:
    message = refused(image={"repository": REPOSITORY, "tag": ["a"], "digest": DIGEST})
    assert message == "cv-platform:image.tag must be a string, got ['a']"


def test_digest_is_deployed_when_set() -> None:
    assert parse("prod").image.reference == f"{REPOSITORY}@{DIGEST}"


@pytest.mark.parametrize(
    "digest",
    [
        "sha256:" + "AB" * 32,  # uppercase hex
        "sha256:" + "ab" * 31,  # too short
        "sha512:" + "ab" * 32,  # other algorithm
        "ab" * 32,  # no algorithm
        "sha256:" + "g" * 64,  # not hex
    ],
)
def test_digest_grammar_is_sha256_and_64_lowercase_hex(digest: str) -> None:
    message = refused(image={"repository": REPOSITORY, "digest": digest})
    assert message.startswith("cv-platform:image.digest must be sha256: followed by 64")


def test_repository_must_name_its_registry_host() -> None:
    message = refused(image={"repository": "model-server", "digest": DIGEST})
    assert message.startswith("cv-platform:image.repository must start with its registry host")


def test_repository_path_must_be_lowercase() -> None:
    message = refused(image={"repository": "registry.example.internal/CV/Model", "digest": DIGEST})
    assert message.startswith("cv-platform:image.repository must be host[:port]/path")


def test_tag_grammar_is_checked() -> None:
    message = refused(image={"repository": REPOSITORY, "tag": "-bad tag", "digest": DIGEST})
    assert message.startswith("cv-platform:image.tag must be a Docker tag")


# --- Capacity ---------------------------------------------------------------------


def test_prod_requires_at_least_two_replicas() -> None:
    assert refused("prod", replicas=1).startswith("cv-platform:replicas must be at least 2 in prod")


def test_prod_requires_a_pod_disruption_budget() -> None:
    message = refused("prod", podDisruptionBudget=False)
    assert message.startswith("cv-platform:podDisruptionBudget must be true in prod")


def test_staging_allows_one_replica_without_budget() -> None:
    settings = parse(replicas=1, podDisruptionBudget=False)
    assert settings.scaling.replicas == 1
    assert not settings.scaling.pod_disruption_budget


def test_max_replicas_cannot_be_below_replicas() -> None:
    message = refused(replicas=3, maxReplicas=2)
    assert message == "cv-platform:maxReplicas must be at least cv-platform:replicas (3), got 2"


def test_target_cpu_utilization_is_a_percentage() -> None:
    assert refused(targetCpuUtilization=150).startswith(
        "cv-platform:targetCpuUtilization must be an integer from 1 to 100"
    )


@pytest.mark.parametrize("quantity", ["500m", "1", "2.5", "0.5", "100m"])
def test_cpu_quantities_accepted(quantity: str) -> None:
    assert parse(cpuRequest=quantity, cpuLimit="4").resources.cpu_request == quantity


@pytest.mark.parametrize("quantity", ["-1", "-500m", "1 core", "1.5.2", "0", "0m", "1Gi", ""])
def test_cpu_quantities_refused(quantity: str) -> None:
    assert refused(cpuRequest=quantity).startswith(
        "cv-platform:cpuRequest must be a positive CPU quantity"
    )


@pytest.mark.parametrize("quantity", ["512Mi", "2Gi", "1G", "1073741824", "1.5Gi"])
def test_memory_quantities_accepted(quantity: str) -> None:
    settings = parse(memoryRequest=quantity, memoryLimit="4Gi")
    assert settings.resources.memory_request == quantity


@pytest.mark.parametrize("quantity", ["-1Gi", "2GB", "Gi", "1.5.2Mi", "0", "two"])
def test_memory_quantities_refused(quantity: str) -> None:
    assert refused(memoryLimit=quantity).startswith(
        "cv-platform:memoryLimit must be a positive memory quantity"
    )


def test_quantity_arithmetic() -> None:
    assert cpu_millis("2.5") == 2500
    assert cpu_millis("250m") == 250
    assert memory_bytes("1.5Gi") == 3 * 2**29
    assert memory_bytes("1G") == 10**9


def test_cpu_limit_below_request_is_refused() -> None:
    message = refused(cpuRequest="2", cpuLimit="500m")
    assert message == "cv-platform:cpuLimit must be at least cv-platform:cpuRequest (2), got '500m'"


@pytest.mark.parametrize("quantity", ["-1Gi", "2GB", "0", "", "lots"])
def test_ephemeral_storage_quantities_refused(quantity: str) -> None:
    assert refused(ephemeralStorageRequest=quantity).startswith(
        "cv-platform:ephemeralStorageRequest must be a positive storage quantity"
    )


def test_ephemeral_storage_limit_below_request_is_refused() -> None:
    message = refused(ephemeralStorageRequest="3Gi", ephemeralStorageLimit="2Gi")
    assert message == (
        "cv-platform:ephemeralStorageLimit must be at least "
        "cv-platform:ephemeralStorageRequest (3Gi), got '2Gi'"
    )


def test_ephemeral_storage_limit_must_hold_the_empty_dirs() -> None:
    message = refused(modelCacheSize="2Gi", tmpSize="512Mi", ephemeralStorageLimit="2Gi")
    assert message == (
        "cv-platform:ephemeralStorageLimit must hold cv-platform:modelCacheSize (2Gi) plus "
        "cv-platform:tmpSize (512Mi), got '2Gi'"
    )


def test_ephemeral_storage_limit_that_holds_the_empty_dirs_is_accepted() -> None:
    settings = parse(modelCacheSize="2Gi", tmpSize="512Mi", ephemeralStorageLimit="2560Mi")
    assert settings.resources.ephemeral_storage_limit == "2560Mi"


def test_memory_limit_below_request_is_refused() -> None:
    message = refused(memoryRequest="2Gi", memoryLimit="1024Mi")
    assert message.startswith("cv-platform:memoryLimit must be at least cv-platform:memoryRequest")


# --- GPU -----------------------------------------------------------------------------


def test_gpu_count_range() -> None:
    assert refused(gpuCount=-1).startswith("cv-platform:gpuCount must be an integer from 0 to 8")
    assert refused(gpuCount=9).startswith("cv-platform:gpuCount must be an integer from 0 to 8")


def test_gpu_tolerations_parse_kubectl_taint_syntax() -> None:
    settings = parse(gpuCount=1, gpuTolerations=["nvidia.com/gpu:NoSchedule", "pool=gpu:NoExecute"])
    tolerations = [(t.key, t.value, t.effect) for t in settings.gpu.tolerations]
    assert tolerations == [("nvidia.com/gpu", "", "NoSchedule"), ("pool", "gpu", "NoExecute")]


def test_gpu_toleration_effect_is_checked() -> None:
    message = refused(gpuTolerations=["nvidia.com/gpu:Never"])
    assert message.startswith("cv-platform:gpuTolerations entries must be key[=value]:Effect")


def test_gpu_node_selector_needs_key_value() -> None:
    message = refused(gpuNodeSelector=["gpu"])
    assert message.startswith("cv-platform:gpuNodeSelector entries must be label selectors")


# --- Names, ports, paths -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CV-Prod", "cv_prod", "-cv", "cv-", "a" * 64])
def test_namespace_must_be_a_dns_label(name: str) -> None:
    assert refused(namespace=name).startswith("cv-platform:namespace must be a DNS-1123 label")


def test_namespace_cannot_be_a_system_namespace() -> None:
    assert refused(namespace="default").startswith(
        "cv-platform:namespace must be a namespace of its own"
    )


def test_derived_namespace_must_be_valid() -> None:
    message = refused("Dev_Alice", environment="staging")
    assert message.startswith("cv-platform:namespace is required")


def test_app_name_must_start_with_a_letter() -> None:
    assert refused(appName="1-server").startswith("cv-platform:appName must be a DNS-1035 label")


def test_container_port_must_be_unprivileged() -> None:
    message = refused(containerPort=80)
    assert message == "cv-platform:containerPort must be an integer from 1024 to 65535, got '80'"


def test_service_port_range() -> None:
    assert refused(servicePort=70000).startswith(
        "cv-platform:servicePort must be an integer from 1 to 65535"
    )


def test_probe_paths_must_be_absolute() -> None:
    assert refused(livenessPath="healthz").startswith(
        "cv-platform:livenessPath must be an absolute HTTP path"
    )


def test_log_level_is_an_enum() -> None:
    assert refused(logLevel="verbose") == (
        "cv-platform:logLevel must be one of debug|info|warning|error, got 'verbose'"
    )


def test_startup_timeout_range() -> None:
    assert refused(startupTimeoutSeconds=5).startswith(
        "cv-platform:startupTimeoutSeconds must be an integer from 10 to 3600"
    )


# --- Network ---------------------------------------------------------------------------------


def test_ingress_namespaces_must_be_dns_labels() -> None:
    message = refused(allowedIngressNamespaces=["Api Gateway"])
    assert message.startswith("cv-platform:allowedIngressNamespaces must be a DNS-1123 label")


@pytest.mark.parametrize("key", ["allowedIngressClientPodSelector", "ingressControllerPodSelector"])
@pytest.mark.parametrize("value", ["", "app"])
def test_ingress_peer_pod_selectors_are_required_labels(key: str, value: str) -> None:
    ingress: dict[str, Any] = {
        "ingressEnabled": True,
        "ingressHost": "a.example.com",
        "ingressTlsSecretName": "t",
    }
    message = refused(**ingress, **{key: value})
    assert message.startswith(f"cv-platform:{key} entries must be label selectors key=value")


def test_ingress_pod_labels_parse() -> None:
    settings = parse(allowedIngressPodLabels=["app.kubernetes.io/name=gateway"])
    assert settings.network.ingress_pod_labels == (("app.kubernetes.io/name", "gateway"),)


@pytest.mark.parametrize(
    "entry", ["10.0.0.0/8", "10.0.0.1:443", "10.0.0.0/33:443", "10.0.0.1/8:443", "10.0.0.0/8:0"]
)
def test_egress_entries_must_be_cidr_and_port(entry: str) -> None:
    assert refused(allowedEgress=[entry]).startswith(
        "cv-platform:allowedEgress entries must be CIDR:port"
    )


def test_egress_entries_parse_ipv4_and_ipv6() -> None:
    settings = parse(allowedEgress=["10.20.0.0/16:443", "fd00::/8:9000"])
    assert [(r.cidr, r.port) for r in settings.network.egress] == [
        ("10.20.0.0/16", 443),
        ("fd00::/8", 9000),
    ]


def test_ingress_requires_a_host() -> None:
    message = refused(ingressEnabled=True, ingressTlsSecretName="tls")
    assert message == "cv-platform:ingressHost is required when cv-platform:ingressEnabled is true"


def test_ingress_requires_tls() -> None:
    message = refused(ingressEnabled=True, ingressHost="detect.example.com")
    assert message.startswith("cv-platform:ingressTlsSecretName is required")


def test_ingress_is_off_by_default() -> None:
    assert parse().ingress is None


# --- Registry credentials -----------------------------------------------------------------


def test_registry_server_defaults_to_the_image_host() -> None:
    settings = parse()
    assert settings.registry.server == "registry.example.internal"
    assert not settings.registry.has_credentials


def test_registry_username_requires_the_secret_password() -> None:
    message = refused(registry={"username": "puller"})
    assert message.startswith(
        "cv-platform:registryPassword is required when cv-platform:registry.username"
    )
    assert "pulumi config set --secret registryPassword" in message


def test_registry_password_is_read_as_a_secret_output() -> None:
    asked: list[str] = []

    def secret(name: str) -> pulumi.Output[str]:
        asked.append(name)
        return pulumi.Output.secret("token")

    settings = parse_settings(
        engine_values({**BASE, "registry": {"username": "puller"}}), stack="staging", secret=secret
    )
    assert asked == ["registryPassword"]
    assert isinstance(settings.registry.password, pulumi.Output)
    assert settings.registry.has_credentials


def test_registry_refuses_unknown_fields() -> None:
    message = refused(registry={"user": "puller"})
    assert message.startswith("cv-platform:registry.user is not a known field")


# --- Pulumi.yaml and the stack files as the Pulumi CLI checks them ---------------------------

_SCHEMA_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list}


def _matches(type_name: str, items: Mapping[str, Any] | None, value: Any) -> bool:
    # Pulumi's ValidateConfigValue: no bool for integer, arrays checked item by item.
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "array":
        return (
            isinstance(value, list)
            and items is not None
            and all(_matches(items["type"], items.get("items"), v) for v in value)
        )
    return isinstance(value, _SCHEMA_TYPES[type_name])


def _project_block(project_root: Path) -> dict[str, Any]:
    block: dict[str, Any] = yaml.safe_load((project_root / "Pulumi.yaml").read_text())["config"]
    return block


def test_pulumi_yaml_declarations_are_valid_pulumi_schema(project_root: Path) -> None:
    for key, entry in _project_block(project_root).items():
        assert ":" not in key, f"{key}: project keys are declared without the namespace"
        assert isinstance(entry, dict), key
        if "type" not in entry:
            # Objects: Pulumi's schema cannot type them, so a value is declared.
            assert set(entry) == {"value", "description"}, key
            assert isinstance(entry["value"], dict), key
            assert entry["description"], key
            continue
        assert entry["type"] in _SCHEMA_TYPES, key
        assert set(entry) <= {"type", "items", "default", "description", "secret"}, key
        assert entry.get("description"), f"{key} has no description"
        if entry["type"] == "array":
            assert entry["items"]["type"] in _SCHEMA_TYPES, key
        if "default" in entry:
            assert _matches(entry["type"], entry.get("items"), entry["default"]), key


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_stack_file_values_match_the_declared_types(project_root: Path, stack: str) -> None:
    block = _project_block(project_root)
    config = yaml.safe_load((project_root / f"Pulumi.{stack}.yaml").read_text())["config"]
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        assert namespace == "cv-platform", f"{full_key}: unexpected namespace"
        assert key in block, f"{full_key} is not declared in Pulumi.yaml"
        assert not (isinstance(value, dict) and "secure" in value), f"{full_key}: secret in file"
        entry = block[key]
        if "type" in entry:
            assert _matches(entry["type"], entry.get("items"), value), f"{full_key}: {value!r}"
        else:
            assert isinstance(value, dict), full_key
