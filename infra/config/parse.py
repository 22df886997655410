"""``parse_settings``: the engine's config strings -> a validated ``Settings`` tree.

The pure core of the program's configuration: every rule names the key it
checks and the fix, and raises ``SettingsError``. ``load_settings`` is the thin
shell that reads ``pulumi.Config`` for the current stack.

Which rules apply is ``cv-platform:environment`` (staging or prod). It defaults
to the stack name, so the stacks ``staging`` and ``prod`` need nothing; any
other stack (``dev-alice``) must say which rules it follows, and a stack named
``staging`` or ``prod`` cannot claim the other's rules. Image references follow
the one grammar the pipeline and the policy pack use (``pipeline.images.refs``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Final, TypeGuard

import pulumi
from pulumi.config import ConfigMissingError

from infra.config.defaults import ENVIRONMENTS, PROGRAM_KEYS, PROJECT, Environment
from infra.config.kubernetes import (
    TAINT_EFFECTS,
    TaintEffect,
    cpu,
    cpu_millis,
    dns_label,
    http_path,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_name,
    label_pair,
    label_value,
    memory,
    memory_bytes,
    qualified_name,
    storage,
)
from infra.config.monitoring import parse_monitoring
from infra.config.settings import (
    EgressRule,
    GpuSettings,
    ImageSettings,
    IngressSettings,
    KubernetesSettings,
    LogLevel,
    ModelSettings,
    NetworkSettings,
    RegistrySettings,
    ResourceSettings,
    ScalingSettings,
    ServerSettings,
    Settings,
    Toleration,
)
from infra.config.tooling import parse_tooling
from infra.config.values import Reader, SettingsError
from pipeline.images.refs import (
    is_digest,
    is_path_component,
    is_registry_host,
    is_tag,
    names_registry,
)

LOG_LEVELS: Final[tuple[LogLevel, ...]] = ("debug", "info", "warning", "error")
# Longest appName that leaves room for the suffixes of derived object names.
APP_NAME_MAX: Final = 40


def _is_log_level(value: str) -> TypeGuard[LogLevel]:
    return value in LOG_LEVELS


def _image(values: Reader, mutable_tags: tuple[str, ...], prod: bool) -> ImageSettings:
    fields = values.obj("image")
    repository, tag, digest = fields["repository"], fields["tag"], fields["digest"]
    if not repository:
        raise SettingsError(
            "image.repository", "is required (e.g. registry.example.internal/team/app)"
        )
    host, sep, path = repository.partition("/")
    if not (sep and names_registry(host)):
        raise SettingsError(
            "image.repository",
            "must start with its registry host (e.g. registry.example.internal/team/app), "
            f"got {repository!r}",
        )
    if not is_registry_host(host) or not all(is_path_component(p) for p in path.split("/")):
        raise SettingsError(
            "image.repository",
            f"must be host[:port]/path with a lowercase path, got {repository!r}",
        )
    if tag and not is_tag(tag):
        raise SettingsError(
            "image.tag", f"must be a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}), got {tag!r}"
        )
    if digest and not is_digest(digest):
        raise SettingsError(
            "image.digest", f"must be sha256: followed by 64 lowercase hex digits, got {digest!r}"
        )
    if not digest:
        if prod:
            raise SettingsError(
                "image.digest",
                "is required in prod: pin the image by digest (pipeline promote or "
                "pipeline set-image writes it), a tag alone is refused",
            )
        if not tag:
            raise SettingsError(
                "image", "needs a digest (or, in staging only, a tag): run pipeline set-image"
            )
        if tag in mutable_tags:
            raise SettingsError(
                "image.tag",
                f"{tag!r} is a mutable tag (cv-platform:mutableTags): pin a digest or "
                "use an immutable tag such as the git sha",
            )
    return ImageSettings(repository, tag, digest)


def _is_environment(value: str) -> TypeGuard[Environment]:
    return value in ENVIRONMENTS


def _environment(values: Reader, stack: str) -> Environment:
    configured = values.string("environment").strip()
    environment = configured or stack
    if not _is_environment(environment):
        if configured:
            raise SettingsError("environment", f"must be staging or prod, got {configured!r}")
        raise SettingsError(
            "environment",
            f"must be staging or prod; the stack name {stack!r} is neither, so set it: "
            "pulumi config set environment staging",
        )
    if stack in ENVIRONMENTS and environment != stack:
        raise SettingsError(
            "environment",
            f"is {environment!r} but the stack is {stack!r}: a stack named staging or prod "
            "follows its own rules (remove the setting)",
        )
    return environment


def _is_taint_effect(value: str) -> TypeGuard[TaintEffect]:
    return value in TAINT_EFFECTS


def _gpu(values: Reader) -> GpuSettings:
    count = values.integer("gpuCount", 0, 8)
    selector = tuple(
        label_pair("gpuNodeSelector", item) for item in values.strings("gpuNodeSelector")
    )
    tolerations = []
    for item in values.strings("gpuTolerations"):
        head, sep, effect = item.rpartition(":")
        key, _, value = head.partition("=")
        if not (sep and _is_taint_effect(effect) and qualified_name(key) and label_value(value)):
            raise SettingsError(
                "gpuTolerations",
                "entries must be key[=value]:Effect with Effect one of "
                f"{'|'.join(TAINT_EFFECTS)} (e.g. nvidia.com/gpu:NoSchedule), got {item!r}",
            )
        tolerations.append(Toleration(key, value, effect))
    return GpuSettings(count, selector, tuple(tolerations))


def _egress(values: Reader) -> tuple[EgressRule, ...]:
    rules = []
    for item in values.strings("allowedEgress"):
        cidr, sep, port_text = item.rpartition(":")
        try:
            network = ipaddress.ip_network(cidr, strict=True) if sep else None
        except ValueError:
            network = None
        port = int(port_text) if port_text.isdigit() else 0
        if network is None or "/" not in cidr or not 1 <= port <= 65535:
            raise SettingsError(
                "allowedEgress",
                f"entries must be CIDR:port (e.g. 10.20.0.0/16:443), got {item!r}",
            )
        rules.append(EgressRule(str(network), port))
    return tuple(rules)


def _ingress(values: Reader) -> IngressSettings | None:
    if not values.boolean("ingressEnabled"):
        return None
    host = values.string("ingressHost").strip()
    if not host:
        raise SettingsError("ingressHost", "is required when cv-platform:ingressEnabled is true")
    if not is_dns1123_subdomain(host) or "." not in host:
        raise SettingsError("ingressHost", f"must be a fully qualified DNS name, got {host!r}")
    tls = values.string("ingressTlsSecretName").strip()
    if not tls:
        raise SettingsError(
            "ingressTlsSecretName",
            "is required when cv-platform:ingressEnabled is true: name the kubernetes.io/tls "
            "Secret holding the certificate (plain HTTP is not offered)",
        )
    if not is_dns1123_subdomain(tls):
        raise SettingsError("ingressTlsSecretName", f"must be a DNS-1123 name, got {tls!r}")
    class_name = values.string("ingressClassName").strip()
    if not is_dns1123_subdomain(class_name):
        raise SettingsError("ingressClassName", f"must be a DNS-1123 name, got {class_name!r}")
    controller = dns_label(
        "ingressControllerNamespace", values.string("ingressControllerNamespace").strip()
    )
    controller_pods = label_pair(
        "ingressControllerPodSelector", values.string("ingressControllerPodSelector").strip()
    )
    return IngressSettings(host, class_name, tls, controller, controller_pods)


def _registry(
    values: Reader,
    image: ImageSettings,
    secret: Callable[[str], pulumi.Output[str] | None],
) -> RegistrySettings:
    fields = values.obj("registry")
    server = fields["server"] or image.registry_host
    if not is_registry_host(server):
        raise SettingsError("registry.server", f"must be a registry host[:port], got {server!r}")
    username = fields["username"]
    password = None
    if username:
        password = secret("registryPassword")
        if password is None:
            raise SettingsError(
                "registryPassword",
                "is required when cv-platform:registry.username is set: "
                "pulumi config set --secret registryPassword <token>",
            )
    return RegistrySettings(server, username, password)


def _request_and_limit(
    values: Reader, kind: str, check: Callable[[str, str], str], size: Callable[[str], int]
) -> tuple[str, str]:
    """``cv-platform:<kind>Request`` and ``<kind>Limit``, each checked; the limit at least
    the request."""
    request = check(f"{kind}Request", values.string(f"{kind}Request").strip())
    limit = check(f"{kind}Limit", values.string(f"{kind}Limit").strip())
    if size(limit) < size(request):
        raise SettingsError(
            f"{kind}Limit", f"must be at least cv-platform:{kind}Request ({request}), got {limit!r}"
        )
    return request, limit


def parse_settings(
    values: Mapping[str, str | None],
    *,
    stack: str,
    project: str = PROJECT,
    secret: Callable[[str], pulumi.Output[str] | None] = lambda _name: None,
) -> Settings:
    """Validate the engine's config strings (keys without the project prefix)."""
    read = Reader(values)
    environment = _environment(read, stack)
    prod = environment == "prod"

    context = read.required_string(
        "kubeContext",
        "name the kubeconfig context to deploy to (kubectl config get-contexts), "
        "e.g. pulumi config set kubeContext kind-cv-platform",
    )
    kubernetes = KubernetesSettings(context, read.string("kubeconfig").strip())

    namespace = read.string("namespace").strip()
    if namespace:
        dns_label("namespace", namespace)
    else:
        namespace = f"{project}-{stack}"
        if not is_dns1123_label(namespace):
            raise SettingsError(
                "namespace",
                f"is required: the default {namespace!r} (from the stack name) is not a "
                "DNS-1123 label; set cv-platform:namespace",
            )
    if namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
        raise SettingsError(
            "namespace", f"must be a namespace of its own, not the system namespace {namespace!r}"
        )
    app_name = read.string("appName").strip()
    if not is_dns1035_label(app_name, APP_NAME_MAX):
        raise SettingsError(
            "appName",
            "must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
            f"letter, at most {APP_NAME_MAX} characters), got {app_name!r}",
        )

    mutable_tags = read.strings("mutableTags")
    image = _image(read, mutable_tags, prod)

    replicas = read.integer("replicas", 1)
    if prod and replicas < 2:
        raise SettingsError(
            "replicas",
            f"must be at least 2 in prod (one pod is a single point of failure), got {replicas}",
        )
    max_replicas = read.integer("maxReplicas", 1)
    if max_replicas < replicas:
        raise SettingsError(
            "maxReplicas",
            f"must be at least cv-platform:replicas ({replicas}), got {max_replicas}",
        )
    pdb = read.boolean("podDisruptionBudget")
    if prod and not pdb:
        raise SettingsError(
            "podDisruptionBudget", "must be true in prod (node drains must not take every pod)"
        )
    scaling = ScalingSettings(
        replicas, max_replicas, read.integer("targetCpuUtilization", 1, 100), pdb
    )

    resources = ResourceSettings(
        *_request_and_limit(read, "cpu", cpu, cpu_millis),
        *_request_and_limit(read, "memory", memory, memory_bytes),
        *_request_and_limit(read, "ephemeralStorage", storage, memory_bytes),
    )

    container_port = read.integer("containerPort", 1024, 65535)
    server = ServerSettings(
        container_port=container_port,
        service_port=read.integer("servicePort", 1, 65535),
        liveness_path=http_path("livenessPath", read.string("livenessPath").strip()),
        readiness_path=http_path("readinessPath", read.string("readinessPath").strip()),
        predict_path=http_path("predictPath", read.string("predictPath").strip()),
        metrics_path=http_path("metricsPath", read.string("metricsPath").strip()),
        startup_timeout_seconds=read.integer("startupTimeoutSeconds", 10, 3600),
    )

    model_name = read.string("modelName").strip()
    if not is_label_name(model_name):
        raise SettingsError(
            "modelName", f"must be 1-63 letters, digits, '-', '_' or '.', got {model_name!r}"
        )
    log_level = read.string("logLevel").strip()
    if not _is_log_level(log_level):
        raise SettingsError("logLevel", f"must be one of {'|'.join(LOG_LEVELS)}, got {log_level!r}")
    model = ModelSettings(
        name=model_name,
        max_batch_size=read.integer("maxBatchSize", 1, 1024),
        log_level=log_level,
        cache_size=memory("modelCacheSize", read.string("modelCacheSize").strip()),
        tmp_size=memory("tmpSize", read.string("tmpSize").strip()),
    )
    # The emptyDirs live on the node's disk and count against the pod's ephemeral-storage
    # limit: a limit below them gets the pod evicted once the cache fills.
    scratch = memory_bytes(model.cache_size) + memory_bytes(model.tmp_size)
    if resources.ephemeral_storage_limit_bytes < scratch:
        raise SettingsError(
            "ephemeralStorageLimit",
            f"must hold cv-platform:modelCacheSize ({model.cache_size}) plus cv-platform:tmpSize "
            f"({model.tmp_size}), got {resources.ephemeral_storage_limit!r}",
        )

    network = NetworkSettings(
        ingress_namespaces=tuple(
            dns_label("allowedIngressNamespaces", ns)
            for ns in read.strings("allowedIngressNamespaces")
        ),
        ingress_client_label=label_pair(
            "allowedIngressClientPodSelector",
            read.string("allowedIngressClientPodSelector").strip(),
        ),
        ingress_pod_labels=tuple(
            label_pair("allowedIngressPodLabels", item)
            for item in read.strings("allowedIngressPodLabels")
        ),
        egress=_egress(read),
    )

    return Settings(
        project=project,
        stack=stack,
        environment=environment,
        namespace=namespace,
        app_name=app_name,
        kubernetes=kubernetes,
        image=image,
        mutable_tags=mutable_tags,
        scaling=scaling,
        resources=resources,
        gpu=_gpu(read),
        server=server,
        model=model,
        network=network,
        ingress=_ingress(read),
        registry=_registry(read, image, secret),
        tooling=parse_tooling(read.raw("tooling"), environment=environment, secret=secret),
        monitoring=parse_monitoring(read.raw("monitoring")),
    )


def load_settings() -> Settings:
    """The current stack's settings, read from ``pulumi.Config`` (call once per run)."""
    config = pulumi.Config()
    values = {name: config.get(name) for name in PROGRAM_KEYS}

    def required_secret(name: str) -> pulumi.Output[str] | None:
        # Asked for only when the settings need it; missing is reported by
        # parse_settings with the key and the command that sets it.
        try:
            return config.require_secret(name)
        except ConfigMissingError:
            return None

    return parse_settings(
        values,
        stack=pulumi.get_stack(),
        project=pulumi.get_project(),
        secret=required_secret,
    )
