"""cv-platform: read the stack's settings, build its components, export outputs."""

import pulumi

from infra.config import load_settings
from infra.environment import ModelEnvironment, ModelEnvironmentArgs

settings = load_settings()

environment = ModelEnvironment(settings.app_name, ModelEnvironmentArgs.from_settings(settings))

# The CI tooling (Jenkins, image registry) joins here for the stack that owns it:
# settings.tooling is None until then.

pulumi.export("image", environment.image)
pulumi.export("imageDigest", environment.image_digest)
pulumi.export("namespace", environment.namespace)
pulumi.export("serviceUrl", environment.service_url)
