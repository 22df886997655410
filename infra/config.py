"""The stack's settings: read once from ``pulumi.Config``, validated, frozen.

``parse_settings`` is the pure core: it takes the string values the Pulumi
engine hands a program (objects and arrays as JSON) and returns a ``Settings``
tree or raises ``SettingsError`` naming the key and the fix. ``load_settings``
is the thin shell that reads ``pulumi.Config`` for the current stack.

Defaults mirror the ``config:`` block of Pulumi.yaml (a test keeps them equal).

Which rules apply is ``cv-platform:environment`` (staging or prod). It defaults
to the stack name, so the stacks ``staging`` and ``prod`` need nothing; any
other stack (``dev-alice``) must say which rules it follows, and a stack named
``staging`` or ``prod`` cannot claim the other's rules.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import pulumi
from pulumi.config import ConfigMissingError

PROJECT: Final = "cv-platform"
ENVIRONMENTS: Final = ("staging", "prod")

# cv-platform:tooling: the CI tooling the staging stack owns (see parse_tooling).
TOOLING_DEFAULTS: Final[Mapping[str, Any]] = {
    "enabled": False,
    "dockerHost": "unix:///var/run/docker.sock",
    "registry": {
        "kind": "selfHosted",
        "address": "127.0.0.1",
        "port": 5000,
        "host": "",
        "username": "ci",
        "storage": "volume",
        "s3Bucket": "",
        "s3Region": "",
        "ecrRepository": "",
    },
    "jenkins": {
        "address": "127.0.0.1",
        "port": 8080,
        "url": "",
        "adminUser": "admin",
        "repositoryUrl": "",
        "githubUser": "x-access-token",
        "agentName": "cv-platform-agent",
        "pulumiBackendUrl": "",
        "stagingSmokeUrl": "",
    },
}
TOOLING_SECRET_KEYS: Final = (
    "jenkinsAdminPassword",
    "jenkinsGithubToken",
    "jenkinsPulumiPassphrase",
    "jenkinsKubeconfig",
    "jenkinsPulumiBackendCredentials",
    "jenkinsPulumiAccessToken",
    "toolingRegistryHtpasswd",
    "toolingRegistryPassword",
    "toolingRegistryTlsCert",
    "toolingRegistryTlsKey",
    "toolingRegistryS3Credentials",
)
# Project keys the program reads, with the defaults Pulumi.yaml declares.
# kubeContext has no default (it is required); registryPassword is a secret.
DEFAULTS: Final[Mapping[str, Any]] = {
    "environment": "",
    "kubeconfig": "",
    "namespace": "",
    "appName": "model-server",
    "image": {
        "repository": "registry.example.internal/cv-platform/model-server",
        "tag": "",
        "digest": "",
    },
    "mutableTags": ["latest"],
    "replicas": 1,
    "maxReplicas": 3,
    "targetCpuUtilization": 70,
    "podDisruptionBudget": False,
    "cpuRequest": "500m",
    "cpuLimit": "2",
    "memoryRequest": "1Gi",
    "memoryLimit": "2Gi",
    "gpuCount": 0,
    "gpuNodeSelector": ["nvidia.com/gpu.present=true"],
    "gpuTolerations": ["nvidia.com/gpu:NoSchedule"],
    "containerPort": 8080,
    "servicePort": 80,
    "livenessPath": "/healthz",
    "readinessPath": "/readyz",
    "predictPath": "/predict",
    "metricsPath": "/metrics",
    "startupTimeoutSeconds": 300,
    "modelName": "digits",
    "maxBatchSize": 16,
    "logLevel": "info",
    "modelCacheSize": "1Gi",
    "tmpSize": "256Mi",
    "allowedIngressNamespaces": [],
    "allowedIngressPodLabels": [],
    "allowedEgress": [],
    "ingressEnabled": False,
    "ingressHost": "",
    "ingressClassName": "nginx",
    "ingressTlsSecretName": "",
    "ingressControllerNamespace": "ingress-nginx",
    "registry": {"server": "", "username": ""},
    "tooling": TOOLING_DEFAULTS,
}
REQUIRED_KEYS: Final = ("kubeContext",)
SECRET_KEYS: Final = ("registryPassword", *TOOLING_SECRET_KEYS)
# Declared in Pulumi.yaml for the pipeline (set-image, promote); the program ignores them.
PIPELINE_KEYS: Final = (
    "insecureRegistries",
    "promotionSoakMinutes",
    "promotionMinPassPercent",
    "promotionBlockSeverity",
)
PROGRAM_KEYS: Final = (*DEFAULTS, *REQUIRED_KEYS)

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
TAINT_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REGISTRY_HOST = re.compile(
    r"^(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
    r"(?:\.(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]))*(?::[0-9]{1,5})?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HTTP_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")
_CPU = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)m?$")
_MEMORY = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_MEMORY_UNITS: Final[Mapping[str, int]] = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
# Longest appName that leaves room for the suffixes of derived object names.
APP_NAME_MAX: Final = 40


class SettingsError(ValueError):
    """A config value is missing or invalid; the message names the key and the fix."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key if ":" in key else f"{PROJECT}:{key}"
        super().__init__(f"{self.key} {message}")


# --- The settings tree --------------------------------------------------------


@dataclass(frozen=True)
class ImageRef:
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


@dataclass(frozen=True)
class Toleration:
    key: str
    value: str  # empty: any value (operator Exists)
    effect: str


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
    log_level: str
    cache_size: str
    tmp_size: str


@dataclass(frozen=True)
class EgressRule:
    cidr: str
    port: int


@dataclass(frozen=True)
class NetworkSettings:
    ingress_namespaces: tuple[str, ...]
    ingress_pod_labels: tuple[tuple[str, str], ...]
    egress: tuple[EgressRule, ...]


@dataclass(frozen=True)
class IngressSettings:
    host: str
    class_name: str
    tls_secret_name: str
    controller_namespace: str


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
    environment: str  # "staging" or "prod"
    namespace: str
    app_name: str
    kubernetes: KubernetesSettings
    image: ImageRef
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


# --- Quantities -----------------------------------------------------------------


def cpu_millis(quantity: str) -> int:
    """``500m`` -> 500, ``2.5`` -> 2500 (callers validate the grammar first)."""
    if quantity.endswith("m"):
        return int(Decimal(quantity[:-1]))
    return int(Decimal(quantity) * 1000)


def memory_bytes(quantity: str) -> int:
    match = _MEMORY.match(quantity)
    if match is None:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    unit = match.group(1) or ""
    number = quantity[: len(quantity) - len(unit)]
    return int(Decimal(number) * _MEMORY_UNITS[unit])


# --- Reading raw values -----------------------------------------------------------


class _Reader:
    """Typed access to the engine's string values, falling back to DEFAULTS."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self._values = values

    def raw(self, name: str) -> str | None:
        return self._values.get(name)

    def string(self, name: str) -> str:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, str)
            return default
        return value

    def required_string(self, name: str, fix: str) -> str:
        value = self._values.get(name)
        if value is None or not value.strip():
            raise SettingsError(name, f"is required: {fix}")
        return value.strip()

    def integer(self, name: str, low: int, high: int | None = None) -> int:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, int)
            return default
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        text = value.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise SettingsError(name, f"must be an integer {bounds}, got {value!r}")
        number = int(text)
        if number < low or (high is not None and number > high):
            raise SettingsError(name, f"must be an integer {bounds}, got {value!r}")
        return number

    def boolean(self, name: str) -> bool:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, bool)
            return default
        if value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise SettingsError(name, f"must be true or false, got {value!r}")

    def strings(self, name: str) -> tuple[str, ...]:
        value = self._values.get(name)
        if value is None:
            default = DEFAULTS[name]
            assert isinstance(default, list)
            return tuple(default)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, list) or not all(isinstance(v, str) for v in parsed):
            raise SettingsError(
                name, f"must be a list of strings (a YAML list in the stack file), got {value!r}"
            )
        return tuple(parsed)

    def obj(self, name: str) -> dict[str, Any]:
        default = DEFAULTS[name]
        assert isinstance(default, dict)
        value = self._values.get(name)
        if value is None:
            return dict(default)
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        return config_object(parsed, default, name)


# --- Validators -------------------------------------------------------------------


def config_object(value: Any, defaults: Mapping[str, Any], key: str) -> dict[str, Any]:
    """An object value checked field by field against ``defaults``: its types, no unknown field.

    Nested objects are checked the same way; missing or null fields keep their default.
    """
    if not isinstance(value, dict):
        raise SettingsError(
            key, f"must be an object with the fields {', '.join(defaults)}, got {value!r}"
        )
    unknown = sorted(set(value) - set(defaults))
    if unknown:
        raise SettingsError(
            f"{key}.{unknown[0]}", f"is not a known field: {key} has only {', '.join(defaults)}"
        )
    result = dict(defaults)
    for field, item in value.items():
        if item is None:
            continue
        want = type(defaults[field])
        if want is dict:
            result[field] = config_object(item, defaults[field], f"{key}.{field}")
        elif want is bool:
            if not isinstance(item, bool):
                raise SettingsError(f"{key}.{field}", f"must be true or false, got {item!r}")
            result[field] = item
        elif want is int:
            if isinstance(item, bool) or not isinstance(item, int):
                raise SettingsError(f"{key}.{field}", f"must be an integer, got {item!r}")
            result[field] = item
        else:
            # An all-digit git sha written unquoted reaches us as a YAML integer.
            if isinstance(item, int) and not isinstance(item, bool):
                item = str(item)
            if not isinstance(item, str):
                raise SettingsError(f"{key}.{field}", f"must be a string, got {item!r}")
            result[field] = item.strip()
    return result


def _dns_label(key: str, value: str, max_len: int = 63) -> str:
    if not _DNS1123_LABEL.match(value) or len(value) > max_len:
        raise SettingsError(
            key,
            f"must be a DNS-1123 label (lowercase letters, digits and '-', starting and "
            f"ending with a letter or digit, at most {max_len} characters), got {value!r}",
        )
    return value


def _label_pair(key: str, item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not _qualified_name(name) or not _label_value(value):
        raise SettingsError(
            key, f"entries must be label selectors key=value (e.g. app=gateway), got {item!r}"
        )
    return name, value


def _qualified_name(name: str) -> bool:
    prefix, sep, local = name.rpartition("/")
    if sep and (not _DNS1123_SUBDOMAIN.match(prefix) or len(prefix) > 253):
        return False
    return bool(_LABEL_NAME.match(local)) and len(local) <= 63


def _label_value(value: str) -> bool:
    return value == "" or (bool(_LABEL_NAME.match(value)) and len(value) <= 63)


def _http_path(key: str, value: str) -> str:
    if not _HTTP_PATH.match(value):
        raise SettingsError(
            key, f"must be an absolute HTTP path such as /healthz (no spaces), got {value!r}"
        )
    return value


def _cpu(key: str, value: str) -> str:
    if not _CPU.match(value) or cpu_millis(value) <= 0:
        raise SettingsError(
            key, f"must be a positive CPU quantity such as 500m, 1 or 2.5, got {value!r}"
        )
    return value


def _memory(key: str, value: str) -> str:
    if not _MEMORY.match(value) or memory_bytes(value) <= 0:
        raise SettingsError(
            key, f"must be a positive memory quantity such as 512Mi or 2Gi, got {value!r}"
        )
    return value


def _image(values: _Reader, mutable_tags: tuple[str, ...], prod: bool) -> ImageRef:
    fields = values.obj("image")
    repository, tag, digest = fields["repository"], fields["tag"], fields["digest"]
    if not repository:
        raise SettingsError(
            "image.repository", "is required (e.g. registry.example.internal/team/app)"
        )
    host, sep, path = repository.partition("/")
    qualified = sep and ("." in host or ":" in host or host == "localhost")
    if not qualified:
        raise SettingsError(
            "image.repository",
            "must start with its registry host (e.g. registry.example.internal/team/app), "
            f"got {repository!r}",
        )
    if not _REGISTRY_HOST.match(host) or not all(
        _PATH_COMPONENT.match(part) for part in path.split("/")
    ):
        raise SettingsError(
            "image.repository",
            f"must be host[:port]/path with a lowercase path, got {repository!r}",
        )
    if tag and not _TAG.match(tag):
        raise SettingsError(
            "image.tag", f"must be a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}), got {tag!r}"
        )
    if digest and not _DIGEST.match(digest):
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
    return ImageRef(repository, tag, digest)


def _environment(values: _Reader, stack: str) -> str:
    configured = values.string("environment").strip()
    environment = configured or stack
    if environment not in ENVIRONMENTS:
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


def _gpu(values: _Reader) -> GpuSettings:
    count = values.integer("gpuCount", 0, 8)
    selector = tuple(
        _label_pair("gpuNodeSelector", item) for item in values.strings("gpuNodeSelector")
    )
    tolerations = []
    for item in values.strings("gpuTolerations"):
        head, sep, effect = item.rpartition(":")
        key, _, value = head.partition("=")
        if (
            not sep
            or effect not in TAINT_EFFECTS
            or not _qualified_name(key)
            or not _label_value(value)
        ):
            raise SettingsError(
                "gpuTolerations",
                "entries must be key[=value]:Effect with Effect one of "
                f"{'|'.join(TAINT_EFFECTS)} (e.g. nvidia.com/gpu:NoSchedule), got {item!r}",
            )
        tolerations.append(Toleration(key, value, effect))
    return GpuSettings(count, selector, tuple(tolerations))


def _egress(values: _Reader) -> tuple[EgressRule, ...]:
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


def _ingress(values: _Reader) -> IngressSettings | None:
    if not values.boolean("ingressEnabled"):
        return None
    host = values.string("ingressHost").strip()
    if not host:
        raise SettingsError("ingressHost", "is required when cv-platform:ingressEnabled is true")
    if not _DNS1123_SUBDOMAIN.match(host) or len(host) > 253 or "." not in host:
        raise SettingsError("ingressHost", f"must be a fully qualified DNS name, got {host!r}")
    tls = values.string("ingressTlsSecretName").strip()
    if not tls:
        raise SettingsError(
            "ingressTlsSecretName",
            "is required when cv-platform:ingressEnabled is true: name the kubernetes.io/tls "
            "Secret holding the certificate (plain HTTP is not offered)",
        )
    if not _DNS1123_SUBDOMAIN.match(tls) or len(tls) > 253:
        raise SettingsError("ingressTlsSecretName", f"must be a DNS-1123 name, got {tls!r}")
    class_name = values.string("ingressClassName").strip()
    if not _DNS1123_SUBDOMAIN.match(class_name):
        raise SettingsError("ingressClassName", f"must be a DNS-1123 name, got {class_name!r}")
    controller = _dns_label(
        "ingressControllerNamespace", values.string("ingressControllerNamespace").strip()
    )
    return IngressSettings(host, class_name, tls, controller)


def _registry(
    values: _Reader,
    image: ImageRef,
    secret: Callable[[str], pulumi.Output[str] | None],
) -> RegistrySettings:
    fields = values.obj("registry")
    server = fields["server"] or image.registry_host
    if not _REGISTRY_HOST.match(server):
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


# --- Entry points ---------------------------------------------------------------


def parse_settings(
    values: Mapping[str, str | None],
    *,
    stack: str,
    project: str = PROJECT,
    secret: Callable[[str], pulumi.Output[str] | None] = lambda _name: None,
) -> Settings:
    """Validate the engine's config strings (keys without the project prefix)."""
    read = _Reader(values)
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
        _dns_label("namespace", namespace)
    else:
        namespace = f"{project}-{stack}"
        if not _DNS1123_LABEL.match(namespace) or len(namespace) > 63:
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
    if not _DNS1035_LABEL.match(app_name) or len(app_name) > APP_NAME_MAX:
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
        _cpu("cpuRequest", read.string("cpuRequest").strip()),
        _cpu("cpuLimit", read.string("cpuLimit").strip()),
        _memory("memoryRequest", read.string("memoryRequest").strip()),
        _memory("memoryLimit", read.string("memoryLimit").strip()),
    )
    if resources.cpu_limit_millis < resources.cpu_request_millis:
        raise SettingsError(
            "cpuLimit",
            f"must be at least cv-platform:cpuRequest ({resources.cpu_request}), "
            f"got {resources.cpu_limit!r}",
        )
    if resources.memory_limit_bytes < resources.memory_request_bytes:
        raise SettingsError(
            "memoryLimit",
            f"must be at least cv-platform:memoryRequest ({resources.memory_request}), "
            f"got {resources.memory_limit!r}",
        )

    container_port = read.integer("containerPort", 1024, 65535)
    server = ServerSettings(
        container_port=container_port,
        service_port=read.integer("servicePort", 1, 65535),
        liveness_path=_http_path("livenessPath", read.string("livenessPath").strip()),
        readiness_path=_http_path("readinessPath", read.string("readinessPath").strip()),
        predict_path=_http_path("predictPath", read.string("predictPath").strip()),
        metrics_path=_http_path("metricsPath", read.string("metricsPath").strip()),
        startup_timeout_seconds=read.integer("startupTimeoutSeconds", 10, 3600),
    )

    model_name = read.string("modelName").strip()
    if not _LABEL_NAME.match(model_name) or len(model_name) > 63:
        raise SettingsError(
            "modelName", f"must be 1-63 letters, digits, '-', '_' or '.', got {model_name!r}"
        )
    log_level = read.string("logLevel").strip()
    if log_level not in LOG_LEVELS:
        raise SettingsError("logLevel", f"must be one of {'|'.join(LOG_LEVELS)}, got {log_level!r}")
    model = ModelSettings(
        name=model_name,
        max_batch_size=read.integer("maxBatchSize", 1, 1024),
        log_level=log_level,
        cache_size=_memory("modelCacheSize", read.string("modelCacheSize").strip()),
        tmp_size=_memory("tmpSize", read.string("tmpSize").strip()),
    )

    network = NetworkSettings(
        ingress_namespaces=tuple(
            _dns_label("allowedIngressNamespaces", ns)
            for ns in read.strings("allowedIngressNamespaces")
        ),
        ingress_pod_labels=tuple(
            _label_pair("allowedIngressPodLabels", item)
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


# --- The CI tooling (staging only) ------------------------------------------------
#
# One object, cv-platform:tooling, declared in Pulumi.yaml with its defaults and
# switched on in Pulumi.staging.yaml (enabled: true). Its secrets are separate
# secret keys (TOOLING_SECRET_KEYS); they are read only when the tooling is on.

REGISTRY_KINDS: Final = ("selfHosted", "ecr")
REGISTRY_STORAGES: Final = ("volume", "s3")

_DOCKER_HOST = re.compile(r"^(unix://|ssh://|tcp://)\S+$")
_ECR_REPOSITORY = re.compile(
    r"^(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<name>[a-z0-9]+(?:[._/-][a-z0-9]+)*)$"
)
_GITHUB_REPO_URL = re.compile(
    r"^https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?$"
)
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, eq=False)
class ToolingRegistrySettings:
    """The self-hosted Distribution registry, or an ECR repository."""

    kind: str  # selfHosted | ecr
    address: str  # where the port is published (loopback unless TLS)
    port: int
    host: str  # how clients name it: host[:port]
    username: str
    storage: str  # volume | s3
    s3_bucket: str
    s3_region: str
    ecr_repository: str  # kind ecr: ACCOUNT.dkr.ecr.REGION.amazonaws.com/name
    htpasswd: pulumi.Output[str] | None  # "user:$2y$..." (bcrypt), a secret
    password: pulumi.Output[str] | None  # the same user's password, for pushes
    tls_cert: pulumi.Output[str] | None
    tls_key: pulumi.Output[str] | None
    s3_credentials: pulumi.Output[str] | None  # AWS shared credentials file content

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def ecr_region(self) -> str:
        match = _ECR_REPOSITORY.match(self.ecr_repository)
        return match.group("region") if match else ""


@dataclass(frozen=True, eq=False)
class JenkinsSettings:
    address: str
    port: int
    url: str  # the URL users and agents are told (casc location.url)
    admin_user: str
    repository_url: str
    repository_owner: str
    repository_name: str
    github_user: str  # the user name of the github-token credential (the token is its password)
    agent_name: str
    pulumi_backend_url: str  # the shared state backend the agent's pulumi uses (required)
    staging_smoke_url: str  # where the agent reaches the staging service; "" = serviceUrl
    admin_password: pulumi.Output[str]
    github_token: pulumi.Output[str] | None
    pulumi_passphrase: pulumi.Output[str] | None
    kubeconfig: pulumi.Output[str] | None
    pulumi_backend_credentials: pulumi.Output[str] | None  # AWS credentials file, s3:// backends
    pulumi_access_token: pulumi.Output[str] | None  # PULUMI_ACCESS_TOKEN, https:// backends


@dataclass(frozen=True, eq=False)
class ToolingSettings:
    docker_host: str
    registry: ToolingRegistrySettings
    jenkins: JenkinsSettings


def _address(key: str, value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise SettingsError(key, f"must be an IP address to publish on, got {value!r}") from None
    return value


def _port(key: str, value: int) -> int:
    if not 1 <= value <= 65535:
        raise SettingsError(key, f"must be a port from 1 to 65535, got {value}")
    return value


def parse_tooling(
    raw: str | None,
    *,
    environment: str,
    secret: Callable[[str], pulumi.Output[str] | None],
) -> ToolingSettings | None:
    """cv-platform:tooling (engine JSON) -> ToolingSettings, or None when it is off."""
    try:
        value = json.loads(raw) if raw is not None else {}
    except json.JSONDecodeError:
        value = raw  # not JSON: refused below, shown as given
    fields = config_object(value, TOOLING_DEFAULTS, "tooling")
    if not fields["enabled"]:
        return None
    if environment != "staging":
        raise SettingsError(
            "tooling.enabled",
            "is true but only the staging stack owns the CI tooling; prod reads the registry "
            "endpoint from its image.repository (remove tooling from this stack)",
        )
    docker_host = fields["dockerHost"]
    if not _DOCKER_HOST.match(docker_host):
        raise SettingsError(
            "tooling.dockerHost",
            "must be unix:///path/docker.sock, ssh://user@host or tcp://host:port, "
            f"got {docker_host!r}",
        )
    return ToolingSettings(
        docker_host=docker_host,
        registry=_tooling_registry(fields["registry"], secret),
        jenkins=_tooling_jenkins(fields["jenkins"], secret),
    )


def _tooling_registry(
    fields: Mapping[str, Any], secret: Callable[[str], pulumi.Output[str] | None]
) -> ToolingRegistrySettings:
    kind = fields["kind"]
    if kind not in REGISTRY_KINDS:
        raise SettingsError(
            "tooling.registry.kind", f"must be one of {'|'.join(REGISTRY_KINDS)}, got {kind!r}"
        )
    port = _port("tooling.registry.port", fields["port"])
    address = _address("tooling.registry.address", fields["address"])
    username = fields["username"]
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", username):
        raise SettingsError(
            "tooling.registry.username",
            f"must be 1-64 letters, digits, '.', '_', '-', got {username!r}",
        )
    ecr = fields["ecrRepository"]
    if kind == "ecr":
        if not _ECR_REPOSITORY.match(ecr):
            raise SettingsError(
                "tooling.registry.ecrRepository",
                "is required with kind ecr: the repository URI "
                "ACCOUNT.dkr.ecr.REGION.amazonaws.com/name (aws ecr describe-repositories), "
                f"got {ecr!r}",
            )
        return ToolingRegistrySettings(
            kind=kind,
            address=address,
            port=port,
            host=ecr.split("/", 1)[0],
            username="AWS",
            storage="ecr",
            s3_bucket="",
            s3_region="",
            ecr_repository=ecr,
            htpasswd=None,
            password=None,
            tls_cert=None,
            tls_key=None,
            s3_credentials=None,
        )
    htpasswd = secret("toolingRegistryHtpasswd")
    password = secret("toolingRegistryPassword")
    # Each error names the one key that is missing (pipeline render relies on it).
    if htpasswd is None:
        raise SettingsError(
            "toolingRegistryHtpasswd",
            "is required for the self-hosted registry: "
            f"htpasswd -nbB {username} <password> | pulumi config set --secret "
            "toolingRegistryHtpasswd, then pulumi config set --secret toolingRegistryPassword "
            "<password> (the hash is made once, so previews stay unchanged)",
        )
    if password is None:
        raise SettingsError(
            "toolingRegistryPassword",
            f"is required for the self-hosted registry: the password of {username!r} in "
            "toolingRegistryHtpasswd, for pushes (pulumi config set --secret "
            "toolingRegistryPassword <password>)",
        )
    tls_cert = secret("toolingRegistryTlsCert")
    tls_key = secret("toolingRegistryTlsKey")
    if (tls_cert is None) != (tls_key is None):
        raise SettingsError(
            "toolingRegistryTlsCert",
            "and cv-platform:toolingRegistryTlsKey go together: set both (PEM) or neither",
        )
    tls = tls_cert is not None
    if not tls and not ipaddress.ip_address(address).is_loopback:
        raise SettingsError(
            "tooling.registry.address",
            f"is {address} but without TLS the registry is published on loopback only: "
            "use 127.0.0.1, or set toolingRegistryTlsCert and toolingRegistryTlsKey",
        )
    host = fields["host"] or f"{address}:{port}"
    if not _REGISTRY_HOST.match(host):
        raise SettingsError("tooling.registry.host", f"must be host[:port], got {host!r}")
    storage = fields["storage"]
    if storage not in REGISTRY_STORAGES:
        raise SettingsError(
            "tooling.registry.storage",
            f"must be one of {'|'.join(REGISTRY_STORAGES)}, got {storage!r}",
        )
    bucket, region = fields["s3Bucket"], fields["s3Region"]
    if storage == "s3":
        if not _S3_BUCKET.match(bucket):
            raise SettingsError(
                "tooling.registry.s3Bucket",
                f"must name an S3 bucket with storage s3, got {bucket!r}",
            )
        if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region):
            raise SettingsError(
                "tooling.registry.s3Region",
                f"must be an AWS region such as eu-west-1, got {region!r}",
            )
    return ToolingRegistrySettings(
        kind=kind,
        address=address,
        port=port,
        host=host,
        username=username,
        storage=storage,
        s3_bucket=bucket,
        s3_region=region,
        ecr_repository="",
        htpasswd=htpasswd,
        password=password,
        tls_cert=tls_cert,
        tls_key=tls_key,
        s3_credentials=secret("toolingRegistryS3Credentials") if storage == "s3" else None,
    )


def _tooling_jenkins(
    fields: Mapping[str, Any], secret: Callable[[str], pulumi.Output[str] | None]
) -> JenkinsSettings:
    address = _address("tooling.jenkins.address", fields["address"])
    port = _port("tooling.jenkins.port", fields["port"])
    url = fields["url"]
    if not url:
        host = f"[{address}]" if ":" in address else address
        url = f"http://{host}:{port}/"
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingsError("tooling.jenkins.url", f"must be an http(s) URL, got {url!r}")
    url = url if url.endswith("/") else url + "/"
    admin = fields["adminUser"]
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", admin):
        raise SettingsError(
            "tooling.jenkins.adminUser",
            f"must be a lowercase user id (letters, digits, '_', '-'), got {admin!r}",
        )
    repo = fields["repositoryUrl"]
    match = _GITHUB_REPO_URL.match(repo)
    if match is None:
        raise SettingsError(
            "tooling.jenkins.repositoryUrl",
            "is required: the GitHub URL of this repository for the seed job, "
            f"e.g. https://github.com/example/cv-platform.git, got {repo!r}",
        )
    github_user = fields["githubUser"]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\[\]-]{0,63}", github_user):
        raise SettingsError(
            "tooling.jenkins.githubUser",
            f"must be a GitHub login (or x-access-token), got {github_user!r}",
        )
    agent = fields["agentName"]
    if not _DNS1123_LABEL.match(agent):
        raise SettingsError("tooling.jenkins.agentName", f"must be a DNS-1123 label, got {agent!r}")
    # Both reach the agent as environment variables, which are not secret.
    for key in ("pulumiBackendUrl", "stagingSmokeUrl"):
        value = fields[key]
        if re.match(r"[a-z0-9+]+://[^/\s]*@", value):
            raise SettingsError(
                f"tooling.jenkins.{key}",
                "must not carry credentials (user:password@): it is an environment "
                "variable of the agent; give the backend's credentials another way",
            )
    backend = _backend_url(fields["pulumiBackendUrl"])
    smoke = fields["stagingSmokeUrl"]
    if smoke and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", smoke):
        raise SettingsError(
            "tooling.jenkins.stagingSmokeUrl", f"must be an http(s) URL, got {smoke!r}"
        )
    admin_password = secret("jenkinsAdminPassword")
    if admin_password is None:
        raise SettingsError(
            "jenkinsAdminPassword",
            "is required with the CI tooling: pulumi config set --secret jenkinsAdminPassword "
            "<password> (Jenkins reads it from a file; it is never in an environment variable)",
        )
    return JenkinsSettings(
        address=address,
        port=port,
        url=url,
        admin_user=admin,
        repository_url=repo,
        repository_owner=match.group("owner"),
        repository_name=match.group("name"),
        github_user=github_user,
        agent_name=agent,
        pulumi_backend_url=backend,
        staging_smoke_url=smoke,
        admin_password=admin_password,
        github_token=secret("jenkinsGithubToken"),
        pulumi_passphrase=secret("jenkinsPulumiPassphrase"),
        kubeconfig=secret("jenkinsKubeconfig"),
        pulumi_backend_credentials=secret("jenkinsPulumiBackendCredentials"),
        pulumi_access_token=secret("jenkinsPulumiAccessToken"),
    )


# Backends an operator's shell and the CI agent can both reach. A file:// backend
# would live inside the agent container, where the operator who deploys the
# tooling cannot see it: CI and the operator would each keep a state of their own.
_SHARED_BACKEND = re.compile(r"(s3|gs|azblob)://[^\s/?#]+\S*|https://[^\s/]+\S*")


def _backend_url(value: str) -> str:
    key = "tooling.jenkins.pulumiBackendUrl"
    if not value:
        raise SettingsError(
            key,
            "is required with the CI tooling: the state backend the operator and Jenkins share "
            "(e.g. s3://cv-platform-pulumi-state?region=eu-west-1, or https://api.pulumi.com); "
            "see docs/ci-tooling.md#state-and-secrets",
        )
    if value.startswith("file://"):
        raise SettingsError(
            key,
            f"is {value!r}, a file backend inside the agent container that the operator cannot "
            "reach: use a shared one (s3://, gs://, azblob:// or https://)",
        )
    if not _SHARED_BACKEND.fullmatch(value):
        raise SettingsError(
            key,
            "must be a shared Pulumi backend URL (s3://, gs://, azblob:// or https://), "
            f"got {value!r}",
        )
    return value
