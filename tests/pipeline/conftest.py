"""Fixtures for the pipeline tests: the real registry (tests/registry_fixture.py)
and moto's server mode for AWS (tests/moto_fixture.py)."""

from tests.moto_fixture import aws_env, moto_endpoint
from tests.registry_fixture import registry_images, registry_server

__all__ = ["aws_env", "moto_endpoint", "registry_images", "registry_server"]
