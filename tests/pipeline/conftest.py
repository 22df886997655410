"""Fixtures for the pipeline tests: the real registry (tests/registry_fixture.py)."""

from tests.registry_fixture import registry_images, registry_server

__all__ = ["registry_images", "registry_server"]
