"""The CI tooling's settings (staging only): ``cv-platform:tooling`` and its secrets.

One object, ``cv-platform:tooling``, declared in Pulumi.yaml with its defaults and
switched on in Pulumi.staging.yaml (``enabled: true``). Its secrets are separate
secret keys (``TOOLING_SECRET_KEYS``); they are read only when the tooling is on.
Registry hosts and ECR repositories follow the one reference grammar
(``pipeline.images.refs``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeGuard

import pulumi

from infra.config.defaults import TOOLING_DEFAULTS
from infra.config.kubernetes import is_dns1123_label
from infra.config.values import SettingsError, config_object
from pipeline.images.refs import ecr_host, is_path_component, is_registry_host
from pipeline.io.urls import BadUrl, has_userinfo, split

RegistryKind = Literal["selfHosted", "ecr"]
RegistryStorage = Literal["volume", "s3", "ecr"]  # ecr: the repository is the storage
REGISTRY_KINDS: Final[tuple[RegistryKind, ...]] = ("selfHosted", "ecr")
REGISTRY_STORAGES: Final[tuple[RegistryStorage, ...]] = ("volume", "s3")

_DOCKER_HOST = re.compile(r"^(unix://|ssh://|tcp://)\S+\Z")
_GITHUB_REPO_URL = re.compile(
    r"^https://github\.com/(?P<owner>[A-Za-z0-9][A-Za-z0-9-]*)/(?P<name>[A-Za-z0-9._-]+?)(?:\.git)?/?\Z"
)
_S3_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z")


@dataclass(frozen=True, eq=False)
class ToolingRegistrySettings:
    """The self-hosted Distribution registry, or an ECR repository."""

    kind: RegistryKind
    address: str  # where the port is published (loopback unless TLS)
    port: int
    host: str  # how clients name it: host[:port]
    username: str
    storage: RegistryStorage
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
        found = ecr_repository_host(self.ecr_repository)
        return found[1] if found else ""


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


def ecr_repository_host(uri: str) -> tuple[str, str] | None:
    """``(account, region)`` of an ECR repository URI ``HOST/name``, else None."""
    host, sep, name = uri.partition("/")
    if not sep or not all(is_path_component(part) for part in name.split("/")):
        return None
    return ecr_host(host) if ":" not in host else None


def _is_registry_kind(value: str) -> TypeGuard[RegistryKind]:
    return value in REGISTRY_KINDS


def _is_registry_storage(value: str) -> TypeGuard[RegistryStorage]:
    return value in REGISTRY_STORAGES


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
    if not _is_registry_kind(kind):
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
        if ecr_repository_host(ecr) is None:
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
    if not is_registry_host(host):
        raise SettingsError("tooling.registry.host", f"must be host[:port], got {host!r}")
    storage = fields["storage"]
    if not _is_registry_storage(storage):
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
    if has_userinfo(url):
        raise SettingsError(
            "tooling.jenkins.url",
            "must not carry credentials (user:password@): it is shown to every Jenkins user",
        )
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", url):
        raise SettingsError("tooling.jenkins.url", f"must be an http(s) URL, got {url!r}")
    try:
        split(url)
    except BadUrl as exc:
        raise SettingsError("tooling.jenkins.url", f"must be a usable URL: {exc}") from None
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
    if not is_dns1123_label(agent):
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
