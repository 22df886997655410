"""The cv-platform rules, as pulumi-policy ``ResourceValidationPolicy`` objects.

Importable without side effects: ``policy/__main__.py`` wraps ``POLICIES`` in a ``PolicyPack``
for ``pulumi preview --policy-pack policy``; ``policy.adapter`` runs the same objects over an
offline render; tests call ``validate`` directly with constructed ``ResourceValidationArgs``.

Inputs arrive as the engine hands them to the analyzer: camelCase Kubernetes fields, numbers as
floats, secrets unwrapped (online) or the ``[secret]`` placeholder (offline render). Messages
name fields and containers, never values, so they are safe to print in a pull request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from pipeline.images.refs import is_digest, pinned_digest
from policy.model import DEFAULT_PROD_STACKS
from policy.plaintext import is_plaintext_secret

PSA_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
DOCKER_VOLUME = "docker:index/volume:Volume"
# A Docker volume is tooling data (protected) unless it says it is disposable scratch space.
DISPOSABLE_LABEL = "cv-platform.io/disposable"
DOCKER_CONTAINER = "docker:index/container:Container"
K8S_SERVICE = "kubernetes:core/v1:Service"
K8S_NAMESPACE = "kubernetes:core/v1:Namespace"

# Where the pod template sits in each workload kind.
_POD_SPEC_PATH: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "PodTemplate": ("template", "spec"),
}
# Volume sources the "restricted" Pod Security Standard allows.
_RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_ALLOWED_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
_OPEN_RANGES = frozenset({"0.0.0.0/0", "::/0"})


class OptionsNotVisible(PolicyResourceOptions):
    """Resource options for a resource whose options are unknown (an offline render).

    Rules that depend on options (protect) mark themselves not applicable instead of guessing.
    """

    def __init__(self) -> None:
        super().__init__(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


# --- helpers -----------------------------------------------------------------------------


def _map(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: Any) -> Sequence[Any]:
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return value
    return ()


def _dig(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        value = _map(value).get(key)
    return value


def stack_of(urn: str) -> str:
    """The stack in ``urn:pulumi:<stack>::<project>::<type>::<name>`` ('' if not a URN)."""
    if not urn.startswith("urn:pulumi:"):
        return ""
    return urn[len("urn:pulumi:") :].split("::", 1)[0]


def kubernetes_kind(resource_type: str) -> str:
    """``Deployment`` for ``kubernetes:apps/v1:Deployment``; '' for anything else."""
    if not resource_type.startswith("kubernetes:"):
        return ""
    return resource_type.rsplit(":", 1)[-1]


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    path = _POD_SPEC_PATH.get(kubernetes_kind(resource_type))
    if path is None:
        return None
    return _map(_dig(props, path))


def containers(spec: Mapping[str, Any], *, ephemeral: bool = True) -> Iterator[Mapping[str, Any]]:
    fields = ["initContainers", "containers"] + (["ephemeralContainers"] if ephemeral else [])
    for field in fields:
        for container in _seq(spec.get(field)):
            yield _map(container)


def _cname(container: Mapping[str, Any]) -> str:
    return str(container.get("name") or "<unnamed>")


def _prod_stacks(args: ResourceValidationArgs) -> frozenset[str]:
    configured = args.get_config().get("prodStacks")
    if isinstance(configured, Sequence) and not isinstance(configured, str):
        return frozenset(str(s) for s in configured)
    return frozenset(DEFAULT_PROD_STACKS)


# --- restricted pod security -------------------------------------------------------------


def _restricted_pod_problems(spec: Mapping[str, Any]) -> Iterator[str]:
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field) is True:
            yield f"pod sets {field}: true"
    for volume in _seq(spec.get("volumes")):
        vol = _map(volume)
        sources = [k for k in vol if k != "name"]
        bad = [s for s in sources if s not in _RESTRICTED_VOLUMES]
        if bad:
            yield f"volume {vol.get('name', '<unnamed>')!s} uses {', '.join(sorted(bad))}"
    pod_sc = _map(spec.get("securityContext"))
    if pod_sc.get("runAsUser") in (0, 0.0):
        yield "pod securityContext.runAsUser is 0 (root)"
    pod_non_root = pod_sc.get("runAsNonRoot")
    pod_seccomp = _map(pod_sc.get("seccompProfile")).get("type")
    for container in containers(spec):
        name = _cname(container)
        sc = _map(container.get("securityContext"))
        if sc.get("privileged") is True:
            yield f"container {name} is privileged"
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"container {name} must set securityContext.allowPrivilegeEscalation: false"
        caps = _map(sc.get("capabilities"))
        if "ALL" not in [str(c) for c in _seq(caps.get("drop"))]:
            yield f"container {name} must drop ALL capabilities"
        added = [str(c) for c in _seq(caps.get("add")) if str(c) != "NET_BIND_SERVICE"]
        if added:
            yield f"container {name} adds capabilities {', '.join(added)}"
        non_root = sc.get("runAsNonRoot", pod_non_root)
        if non_root is not True:
            yield f"container {name} must run with runAsNonRoot: true (pod or container)"
        if sc.get("runAsUser") in (0, 0.0):
            yield f"container {name} securityContext.runAsUser is 0 (root)"
        seccomp = _map(sc.get("seccompProfile")).get("type", pod_seccomp)
        if seccomp not in _ALLOWED_SECCOMP:
            yield (
                f"container {name} needs seccompProfile.type RuntimeDefault or Localhost "
                "(pod or container)"
            )
        proc_mount = sc.get("procMount")
        if proc_mount not in (None, "Default"):
            yield f"container {name} sets procMount {proc_mount!s}"
        for port in _seq(container.get("ports")):
            host_port = _map(port).get("hostPort")
            if host_port not in (None, 0, 0.0):
                yield f"container {name} binds a hostPort"


def _validate_restricted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == K8S_NAMESPACE:
        labels = _map(_dig(args.props, ("metadata", "labels")))
        if labels.get(PSA_ENFORCE_LABEL) != "restricted":
            report(f"namespace must carry the label {PSA_ENFORCE_LABEL}: restricted", None)
        return
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for problem in _restricted_pod_problems(spec):
        report(problem, None)


RESTRICTED_POD_SECURITY = ResourceValidationPolicy(
    name="restricted-pod-security",
    description="Namespaces enforce the 'restricted' Pod Security Standard and every pod "
    "template meets it (non-root, no privilege escalation, ALL capabilities dropped, "
    "RuntimeDefault seccomp, no host namespaces, ports or paths).",
    validate=_validate_restricted,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- images pinned by digest in prod -------------------------------------------------------


# The program labels every Kubernetes object with the rules its stack follows
# (cv-platform:environment), so a prod stack is recognised whatever its name.
ENVIRONMENT_LABEL = "cv-platform.io/environment"


def _is_prod(args: ResourceValidationArgs) -> bool:
    if stack_of(args.urn) in _prod_stacks(args):
        return True
    labels = _map(_map(args.props.get("metadata")).get("labels"))
    return labels.get(ENVIRONMENT_LABEL) == "prod"


def _validate_digest(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _is_prod(args):
        return
    if args.resource_type == DOCKER_CONTAINER:
        image = str(args.props.get("image") or "")
        # A Docker container may also name its image by image id (sha256:<hex> alone).
        if pinned_digest(image) is None and not is_digest(image):
            report("container image is not pinned by digest (repo@sha256:...)", None)
        return
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for container in containers(spec):
        image = str(container.get("image") or "")
        if pinned_digest(image) is None:
            report(
                f"container {_cname(container)} image is not pinned by digest "
                "(repo@sha256:<64 hex>)",
                None,
            )


IMAGES_PINNED_BY_DIGEST = ResourceValidationPolicy(
    name="prod-images-pinned-by-digest",
    description="In production (a stack named in prodStacks, or an object labelled "
    f"{ENVIRONMENT_LABEL}: prod) every container image is referenced by digest "
    "(repo@sha256:...), never by a tag alone.",
    validate=_validate_digest,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "prodStacks": {
                "type": "array",
                "items": {"type": "string"},
                "default": list(DEFAULT_PROD_STACKS),
            }
        }
    ),
)


# --- CPU, memory and ephemeral-storage limits ---------------------------------------------


_LIMITED = ("cpu", "memory", "ephemeral-storage")


def _validate_limits(args: ResourceValidationArgs, report: ReportViolation) -> None:
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for container in containers(spec, ephemeral=False):
        limits = _map(_map(container.get("resources")).get("limits"))
        # ephemeral-storage: without it one pod's logs or scratch files can fill the
        # node's disk and get every pod on it evicted.
        missing = [k for k in _LIMITED if limits.get(k) in (None, "")]
        if missing:
            report(
                f"container {_cname(container)} has no {' or '.join(missing)} limit "
                "(resources.limits)",
                None,
            )


RESOURCE_LIMITS = ResourceValidationPolicy(
    name="container-resource-limits",
    description=(
        "Every container sets resources.limits.cpu, resources.limits.memory and "
        "resources.limits.ephemeral-storage."
    ),
    validate=_validate_limits,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- LoadBalancer services need a source allowlist -----------------------------------------


def _validate_load_balancer(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != K8S_SERVICE:
        return
    spec = _map(args.props.get("spec"))
    if spec.get("type") != "LoadBalancer":
        return
    ranges = [str(r) for r in _seq(spec.get("loadBalancerSourceRanges"))]
    if not ranges:
        report("Service of type LoadBalancer has no spec.loadBalancerSourceRanges", None)
    elif _OPEN_RANGES.intersection(ranges):
        report("Service of type LoadBalancer allows every source (0.0.0.0/0 or ::/0)", None)


LOAD_BALANCER_SOURCE_RANGES = ResourceValidationPolicy(
    name="load-balancer-source-ranges",
    description="A Service of type LoadBalancer lists the networks allowed to reach it "
    "(spec.loadBalancerSourceRanges, not 0.0.0.0/0).",
    validate=_validate_load_balancer,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- no plaintext secrets in container env -------------------------------------------------


def _validate_env(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == DOCKER_CONTAINER:
        for entry in _seq(args.props.get("envs")):
            name, sep, value = str(entry).partition("=")
            if sep and is_plaintext_secret(name, value):
                report(f"env {name} holds a literal secret (mount a file or use a secret)", None)
        return
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for container in containers(spec):
        for entry in _seq(container.get("env")):
            var = _map(entry)
            name = str(var.get("name") or "")
            if "valueFrom" in var and var.get("value") in (None, ""):
                continue
            if is_plaintext_secret(name, var.get("value")):
                report(
                    f"container {_cname(container)} env {name} holds a literal secret "
                    "(use valueFrom.secretKeyRef)",
                    None,
                )


NO_PLAINTEXT_SECRETS = ResourceValidationPolicy(
    name="no-plaintext-secrets-in-env",
    description="Container environment variables never carry a credential as a literal "
    "value; they reference a Secret (valueFrom.secretKeyRef) or a mounted file.",
    validate=_validate_env,
    enforcement_level=EnforcementLevel.MANDATORY,
)


# --- protected volumes for the tooling -----------------------------------------------------


def _volume_labels(props: Mapping[str, Any]) -> dict[str, str]:
    labels = {}
    for entry in _seq(props.get("labels")):
        item = _map(entry)
        labels[str(item.get("label", ""))] = str(item.get("value", ""))
    return labels


def _validate_protected_volume(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DOCKER_VOLUME:
        return
    if _volume_labels(args.props).get(DISPOSABLE_LABEL) == "true":
        return
    if isinstance(args.opts, OptionsNotVisible):
        args.not_applicable("resource options (protect) are not part of an offline render")
    # pulumi-policy 1.21 passes `protect` but not `retainOnDelete` to the analyzer; a newer SDK
    # that exposes it satisfies the rule too.
    if args.opts.protect or getattr(args.opts, "retain_on_delete", False):
        return
    report(
        "tooling volume is not protected: set protect=True (and retain_on_delete=True) "
        "so a replace or destroy cannot drop Jenkins or registry data, or label scratch "
        f"space {DISPOSABLE_LABEL}=true",
        None,
    )


PROTECTED_TOOLING_VOLUMES = ResourceValidationPolicy(
    name="protected-tooling-volumes",
    description="Docker volumes that hold the CI tooling's data (Jenkins home, registry "
    f"storage) are protected against deletion; scratch volumes say so with {DISPOSABLE_LABEL}.",
    validate=_validate_protected_volume,
    enforcement_level=EnforcementLevel.MANDATORY,
)


POLICIES: tuple[ResourceValidationPolicy, ...] = (
    RESTRICTED_POD_SECURITY,
    IMAGES_PINNED_BY_DIGEST,
    RESOURCE_LIMITS,
    LOAD_BALANCER_SOURCE_RANGES,
    NO_PLAINTEXT_SECRETS,
    PROTECTED_TOOLING_VOLUMES,
)
