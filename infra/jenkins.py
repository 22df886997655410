"""JenkinsServer: the Jenkins controller, one inbound agent and a BuildKit daemon.

All three run as containers on the CI Docker host (the explicit provider of
CiDockerHost), on the tooling network:

- the controller, built from infra/jenkins/Dockerfile (official LTS image
  pinned by digest, pinned plugins, configuration as code), pushed to the
  tooling registry and run by its digest; JENKINS_HOME on a named volume
  marked protect and retain_on_delete; published on the configured address
  (default 127.0.0.1:8080);
- the agent, built from infra/jenkins/agent/Dockerfile, connecting over
  WebSocket through the controller's HTTP port (the TCP agent port is off);
- a rootless BuildKit daemon that the agent's buildctl builds images with,
  over a unix socket on a volume only the two of them mount (BuildKit listens
  on no TCP port: nothing else on the tooling network can reach it);
- the scanner's DB on a disposable volume the agent mounts at /var/cache/trivy.

Each container has memory and CPU limits (infra/containers.py) and a health
check; docs/ci-tooling.md says why BuildKit runs with the security options it has.

No container mounts the Docker socket. Secrets reach the controller only as
files under /run/secrets, uploaded from Pulumi secrets at container creation;
no environment variable holds one. The agent's connection secret is derived
by Jenkins and handed over on a volume only the two of them mount (see
infra/jenkins/init.groovy.d).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pulumi
import pulumi_docker as docker

from infra.config import JenkinsSettings
from infra.containers import AGENT_LIMITS, BUILDKIT_LIMITS, CONTROLLER_LIMITS
from infra.tooling_images import (
    AGENT_DOCKERFILE,
    CONTROLLER_CONTEXT,
    PROJECT_ROOT,
    agent_context_files,
    context_digest,
    controller_context_files,
)

# moby/buildkit:v0.33.0-rootless, pinned by digest (the agent's buildctl is the same release).
BUILDKIT_IMAGE: Final = (
    "moby/buildkit:v0.33.0-rootless"
    "@sha256:80b15f0735e87bab7bf59ec4d695dfb4a7cfb25521cf56dc75d6f256285b63ef"
)
# The BuildKit socket's directory: a tmpfs volume owned by uid 1000, mode 0700, mounted
# by BuildKit (its user, uid 1000) and read-only by the agent (jenkins, uid 1000).
BUILDKIT_SOCKET_DIR: Final = "/run/buildkit"
BUILDKIT_ADDR: Final = f"unix://{BUILDKIT_SOCKET_DIR}/buildkitd.sock"
BUILDKIT_UID: Final = 1000  # moby/buildkit:rootless's user, and jenkins in the agent image
HTTP_PORT: Final = 8080
SECRETS_DIR: Final = "/run/secrets"
AGENT_SECRET_DIR: Final = "/run/agent-secret"  # noqa: S105 - a path, not a secret
JENKINS_HOME: Final = "/var/jenkins_home"
RECORDS_DIR: Final = "/var/lib/cv-platform"
# Trivy's DB (refreshed by the cv-platform-scanner-db job; ci/scan reads it).
SCANNER_DB_DIR: Final = "/var/cache/trivy"
PLATFORM: Final = "linux/amd64"
# The agent is healthy while remoting runs ([.] so the check's own command line does not
# match) and BuildKit answers on the socket.
AGENT_HEALTH: Final = (
    "grep -qs 'agent[.]jar' /proc/[0-9]*/cmdline"
    ' && buildctl --addr "$BUILDKIT_HOST" debug workers >/dev/null'
)
# The agent's entrypoint: waits up to 5 minutes for the secret file (then exits, and
# the restart policy tries again), then starts the inbound agent.
AGENT_START: Final = (
    'file="${AGENT_SECRET_FILE}"; n=0; '
    'until [ -s "$file" ]; do n=$((n+1)); [ "$n" -gt 150 ] && exit 1; sleep 2; done; '
    'exec /usr/local/bin/jenkins-agent "$@"'
)


def buildkitd_config(registry_alias: str, insecure: bool) -> str:
    """buildkitd.toml: plain HTTP only for the tooling registry's in-network alias."""
    lines = ["# Written by JenkinsServer (infra/jenkins.py).", "[worker.oci]", "  gc = true"]
    if insecure:
        lines += [f'[registry."{registry_alias}"]', "  http = true"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class JenkinsServerArgs:
    settings: JenkinsSettings
    network: pulumi.Input[str]
    registry_host: pulumi.Input[str]  # where the Jenkins images are pushed (host[:port])
    registry_username: pulumi.Input[str]
    registry_password: pulumi.Input[str]  # a secret
    image_repository: str  # what the Jenkinsfile pushes: the staging image repository
    image_prefix: str = "cv-platform"  # repository path of the Jenkins images in the registry
    registry_alias: str = "registry:5000"  # the self-hosted registry on the tooling network
    registry_insecure: bool = True  # that alias speaks plain HTTP (inside the network only)


class JenkinsServer(pulumi.ComponentResource):
    """Outputs: ``url`` (jenkinsUrl), ``controller_image`` and ``agent_image`` (by digest)."""

    url: pulumi.Output[str]
    controller_image: pulumi.Output[str]
    agent_image: pulumi.Output[str]
    home_volume: docker.Volume
    records_volume: docker.Volume
    controller: docker.Container
    agent: docker.Container
    buildkitd: docker.Container

    def __init__(
        self, name: str, args: JenkinsServerArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cv-platform:jenkins:JenkinsServer", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        keep = pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True)
        backup = [docker.VolumeLabelArgs(label="cv-platform.io/backup", value="true")]
        registry = docker.RegistryArgs(
            server=args.registry_host,
            username=args.registry_username,
            password=pulumi.Output.secret(args.registry_password),
        )

        def built_image(
            kind: str, context: str, dockerfile: str, files: list[Path]
        ) -> docker.Image:
            # Tagged with a hash of its build context: a new tag (and digest) only when it changes.
            return docker.Image(
                f"{name}-{kind}-image",
                image_name=pulumi.Output.concat(
                    args.registry_host,
                    f"/{args.image_prefix}/jenkins-{kind}:",
                    context_digest(files, PROJECT_ROOT),
                ),
                build=docker.DockerBuildArgs(
                    context=context, dockerfile=dockerfile, platform=PLATFORM
                ),
                registry=registry,
                opts=child,
            )

        controller_image = built_image(
            "controller",
            CONTROLLER_CONTEXT,
            f"{CONTROLLER_CONTEXT}/Dockerfile",
            controller_context_files(),
        )
        agent_image = built_image("agent", ".", AGENT_DOCKERFILE, agent_context_files())
        # Downstream containers run the pushed digest, never the tag.
        self.controller_image = controller_image.repo_digest
        self.agent_image = agent_image.repo_digest

        self.home_volume = docker.Volume(
            f"{name}-home", name=f"{name}-home", labels=backup, opts=keep
        )
        self.records_volume = docker.Volume(
            f"{name}-records", name=f"{name}-records", labels=backup, opts=keep
        )
        # Holds only the agent's connection secret; Jenkins rewrites it at each start.
        # Scratch space says so, for the policy pack's protected-tooling-volumes rule.
        scratch = [docker.VolumeLabelArgs(label="cv-platform.io/disposable", value="true")]
        agent_secret = docker.Volume(
            f"{name}-agent-secret", name=f"{name}-agent-secret", labels=scratch, opts=child
        )
        buildkit_cache = docker.Volume(
            f"{name}-buildkit-cache", name=f"{name}-buildkit-cache", labels=scratch, opts=child
        )
        # The scanner's vulnerability DB: downloaded again by the next refresh if lost.
        scanner_db = docker.Volume(
            f"{name}-scanner-db", name=f"{name}-scanner-db", labels=scratch, opts=child
        )
        # Memory, not disk: the socket is gone with the last container that mounts it.
        buildkit_socket = docker.Volume(
            f"{name}-buildkit-socket",
            name=f"{name}-buildkit-socket",
            driver="local",
            driver_opts={
                "type": "tmpfs",
                "device": "tmpfs",
                "o": f"uid={BUILDKIT_UID},gid={BUILDKIT_UID},mode=0700,size=1m",
            },
            labels=scratch,
            opts=child,
        )

        def secret_files(
            files: dict[str, pulumi.Input[str] | None],
        ) -> list[docker.ContainerUploadArgs]:
            # A secret that is not configured gets no file at all: the Docker provider
            # refuses an upload without content, and casc.yaml reads a missing optional
            # file as an empty credential (${readFile:...:-}), which Jenkins' bindings
            # turn into an unset variable, so the ci/ scripts take their "absent" path.
            # 0444 inside the container: Docker uploads as root and Jenkins runs as uid 1000.
            return [
                docker.ContainerUploadArgs(
                    file=f"{SECRETS_DIR}/{file_name}",
                    content=pulumi.Output.secret(value),
                    permissions="0444",
                )
                for file_name, value in files.items()
                if value is not None
            ]

        jenkins_alias = "jenkins"
        internal_url = f"http://{jenkins_alias}:{HTTP_PORT}/"
        self.controller = docker.Container(
            f"{name}-controller",
            name=f"{name}-controller",
            image=self.controller_image,
            envs=[
                f"AGENT_NAME={s.agent_name}",
                f"AGENT_SECRET_DIR={AGENT_SECRET_DIR}",
                f"CV_PLATFORM_REPO_NAME={s.repository_name}",
                f"CV_PLATFORM_REPO_OWNER={s.repository_owner}",
                f"CV_PLATFORM_REPO_URL={s.repository_url}",
                f"GITHUB_USER={s.github_user}",
                f"JENKINS_ADMIN_ID={s.admin_user}",
                f"JENKINS_URL={s.url}",
                pulumi.Output.concat("REGISTRY_HOST=", args.registry_host),
                pulumi.Output.concat("REGISTRY_PUSH_USER=", args.registry_username),
            ],
            uploads=secret_files(
                {
                    "jenkins-admin-password": s.admin_password,
                    "registry-push-password": args.registry_password,
                    "github-token": s.github_token,
                    "pulumi-config-passphrase": s.pulumi_passphrase,
                    "kubeconfig": s.kubeconfig,
                    "pulumi-backend-credentials": s.pulumi_backend_credentials,
                    "pulumi-access-token": s.pulumi_access_token,
                }
            ),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=self.home_volume.name, container_path=JENKINS_HOME
                ),
                docker.ContainerVolumeArgs(
                    volume_name=agent_secret.name, container_path=AGENT_SECRET_DIR
                ),
            ],
            ports=[docker.ContainerPortArgs(internal=HTTP_PORT, external=s.port, ip=s.address)],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=args.network, aliases=[jenkins_alias])
            ],
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=[
                    "CMD",
                    "curl",
                    "-fsS",
                    "-o",
                    "/dev/null",
                    f"http://127.0.0.1:{HTTP_PORT}/login",
                ],
                interval="30s",
                timeout="5s",
                retries=5,
                start_period="120s",
            ),
            security_opts=["no-new-privileges:true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            memory=CONTROLLER_LIMITS.memory_mb,
            memory_swap=CONTROLLER_LIMITS.memory_mb,
            cpus=CONTROLLER_LIMITS.cpus,
            must_run=True,
            opts=child,
        )

        self.buildkitd = docker.Container(
            f"{name}-buildkitd",
            name=f"{name}-buildkitd",
            image=docker.RemoteImage(
                f"{name}-buildkit-image", name=BUILDKIT_IMAGE, keep_locally=True, opts=child
            ).repo_digest,
            # Rootless BuildKit inside an unprivileged container (no process sandbox),
            # listening only on the socket in the volume it shares with the agent.
            command=[
                "--addr",
                BUILDKIT_ADDR,
                "--oci-worker-no-process-sandbox",
                "--config",
                "/home/user/.config/buildkit/buildkitd.toml",
            ],
            uploads=[
                docker.ContainerUploadArgs(
                    file="/home/user/.config/buildkit/buildkitd.toml",
                    content=buildkitd_config(args.registry_alias, args.registry_insecure),
                    permissions="0444",
                )
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=buildkit_cache.name,
                    container_path="/home/user/.local/share/buildkit",
                ),
                docker.ContainerVolumeArgs(
                    volume_name=buildkit_socket.name, container_path=BUILDKIT_SOCKET_DIR
                ),
            ],
            # On the network to pull base images and push to the registry; no alias and
            # no port: nothing addresses it there.
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network)],
            # The narrowest profile rootless BuildKit runs under without --privileged
            # (docs/ci-tooling.md): Docker's seccomp and AppArmor profiles refuse the
            # user namespace and the mounts it makes inside it. /proc stays masked
            # (no systempaths=unconfined: the no-process-sandbox flag spares it), and
            # no-new-privileges cannot be set: it would void the file capabilities
            # (cap_setuid, cap_setgid) of the newuidmap and newgidmap that map its
            # user namespace.
            security_opts=["seccomp=unconfined", "apparmor=unconfined"],
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "buildctl", "--addr", BUILDKIT_ADDR, "debug", "workers"],
                interval="30s",
                timeout="10s",
                retries=3,
                start_period="30s",
            ),
            memory=BUILDKIT_LIMITS.memory_mb,
            memory_swap=BUILDKIT_LIMITS.memory_mb,
            cpus=BUILDKIT_LIMITS.cpus,
            must_run=True,
            opts=child,
        )

        self.agent = docker.Container(
            f"{name}-agent",
            name=f"{name}-agent",
            image=self.agent_image,
            # Wait (bounded only by the restart policy) until Jenkins has published the
            # secret, then run the image's entrypoint, which hands these to remoting.
            entrypoints=["/bin/sh", "-c", AGENT_START, "jenkins-agent"],
            command=[
                "-url",
                internal_url,
                "-webSocket",
                "-name",
                s.agent_name,
                "-secret",
                f"@{AGENT_SECRET_DIR}/{s.agent_name}",
                "-workDir",
                "/home/jenkins/agent",
            ],
            envs=[
                f"AGENT_SECRET_FILE={AGENT_SECRET_DIR}/{s.agent_name}",
                f"BUILDKIT_HOST={BUILDKIT_ADDR}",
                f"IMAGE_REPOSITORY={args.image_repository}",
                f"PIPELINE_STORE={RECORDS_DIR}/records.db",
                f"TRIVY_CACHE_DIR={SCANNER_DB_DIR}",
                f"PULUMI_BACKEND_URL={s.pulumi_backend_url}",
                *([f"STAGING_SMOKE_URL={s.staging_smoke_url}"] if s.staging_smoke_url else []),
            ],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=agent_secret.name, container_path=AGENT_SECRET_DIR, read_only=True
                ),
                docker.ContainerVolumeArgs(
                    volume_name=self.records_volume.name, container_path=RECORDS_DIR
                ),
                docker.ContainerVolumeArgs(
                    volume_name=scanner_db.name, container_path=SCANNER_DB_DIR
                ),
                # Connecting to a socket needs no write access to the file system it is on.
                docker.ContainerVolumeArgs(
                    volume_name=buildkit_socket.name,
                    container_path=BUILDKIT_SOCKET_DIR,
                    read_only=True,
                ),
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network)],
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD-SHELL", AGENT_HEALTH],
                interval="30s",
                timeout="10s",
                retries=3,
                # The entrypoint may wait up to 5 minutes for the controller's secret.
                start_period="330s",
            ),
            security_opts=["no-new-privileges:true"],
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            memory=AGENT_LIMITS.memory_mb,
            memory_swap=AGENT_LIMITS.memory_mb,
            cpus=AGENT_LIMITS.cpus,
            must_run=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.controller, self.buildkitd]),
        )

        self.url = pulumi.Output.from_input(s.url)
        self.register_outputs(
            {
                "jenkinsUrl": self.url,
                "controllerImage": self.controller_image,
                "agentImage": self.agent_image,
            }
        )
