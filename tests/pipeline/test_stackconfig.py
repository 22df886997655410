"""Stack config is resolved as Pulumi resolves it: project defaults, then the stack file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.project import Project
from pipeline.secrets import SECRET_STAND_IN
from pipeline.stacks.config import engine_config, load_stack_config

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
    assert config["cv-platform:registryPassword"] == SECRET_STAND_IN
    assert secret_keys == [
        "cv-platform:adminPassword",
        "cv-platform:jenkinsAdminPassword",
        "cv-platform:registryPassword",
    ]
    assert config["cv-platform:jenkinsAdminPassword"] == SECRET_STAND_IN


def test_unknown_stack_names_the_known_ones(project: Project) -> None:
    with pytest.raises(ConfigError, match=r"unknown stack 'qa'.*stacks: prod"):
        load_stack_config(project, "qa")


def test_a_stack_path_that_is_not_a_file_is_named_not_called_unknown(project: Project) -> None:
    (project.root / "Pulumi.qa.yaml").mkdir()
    with pytest.raises(ConfigError, match=r"^stack 'qa': .*Pulumi\.qa\.yaml is not a file$"):
        load_stack_config(project, "qa")


def test_malformed_yaml_names_file_and_line(project: Project) -> None:
    # The same form pipeline.stacks.stackfile uses, so every command says it alike.
    (project.root / "Pulumi.prod.yaml").write_text("config:\n  cv-platform:replicas: [3\n")
    with pytest.raises(ConfigError, match=r"^Pulumi\.prod\.yaml:3: malformed YAML: "):
        load_stack_config(project, "prod")


def test_config_block_must_be_a_mapping(project: Project) -> None:
    (project.root / "Pulumi.prod.yaml").write_text("config: [1, 2]\n")
    with pytest.raises(ConfigError, match="'config' must be a mapping"):
        load_stack_config(project, "prod")


# --- Pulumi's own resolution rules (sdk/go/common/workspace/config.go) ---------------


def write_stack(project: Project, text: str) -> None:
    (project.root / "Pulumi.prod.yaml").write_text(text)


def test_a_secure_leaf_inside_an_object_keeps_the_object_and_makes_the_key_secret(
    project: Project,
) -> None:
    write_stack(
        project,
        "config:\n"
        "  cv-platform:database:\n"
        "    user: reader\n"
        "    password:\n"
        "      secure: v1:AAAACCCC\n",
    )
    cfg = load_stack_config(project, "prod")
    assert "cv-platform:database" in cfg.secret_keys
    assert "cv-platform:database" not in cfg.values
    config, secret_keys = engine_config(cfg)
    assert json.loads(config["cv-platform:database"]) == {
        "user": "reader",
        "password": SECRET_STAND_IN,
    }
    assert "cv-platform:database" in secret_keys


def test_stack_scalars_reach_the_program_as_written(project: Project) -> None:
    # The engine reads a stack file's scalar into a string: no YAML 1.1 re-typing.
    write_stack(
        project,
        "config:\n  cv-platform:gpu: yes\n  cv-platform:replicas: 3\n  cv-platform:ratio: 2.50\n",
    )
    config, _ = engine_config(load_stack_config(project, "prod"))
    assert config["cv-platform:gpu"] == "yes"
    assert config["cv-platform:replicas"] == "3"
    assert config["cv-platform:ratio"] == "2.50"


def test_dates_in_a_stack_file_are_handed_on_as_text(project: Project) -> None:
    write_stack(
        project,
        "config:\n  cv-platform:since: 2026-01-01\n  cv-platform:window: {from: 2026-01-02}\n",
    )
    config, _ = engine_config(load_stack_config(project, "prod"))
    assert config["cv-platform:since"] == "2026-01-01"
    assert json.loads(config["cv-platform:window"]) == {"from": "2026-01-02"}


def test_the_old_config_module_form_of_a_stack_key_is_read(project: Project) -> None:
    write_stack(project, "config:\n  cv-platform:config:replicas: 5\n")
    assert load_stack_config(project, "prod").get("replicas") == 5


def test_a_stack_key_without_a_namespace_is_refused(project: Project) -> None:
    write_stack(project, "config:\n  replicas: 5\n")
    with pytest.raises(ConfigError, match=r"Pulumi\.prod\.yaml: config key .replicas. must be"):
        load_stack_config(project, "prod")


def test_a_declaration_may_carry_a_description_beside_its_value(project: Project) -> None:
    (project.root / "Pulumi.yaml").write_text(
        "name: cv-platform\nconfig:\n  image:\n    description: what runs\n"
        "    value: {repository: r.example/m, tag: '1'}\n"
    )
    write_stack(project, "config: {}\n")
    assert load_stack_config(project, "prod").get("image") == {
        "repository": "r.example/m",
        "tag": "1",
    }


def test_a_mapping_in_pulumi_yaml_is_a_declaration_not_an_object_value(
    project: Project,
) -> None:
    (project.root / "Pulumi.yaml").write_text(
        "name: cv-platform\nconfig:\n  image:\n    repository: r.example/m\n"
    )
    with pytest.raises(ConfigError, match=r"config.image has the unknown field 'repository'"):
        load_stack_config(project, "prod")


def test_a_typed_declaration_outside_the_project_namespace_is_refused(
    project: Project,
) -> None:
    (project.root / "Pulumi.yaml").write_text(
        "name: cv-platform\nconfig:\n  kubernetes:context:\n    type: string\n"
    )
    with pytest.raises(ConfigError, match="cannot declare a type or default"):
        load_stack_config(project, "prod")


def test_a_declaration_with_both_default_and_value_is_refused(project: Project) -> None:
    (project.root / "Pulumi.yaml").write_text(
        "name: cv-platform\nconfig:\n  size:\n    type: string\n    default: a\n    value: b\n"
    )
    with pytest.raises(ConfigError, match=r"config\.size has both default and value"):
        load_stack_config(project, "prod")


def test_undeclared_project_keys_of_the_stack_file_are_listed(project: Project) -> None:
    write_stack(
        project,
        "config:\n  cv-platform:replica: 3\n  cv-platform:replicas: 3\n"
        "  kubernetes:context: kind\n  cv-platform:adminPassword:\n    secure: v1:AA\n",
    )
    assert load_stack_config(project, "prod").undeclared == ("cv-platform:replica",)
