"""CiDockerHost: the explicit Docker provider for the CI Docker host, and its tooling network.

Every tooling container (registry, Jenkins controller, agent, BuildKit) is
declared through this provider, never the ambient one: its host comes from
``cv-platform:tooling.dockerHost`` (the local socket by default, ``ssh://...``
for a remote host). The provider carries the login for the tooling registry,
so the host can pull the Jenkins images that the program pushed there.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from infra.config import ToolingSettings
from infra.registry import ecr_token


@dataclass(frozen=True)
class RegistryLogin:
    address: str
    username: str
    password: pulumi.Output[str]  # a secret


@dataclass(frozen=True)
class CiDockerHostArgs:
    docker_host: str
    logins: tuple[RegistryLogin, ...] = ()

    @staticmethod
    def from_tooling(
        tooling: ToolingSettings, ecr_endpoint_url: str | None = None
    ) -> CiDockerHostArgs:
        reg = tooling.registry
        if reg.kind == "ecr":
            token = ecr_token(reg.ecr_repository, reg.ecr_region, ecr_endpoint_url)
            login = RegistryLogin(reg.host, token.username, pulumi.Output.secret(token.password))
        else:
            assert reg.password is not None
            login = RegistryLogin(reg.host, reg.username, pulumi.Output.secret(reg.password))
        return CiDockerHostArgs(tooling.docker_host, (login,))


class CiDockerHost(pulumi.ComponentResource):
    """Outputs: ``provider`` (for ResourceOptions) and ``network_name``."""

    provider: docker.Provider
    network: docker.Network
    network_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: CiDockerHostArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cv-platform:cihost:CiDockerHost", name, None, opts)
        self.provider = docker.Provider(
            f"{name}-docker",
            host=args.docker_host,
            registry_auth=[
                docker.ProviderRegistryAuthArgs(
                    address=login.address, username=login.username, password=login.password
                )
                for login in args.logins
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The containers find each other by alias here (registry, jenkins); BuildKit is
        # on it without one (the agent reaches it over a unix socket).
        self.network = docker.Network(
            f"{name}-tooling",
            name=f"{name}-tooling",
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label="cv-platform.io/part-of", value="ci-tooling")],
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        self.network_name = self.network.name
        self.register_outputs({"networkName": self.network_name})
