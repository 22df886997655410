"""ImageRegistry: the image registry of the CI tooling, on the CI Docker host or in ECR.

Self-hosted (default): the Distribution registry (v3) in a container, its image
pinned by digest. Configuration is a file uploaded into the container at the
path that major version reads (v2 and v3 differ, and a file at the other path
is silently ignored). Storage is a named volume marked protect and
retain_on_delete (a ``pulumi destroy`` cannot wipe it), or S3. Clients log in
with htpasswd (a bcrypt line made once and kept as a Pulumi secret, so nothing
is re-hashed with a fresh salt on each run); the htpasswd file, TLS key and
certificate are uploaded as files, never passed as environment variables. The
port is published on loopback unless TLS is configured.

ECR: nothing runs on the Docker host. The program asks ECR (boto3) for an
authorization token, once per run, for pushes and the cluster's image pull
secret; missing AWS credentials or a missing repository stop the run with one
line that says what to fix.
"""

from __future__ import annotations

import base64
import functools
import json
from dataclasses import dataclass
from typing import Any, Final

import pulumi
import pulumi_docker as docker

from infra.config import RegistrySettings, ToolingRegistrySettings
from infra.containers import REGISTRY_LIMITS

# registry:3 (Distribution v3), pinned by digest. Update tag and digest together.
REGISTRY_IMAGE: Final = (
    "registry:3@sha256:1be55279f18a2fe1a74edf2664cac61c1bea305b7b4642dab412e7affdcb3e33"
)
# Where each major version reads its configuration. v3 reads
# /etc/distribution/config.yml; v2 read /etc/docker/registry/config.yml.
CONFIG_PATHS: Final = {
    2: "/etc/docker/registry/config.yml",
    3: "/etc/distribution/config.yml",
}
CONTAINER_PORT: Final = 5000
# Health endpoint: the debug server, on the container's own loopback only.
DEBUG_ADDR: Final = "127.0.0.1:5001"
DATA_DIR: Final = "/var/lib/registry"
AUTH_DIR: Final = "/etc/distribution/auth"
TLS_DIR: Final = "/etc/distribution/tls"
AWS_CREDENTIALS_FILE: Final = "/etc/distribution/aws/credentials"


class RegistryConfigError(Exception):
    """The ECR repository cannot be used (credentials, repository); one line for the user."""


def registry_major(image: str) -> int:
    """The Distribution major version from an image reference such as registry:3@sha256:..."""
    tag = image.split("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
    major = tag.split(".", 1)[0]
    if not major.isdigit() or int(major) not in CONFIG_PATHS:
        raise ValueError(f"cannot tell the Distribution major version of {image!r}")
    return int(major)


def config_path(image: str) -> str:
    return CONFIG_PATHS[registry_major(image)]


def registry_config(settings: ToolingRegistrySettings) -> str:
    """The registry's config.yml (YAML is a superset of JSON; keys sorted: stable bytes)."""
    storage: dict[str, Any]
    if settings.storage == "s3":
        storage = {"s3": {"bucket": settings.s3_bucket, "region": settings.s3_region}}
    else:
        storage = {"filesystem": {"rootdirectory": DATA_DIR}}
    storage["delete"] = {"enabled": True}
    storage["cache"] = {"blobdescriptor": "inmemory"}
    storage["maintenance"] = {
        "uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False}
    }
    http: dict[str, Any] = {
        "addr": f":{CONTAINER_PORT}",
        "headers": {"X-Content-Type-Options": ["nosniff"]},
        "debug": {"addr": DEBUG_ADDR},
    }
    if settings.tls:
        http["tls"] = {"certificate": f"{TLS_DIR}/tls.crt", "key": f"{TLS_DIR}/tls.key"}
    config = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": storage,
        "http": http,
        "auth": {"htpasswd": {"realm": "cv-platform-registry", "path": f"{AUTH_DIR}/htpasswd"}},
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


# --- ECR ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EcrToken:
    """An ECR login: user ``AWS``, a password valid for 12 hours, the registry endpoint."""

    username: str
    password: str
    endpoint: str  # https://ACCOUNT.dkr.ecr.REGION.amazonaws.com
    expires_at: str  # ISO 8601


@functools.cache
def ecr_token(repository_uri: str, region: str, endpoint_url: str | None = None) -> EcrToken:
    """Log in to the ECR registry holding ``repository_uri`` (cached for the run).

    Checks that the repository exists, so a typo fails here rather than at push
    time. ``endpoint_url`` points boto3 at another ECR endpoint (tests: moto).
    """
    import boto3
    import botocore.exceptions

    registry_host, _, name = repository_uri.partition("/")
    account = registry_host.split(".", 1)[0]
    # A session of its own: credentials are looked up now, not reused from another session.
    client = boto3.session.Session(region_name=region).client("ecr", endpoint_url=endpoint_url)
    try:
        client.describe_repositories(registryId=account, repositoryNames=[name])
        answer = client.get_authorization_token(registryIds=[account])
    except botocore.exceptions.NoCredentialsError:
        raise RegistryConfigError(
            "ECR registry: no AWS credentials found; set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or run on a host with an IAM role)"
        ) from None
    except client.exceptions.RepositoryNotFoundException:
        raise RegistryConfigError(
            f"ECR registry: repository {name!r} not found in account {account} ({region}); "
            f"create it (aws ecr create-repository --repository-name {name}) or fix "
            "cv-platform:tooling.registry.ecrRepository"
        ) from None
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise RegistryConfigError(
            f"ECR registry: {error.get('Code', 'error')}: {error.get('Message', exc)}"
        ) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise RegistryConfigError(f"ECR registry: {exc}") from None
    data = answer["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    expires = data.get("expiresAt")
    return EcrToken(
        username=username,
        password=password,
        endpoint=str(data.get("proxyEndpoint", f"https://{registry_host}")),
        expires_at=expires.isoformat() if expires is not None else "",
    )


def _htpasswd_file(line: str) -> str:
    return line.strip() + "\n"


# --- The component -------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRegistryArgs:
    settings: ToolingRegistrySettings
    network: pulumi.Input[str] | None = None  # the tooling network's name (self-hosted)
    ecr_endpoint_url: str | None = None  # another ECR endpoint (tests)


class ImageRegistry(pulumi.ComponentResource):
    """The tooling's registry. Outputs: ``host`` (registryHost), ``username``, ``password``."""

    host: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    # Self-hosted only (None for ECR): the container and its storage volume.
    container: docker.Container | None
    volume: docker.Volume | None

    def __init__(
        self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cv-platform:registry:ImageRegistry", name, None, opts)
        s = args.settings
        self.container = None
        self.volume = None
        if s.kind == "ecr":
            token = ecr_token(s.ecr_repository, s.ecr_region, args.ecr_endpoint_url)
            self.host = pulumi.Output.from_input(s.host)
            self.username = pulumi.Output.from_input(token.username)
            self.password = pulumi.Output.secret(token.password)
        else:
            container = self._self_hosted(name, s, args.network)
            assert s.password is not None
            # Known once the registry runs (healthy: wait=True), so whatever pushes to it
            # (the Jenkins images) waits for it, even on the first `pulumi up`.
            self.host = container.id.apply(lambda _: s.host)
            self.username = pulumi.Output.from_input(s.username)
            self.password = pulumi.Output.secret(s.password)
        self.register_outputs(
            {"registryHost": self.host, "username": self.username, "password": self.password}
        )

    def _self_hosted(
        self, name: str, s: ToolingRegistrySettings, network: pulumi.Input[str] | None
    ) -> docker.Container:
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(
            f"{name}-image", name=REGISTRY_IMAGE, keep_locally=True, opts=child
        )
        envs: list[str] = []
        volumes: list[docker.ContainerVolumeArgs] = []
        assert s.htpasswd is not None
        uploads = [
            docker.ContainerUploadArgs(
                file=config_path(REGISTRY_IMAGE), content=registry_config(s), permissions="0444"
            ),
            docker.ContainerUploadArgs(
                file=f"{AUTH_DIR}/htpasswd",
                content=s.htpasswd.apply(_htpasswd_file),  # stays a secret
                permissions="0400",
            ),
        ]
        if s.tls_cert is not None and s.tls_key is not None:
            uploads += [
                docker.ContainerUploadArgs(
                    file=f"{TLS_DIR}/tls.crt", content=s.tls_cert, permissions="0444"
                ),
                docker.ContainerUploadArgs(
                    file=f"{TLS_DIR}/tls.key", content=s.tls_key, permissions="0400"
                ),
            ]
        if s.storage == "s3":
            # The S3 driver is chosen in the config file alone: Distribution reads
            # REGISTRY_STORAGE=s3 as a replacement of the whole storage section, which
            # would drop the bucket and region (the registry then panics at start).
            if s.s3_credentials is not None:
                envs.append(f"AWS_SHARED_CREDENTIALS_FILE={AWS_CREDENTIALS_FILE}")
                uploads.append(
                    docker.ContainerUploadArgs(
                        file=AWS_CREDENTIALS_FILE,
                        content=pulumi.Output.secret(s.s3_credentials),
                        permissions="0400",
                    )
                )
        else:
            self.volume = docker.Volume(
                f"{name}-data",
                name=f"{name}-data",
                labels=[docker.VolumeLabelArgs(label="cv-platform.io/backup", value="true")],
                opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
            )
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=DATA_DIR)
            )
        # Loopback unless TLS: parse_tooling refuses another address without TLS.
        bind = s.address if s.tls else "127.0.0.1"
        self.container = docker.Container(
            f"{name}-server",
            name=f"{name}-server",
            image=image.repo_digest,
            command=[config_path(REGISTRY_IMAGE)],
            envs=envs,
            uploads=uploads,
            volumes=volumes,
            ports=[docker.ContainerPortArgs(internal=CONTAINER_PORT, external=s.port, ip=bind)],
            networks_advanced=(
                [docker.ContainerNetworksAdvancedArgs(name=network, aliases=["registry"])]
                if network is not None
                else None
            ),
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "wget", "-q", "-O", "/dev/null", f"http://{DEBUG_ADDR}/debug/health"],
                interval="30s",
                timeout="5s",
                retries=3,
                start_period="10s",
            ),
            # No read-only root filesystem: Docker refuses uploads into one.
            security_opts=["no-new-privileges:true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            memory=REGISTRY_LIMITS.memory_mb,
            memory_swap=REGISTRY_LIMITS.memory_mb,
            cpus=REGISTRY_LIMITS.cpus,
            must_run=True,
            # Created means healthy: pushes that follow find it answering.
            wait=True,
            wait_timeout=120,
            opts=child,
        )
        return self.container


def ecr_pull_settings(
    pull: RegistrySettings, tooling: ToolingRegistrySettings, endpoint_url: str | None = None
) -> RegistrySettings:
    """The cluster's pull secret credentials: an ECR token when the registry is ECR."""
    if tooling.kind != "ecr":
        return pull
    token = ecr_token(tooling.ecr_repository, tooling.ecr_region, endpoint_url)
    return RegistrySettings(tooling.host, token.username, pulumi.Output.secret(token.password))
