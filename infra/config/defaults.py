"""The project's config keys and their defaults, as ``Pulumi.yaml`` declares them.

``DEFAULTS`` mirrors the ``config:`` block of Pulumi.yaml (a test keeps them
equal; unit tests never read Pulumi.yaml itself), ``TOOLING_DEFAULTS`` the
``cv-platform:tooling`` object and ``MONITORING_DEFAULTS`` ``cv-platform:monitoring``.
The key lists say which keys the program reads, which are secrets, and which only
the pipeline reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Environment = Literal["staging", "prod"]

PROJECT: Final = "cv-platform"
ENVIRONMENTS: Final[tuple[Environment, ...]] = ("staging", "prod")

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
# cv-platform:monitoring: what ModelEnvironment declares for the Prometheus Operator
# and Grafana (see parse_monitoring); enabled: false on clusters without the operator.
MONITORING_DEFAULTS: Final[Mapping[str, Any]] = {
    "enabled": True,
    "prometheusNamespace": "monitoring",
    "prometheusPodSelector": "app.kubernetes.io/name=prometheus",
    "selectorLabel": "",
    "scrapeInterval": "15s",
    "alertErrorRatio": 0.05,
    "alertP95LatencyMs": 250,
    "alertP99LatencyMs": 500,
    "dashboard": True,
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
    "ephemeralStorageRequest": "1Gi",
    "ephemeralStorageLimit": "2Gi",
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
    "allowedIngressClientPodSelector": "cv-platform.io/model-client=true",
    "allowedIngressPodLabels": [],
    "allowedEgress": [],
    "ingressEnabled": False,
    "ingressHost": "",
    "ingressClassName": "nginx",
    "ingressTlsSecretName": "",
    "ingressControllerNamespace": "ingress-nginx",
    "ingressControllerPodSelector": "app.kubernetes.io/name=ingress-nginx",
    "registry": {"server": "", "username": ""},
    "monitoring": MONITORING_DEFAULTS,
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
    "promotionMaxAccuracyDrop",
    "promotionMaxLatencyMs",
    "verification",
)
PROGRAM_KEYS: Final = (*DEFAULTS, *REQUIRED_KEYS)
