"""Fixtures for the infra tests: engine-form config, Pulumi mocks per test, program runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import pulumi
import pytest
from pulumi.runtime.rpc import is_rpc_secret

from pipeline.project import Project
from pipeline.render.mocks import DeclaredResource, ProgramRun, RecordingMocks, run_program
from pipeline.stacks.config import engine_config, engine_string, load_stack_config

PROJECT = "cv-platform"
DIGEST = "sha256:" + "ab" * 32
REPOSITORY = "registry.example.internal/cv-platform/model-server"
# The smallest config of a valid staging stack; tests override single keys.
BASE: Mapping[str, Any] = {
    "kubeContext": "kind-cv-test",
    "image": {"repository": REPOSITORY, "tag": "9f3c2ab", "digest": DIGEST},
}
PROD_BASE: Mapping[str, Any] = {**BASE, "replicas": 3, "podDisruptionBudget": True}
TEST_PASSWORD = "s3cr3t-pull-token"
F = TypeVar("F", bound=Callable[..., Any])


def pulumi_test(fn: F) -> F:
    """``pulumi.runtime.test`` (untyped in the SDK), keeping the function's type."""
    return cast(F, pulumi.runtime.test(fn))  # type: ignore[no-untyped-call]


def engine_values(values: Mapping[str, Any]) -> dict[str, str]:
    """Keys without the project prefix -> engine strings (what pulumi.Config.get returns)."""
    return {key: engine_string(value) for key, value in values.items() if value is not None}


class ProviderRecordingMocks(RecordingMocks):
    """RecordingMocks that also remember which provider each resource was registered with."""

    def __init__(self) -> None:
        super().__init__()
        self.providers: dict[str, str | None] = {}

    def new_resource(
        self, args: pulumi.runtime.MockResourceArgs
    ) -> tuple[str | None, dict[str, Any]]:
        self.providers[f"{args.typ}::{args.name}"] = args.provider
        return super().new_resource(args)


@pytest.fixture
def pulumi_mocks() -> Iterator[Callable[..., ProviderRecordingMocks]]:
    """Set fresh mocks (and config) for one test; call it with the stack and config to use."""

    def install(
        stack: str = "staging", config: Mapping[str, Any] | None = None
    ) -> ProviderRecordingMocks:
        mocks = ProviderRecordingMocks()
        full = {f"{PROJECT}:{k}": v for k, v in engine_values(config or {}).items()}
        pulumi.runtime.set_all_config(full, [])
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
        return mocks

    yield install
    pulumi.runtime.set_all_config({}, [])


@pytest.fixture(scope="session")
def project(project_root: Path) -> Project:
    return Project(project_root)


def run_stack_file(
    project: Project, stack: str, overrides: Mapping[str, Any] | None = None
) -> ProgramRun:
    """Run the real program (fresh, under new mocks) for a real stack file plus overrides."""
    config, secret_keys = engine_config(load_stack_config(project, stack))
    for key, value in (overrides or {}).items():
        full = f"{PROJECT}:{key}"
        if value is None:
            config.pop(full, None)
        else:
            config[full] = engine_string(value)
    return run_program(project.root, stack, config, secret_keys)


@pytest.fixture
def run_stack(project: Project) -> Callable[..., ProgramRun]:
    """Run the real program for a real stack file, optionally overriding keys."""

    def run(stack: str, overrides: Mapping[str, Any] | None = None) -> ProgramRun:
        return run_stack_file(project, stack, overrides)

    return run


# One run per stack file for the tests that only read what it declared (runs are
# deterministic, and nothing mutates a ProgramRun).
@pytest.fixture(scope="module")
def staging(project: Project) -> ProgramRun:
    return run_stack_file(project, "staging")


@pytest.fixture(scope="module")
def prod(project: Project) -> ProgramRun:
    return run_stack_file(project, "prod")


def by_kind(run: ProgramRun, kind: str) -> list[DeclaredResource]:
    return [r for r in run.resources if r.is_kubernetes_object and r.inputs["kind"] == kind]


def one(run: ProgramRun, kind: str) -> DeclaredResource:
    found = by_kind(run, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def settings_map(run: ProgramRun) -> DeclaredResource:
    """The server's settings ConfigMap (the dashboard is a ConfigMap too)."""
    (found,) = [
        r for r in by_kind(run, "ConfigMap") if r.inputs["metadata"]["name"].endswith("-settings")
    ]
    return found


def pod_spec(run: ProgramRun) -> dict[str, Any]:
    spec: dict[str, Any] = one(run, "Deployment").inputs["spec"]["template"]["spec"]
    return spec


def container(run: ProgramRun) -> dict[str, Any]:
    containers = pod_spec(run)["containers"]
    assert len(containers) == 1
    first: dict[str, Any] = containers[0]
    return first


def unwrap(value: Any) -> Any:
    if is_rpc_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def uploads(res: DeclaredResource) -> dict[str, Any]:
    return {u["file"]: u for u in unwrap(res.inputs.get("uploads", []))}
