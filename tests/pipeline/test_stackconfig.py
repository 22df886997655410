"""Stack config is resolved as Pulumi resolves it: project defaults, then the stack file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.project import Project
from pipeline.stackconfig import SECRET_PLACEHOLDER, engine_config, load_stack_config

PROJECT_YAML = """\
name: cv-platform
runtime: python
config:
  replicas:
    type: integer
    default: 1
    description: pods
  mutableTags:
    type: array
    items:
      type: string
    default: [latest]
  image:
    value:
      repository: registry.example/model
      tag: "1.0"
      digest: ""
  gpu:
    type: boolean
    default: false
  adminPassword:
    type: string
    secret: true
  kubernetes:namespace: default
template:
  config:
    jenkinsAdminPassword:
      secret: true
      description: only the tooling stack needs it
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT_YAML)
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "encryptionsalt: v1:abc\n"
        "config:\n"
        "  cv-platform:replicas: 3\n"
        "  cv-platform:gpu: true\n"
        "  cv-platform:registryPassword:\n"
        "    secure: v1:AAAABBBB\n"
        "  cv-platform:image:\n"
        "    repository: registry.example/model\n"
        "    tag: '1.1'\n"
        f"    digest: sha256:{'b' * 64}\n"
    )
    return Project(tmp_path)


def test_stack_values_override_project_defaults(project: Project) -> None:
    cfg = load_stack_config(project, "prod")
    assert cfg.get("replicas") == 3
    assert cfg.get("mutableTags") == ["latest"]
    assert cfg.get("image")["tag"] == "1.1"
    assert cfg.values["kubernetes:namespace"] == "default"


def test_declared_template_and_secure_keys_are_secret_and_never_read(project: Project) -> None:
    cfg = load_stack_config(project, "prod")
    assert cfg.secret_keys == {
        "cv-platform:adminPassword",
        "cv-platform:jenkinsAdminPassword",
        "cv-platform:registryPassword",
    }
    assert "cv-platform:registryPassword" not in cfg.values


def test_engine_form_is_strings_with_json_objects_and_placeholder_secrets(
    project: Project,
) -> None:
    config, secret_keys = engine_config(load_stack_config(project, "prod"))
    assert config["cv-platform:replicas"] == "3"
    assert config["cv-platform:gpu"] == "true"
    assert json.loads(config["cv-platform:image"])["digest"] == "sha256:" + "b" * 64
    assert config["cv-platform:registryPassword"] == SECRET_PLACEHOLDER
    assert secret_keys == [
        "cv-platform:adminPassword",
        "cv-platform:jenkinsAdminPassword",
        "cv-platform:registryPassword",
    ]
    assert config["cv-platform:jenkinsAdminPassword"] == SECRET_PLACEHOLDER


def test_unknown_stack_names_the_known_ones(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"unknown stack 'qa'.*stacks: prod"):
        load_stack_config(project, "qa")


def test_config_block_must_be_a_mapping(project: Project) -> None:
    (project.root / "Pulumi.prod.yaml").write_text("config: [1, 2]\n")
    with pytest.raises(ConfigError, match="'config' must be a mapping"):
        load_stack_config(project, "prod")
