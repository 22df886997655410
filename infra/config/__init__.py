"""The stack's settings: read once from ``pulumi.Config``, validated, frozen.

``parse_settings`` is the pure core: it takes the string values the Pulumi
engine hands a program (objects and arrays as JSON) and returns a ``Settings``
tree or raises ``SettingsError`` naming the key and the fix. ``load_settings``
is the thin shell that reads ``pulumi.Config`` for the current stack.

Split by concern, imported as one: ``defaults`` (the keys and Pulumi.yaml's
defaults), ``values`` (typed reading of the engine's strings, ``SettingsError``),
``kubernetes`` (Kubernetes' own grammar: names, labels, quantities), ``settings``
(the tree), ``parse`` (the model environment's rules), ``monitoring`` (the
monitor, rules and dashboard) and ``tooling`` (the CI tooling, staging only).
Callers import from ``infra.config``.
"""

from infra.config.defaults import (
    DEFAULTS,
    PIPELINE_KEYS,
    REQUIRED_KEYS,
    SECRET_KEYS,
)
from infra.config.kubernetes import cpu_millis, memory_bytes
from infra.config.monitoring import LATENCY_BUCKETS_MS, MonitoringSettings, parse_monitoring
from infra.config.parse import load_settings, parse_settings
from infra.config.settings import (
    GpuSettings,
    ImageSettings,
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
from infra.config.tooling import (
    JenkinsSettings,
    ToolingRegistrySettings,
    ToolingSettings,
    parse_tooling,
)
from infra.config.values import SettingsError

__all__ = [
    "DEFAULTS",
    "LATENCY_BUCKETS_MS",
    "PIPELINE_KEYS",
    "REQUIRED_KEYS",
    "SECRET_KEYS",
    "GpuSettings",
    "ImageSettings",
    "IngressSettings",
    "JenkinsSettings",
    "KubernetesSettings",
    "ModelSettings",
    "MonitoringSettings",
    "NetworkSettings",
    "RegistrySettings",
    "ResourceSettings",
    "ScalingSettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "ToolingRegistrySettings",
    "ToolingSettings",
    "cpu_millis",
    "load_settings",
    "memory_bytes",
    "parse_monitoring",
    "parse_settings",
    "parse_tooling",
]
