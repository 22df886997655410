"""The declared Kubernetes objects as manifests: Kubernetes 1.31 schema and checkov's checks.

Manifests are dumped here from the mock run's inputs (secrets unwrapped to
their placeholder values, integral floats back to integers), independently of
``pipeline render``, so these tests check the program and not the renderer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pulumi.runtime.rpc import is_rpc_secret

from pipeline.mocks import ProgramRun

KUBERNETES_VERSION = "1.31.0"
# A staging variant that switches on every optional network rule.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "staging": ("staging", {}),
    "prod": ("prod", {}),
    "staging-open": (
        "staging",
        {
            "allowedIngressPodLabels": ["app=smoke-test"],
            "allowedEgress": ["10.20.0.0/16:443"],
            "ingressEnabled": True,
            "ingressHost": "staging.detect.example.com",
            "ingressTlsSecretName": "staging-tls",
            "gpuCount": 1,
        },
    ),
}


def _plain(value: Any) -> Any:
    if is_rpc_secret(value):
        return _plain(value["value"])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def dump(run: ProgramRun, out: Path) -> list[dict[str, Any]]:
    out.mkdir(parents=True, exist_ok=True)
    manifests = []
    for res in run.resources:
        if not res.is_kubernetes_object:
            continue
        manifest = _plain(res.inputs)
        meta = manifest["metadata"]
        name = f"{manifest['kind'].lower()}-{meta.get('namespace', '_cluster')}-{meta['name']}.yaml"
        (out / name).write_text(yaml.safe_dump(manifest, sort_keys=True))
        manifests.append(manifest)
    return manifests


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, project_root: Path
) -> dict[str, tuple[Path, list[dict[str, Any]]]]:
    from pipeline.mocks import run_program
    from pipeline.project import Project
    from pipeline.stackconfig import engine_config, load_stack_config
    from tests.infra.conftest import engine_string

    project = Project(project_root)
    root = tmp_path_factory.mktemp("manifests")
    result = {}
    for variant, (stack, overrides) in VARIANTS.items():
        config, secret_keys = engine_config(load_stack_config(project, stack))
        config.update({f"cv-platform:{k}": engine_string(v) for k, v in overrides.items()})
        run = run_program(project.root, stack, config, secret_keys)
        result[variant] = (root / variant, dump(run, root / variant))
    return result


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_manifests_pass_the_kubernetes_1_31_schema_strictly(
    rendered: dict[str, tuple[Path, list[dict[str, Any]]]], variant: str
) -> None:
    _, manifests = rendered[variant]
    assert len(manifests) >= 12
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {exc.message}")


def _failed_checks(report: Any) -> list[str]:
    reports = report if isinstance(report, list) else [report]
    failed = []
    for item in reports:
        for check in item.get("results", {}).get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
    return failed


@pytest.mark.slow
def test_manifests_pass_every_checkov_kubernetes_check(
    rendered: dict[str, tuple[Path, list[dict[str, Any]]]],
    tmp_path: Path,
) -> None:
    checkov = Path(sys.executable).with_name("checkov")
    if not checkov.is_file():
        pytest.skip(f"checkov is not installed next to {sys.executable} (make setup installs it)")
    directory = next(iter(rendered.values()))[0].parent
    proc = subprocess.run(
        [
            str(checkov),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    report = json.loads(proc.stdout)
    assert _failed_checks(report) == []
    passed = sum(
        item.get("summary", {}).get("passed", 0)
        for item in (report if isinstance(report, list) else [report])
    )
    assert passed > 100, proc.stdout[:500]


def test_secret_values_reach_only_the_pull_secret(
    rendered: dict[str, tuple[Path, list[dict[str, Any]]]],
) -> None:
    from pipeline.stackconfig import SECRET_PLACEHOLDER

    for path, manifests in rendered.values():
        for manifest in manifests:
            text = json.dumps(manifest)
            if manifest["kind"] == "Secret":
                continue
            assert SECRET_PLACEHOLDER not in text, f"{path.name}: {manifest['metadata']['name']}"
