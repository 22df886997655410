"""cv-platform: read the stack's settings, build its components, export outputs."""

import dataclasses

import pulumi

from infra.config import load_settings
from infra.environment import ModelEnvironment, ModelEnvironmentArgs

settings = load_settings()
tooling = settings.tooling

# The CI tooling (registry, Jenkins) lives on the CI Docker host; only staging has it.
# Its modules (and the Docker provider SDK) are imported only by the stack that has it.
if tooling is not None:
    from infra.cihost import CiDockerHost, CiDockerHostArgs
    from infra.jenkins import JenkinsServer, JenkinsServerArgs
    from infra.registry import ImageRegistry, ImageRegistryArgs, ecr_pull_settings

    ci_host = CiDockerHost(settings.project, CiDockerHostArgs.from_tooling(tooling))
    on_ci_host = pulumi.ResourceOptions(providers=[ci_host.provider])
    registry = ImageRegistry(
        f"{settings.project}-registry",
        ImageRegistryArgs(tooling.registry, network=ci_host.network_name),
        on_ci_host,
    )
    # With ECR, the cluster's image pull secret carries an ECR token.
    settings = dataclasses.replace(
        settings, registry=ecr_pull_settings(settings.registry, tooling.registry)
    )

environment = ModelEnvironment(settings.app_name, ModelEnvironmentArgs.from_settings(settings))

if tooling is not None:
    jenkins = JenkinsServer(
        f"{settings.project}-jenkins",
        JenkinsServerArgs(
            settings=tooling.jenkins,
            network=ci_host.network_name,
            registry_host=registry.host,
            registry_username=registry.username,
            registry_password=registry.password,
            image_repository=settings.image.repository,
            registry_insecure=tooling.registry.kind == "selfHosted" and not tooling.registry.tls,
        ),
        on_ci_host,
    )
    pulumi.export("registryHost", registry.host)
    pulumi.export("jenkinsUrl", jenkins.url)

pulumi.export("image", environment.image)
pulumi.export("imageDigest", environment.image_digest)
pulumi.export("namespace", environment.namespace)
pulumi.export("serviceUrl", environment.service_url)
