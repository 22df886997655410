"""Issue 2's "how it will be checked", run through the real CLI on the real stacks.

``pipeline render`` writes each stack into a directory of its own; everything
below reads those files, as a reviewer or a CI job would. The broken-config
variants render a temporary copy of the project: the real stack files are
never touched.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline.cli import main
from pipeline.render.mocks import forget_shadowed_modules
from pipeline.secrets import SECRET_STAND_IN

KUBERNETES_VERSION = "1.31.0"
CUSTOM_GROUP = "monitoring.coreos.com/"
STACKS = ("staging", "prod")
# A staging stack that switches on every optional object and rule the real
# stack files leave off (Ingress with TLS, GPU, pod-label ingress, extra egress),
# so the schema and the scanner see those too.
OPEN_STACK = "staging-open"
OPEN_OVERRIDES: dict[str, Any] = {
    "cv-platform:environment": "staging",
    "cv-platform:namespace": "cv-staging-open",
    "cv-platform:allowedIngressPodLabels": ["app=smoke-test"],
    "cv-platform:allowedEgress": ["10.20.0.0/16:443"],
    "cv-platform:ingressEnabled": True,
    "cv-platform:ingressHost": "staging.detect.example.com",
    "cv-platform:ingressTlsSecretName": "staging-tls",
    "cv-platform:gpuCount": 1,
}
# What the program reads besides the stack files: its code, the Jenkins build
# contexts (infra/jenkins/, and pyproject.toml and uv.lock, which the agent image installs).
PROGRAM_FILES = ("__main__.py", "pyproject.toml", "uv.lock")
PROGRAM_DIRS = ("infra", "model")


@pytest.fixture(autouse=True)
def _forget_other_trees_modules(project_root: Path) -> Iterator[None]:
    """After each test, drop the ``infra`` modules a rendered copy left in sys.modules.

    A later test importing ``infra`` must get this project's, not a temporary tree's.
    """
    yield
    forget_shadowed_modules(project_root)


def render(project: Path, stack: str, out: Path) -> int:
    return main(["--project-dir", str(project), "render", stack, "--out", str(out)])


def tree(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def copy_project(source: Path, target: Path) -> Path:
    target.mkdir(parents=True)
    for path in [source / "Pulumi.yaml", *source.glob("Pulumi.*.yaml")]:
        shutil.copy2(path, target / path.name)
    for name in PROGRAM_FILES:
        shutil.copy2(source / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".pytest_cache")
    for name in PROGRAM_DIRS:
        shutil.copytree(source / name, target / name, ignore=ignore)
    return target


def edit_stack(project: Path, stack: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def base64_fragments(text: str) -> set[str]:
    """The base64 text of ``text`` at each of the three byte alignments it can have."""
    raw = text.encode()
    fragments = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        start = -(-8 * offset // 6)  # first character made of ``raw`` bits only
        end = 8 * (offset + len(raw)) // 6
        fragments.add(encoded[start:end])
    return fragments


@pytest.fixture(scope="module")
def real_stack_files(project_root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in project_root.glob("Pulumi*.yaml")}


@pytest.fixture(scope="module")
def rendered(
    tmp_path_factory: pytest.TempPathFactory, project_root: Path, real_stack_files: dict[str, bytes]
) -> dict[str, Path]:
    """staging and prod rendered from the project itself; staging-open from a copy."""
    root = tmp_path_factory.mktemp("rendered")
    dirs = {}
    for stack in STACKS:
        assert render(project_root, stack, root / stack) == 0
        dirs[stack] = root / stack
    copy = copy_project(project_root, tmp_path_factory.mktemp("open") / "project")
    document = yaml.safe_load((copy / "Pulumi.staging.yaml").read_text())
    document["config"].update(OPEN_OVERRIDES)
    (copy / f"Pulumi.{OPEN_STACK}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    assert render(copy, OPEN_STACK, root / OPEN_STACK) == 0
    dirs[OPEN_STACK] = root / OPEN_STACK
    return dirs


def manifests(directory: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(directory.glob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1, f"{path.name}: one object per file"
        found.append(docs[0])
    return found


def resources(directory: Path) -> list[dict[str, Any]]:
    listed: list[dict[str, Any]] = json.loads((directory / "resources.json").read_text())
    return listed


# --- Kubernetes 1.31 schema and the IaC scanner ----------------------------------


@pytest.mark.parametrize("stack", [*STACKS, OPEN_STACK])
def test_rendered_manifests_pass_the_kubernetes_1_31_schema_strictly(
    rendered: dict[str, Path], stack: str
) -> None:
    found = manifests(rendered[stack])
    assert len(found) >= 12
    # kubernetes-validate knows Kubernetes' own kinds only: the Prometheus Operator's are
    # checked against their CRDs' schemas instead (tests/monitoring/test_crds.py).
    custom = [m for m in found if m["apiVersion"].startswith(CUSTOM_GROUP)]
    assert sorted(m["kind"] for m in custom) == ["PrometheusRule", "ServiceMonitor"]
    for manifest in found:
        if manifest in custom:
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']} {manifest['metadata']['name']}: {exc.message}")


def test_optional_objects_are_rendered_in_the_open_variant(rendered: dict[str, Path]) -> None:
    kinds = [m["kind"] for m in manifests(rendered[OPEN_STACK])]
    assert "Ingress" in kinds
    assert kinds.count("NetworkPolicy") == 5  # deny, ingress, Prometheus, DNS, extra egress


def _failed_checks(report: Any) -> list[str]:
    failed = []
    for item in report if isinstance(report, list) else [report]:
        for check in item.get("results", {}).get("failed_checks", []):
            failed.append(f"{check['check_id']} {check['resource']}: {check['check_name']}")
    return failed


@pytest.mark.slow
def test_rendered_directories_pass_every_checkov_kubernetes_check(
    rendered: dict[str, Path], tmp_path: Path
) -> None:
    checkov = Path(sys.executable).with_name("checkov")
    if not checkov.is_file():
        pytest.skip(f"checkov is not installed next to {sys.executable} (make setup installs it)")
    parent = next(iter(rendered.values())).parent
    assert {p.name for p in parent.iterdir()} == set(rendered)
    # Offline: no policy download, no bridgecrew.cloud mapping or telemetry.
    env = {
        **os.environ,
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_SKIP_DOWNLOAD": "TRUE",
        "BC_API_KEY": "",
        "PRISMA_API_URL": "",
    }
    proc = subprocess.run(
        [
            str(checkov),
            "-d",
            str(parent),
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
        timeout=180,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert proc.stdout.strip(), proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert _failed_checks(report) == []
    summaries = [item["summary"] for item in (report if isinstance(report, list) else [report])]
    # Every object of the three renders was scanned (the scanner adds a Pod per Deployment),
    # but the Prometheus Operator's kinds: checkov has no check for them and does not count
    # them (their schema is checked in tests/monitoring/test_crds.py).
    objects = sum(
        1
        for d in rendered.values()
        for m in manifests(d)
        if not m["apiVersion"].startswith(CUSTOM_GROUP)
    )
    assert sum(s["resource_count"] for s in summaries) >= objects
    assert sum(s["parsing_errors"] for s in summaries) == 0
    assert sum(s["passed"] for s in summaries) > 250


# --- Determinism and secrets -------------------------------------------------------


def test_two_renders_are_byte_identical(
    rendered: dict[str, Path], project_root: Path, tmp_path: Path
) -> None:
    for stack in STACKS:
        assert render(project_root, stack, tmp_path / stack) == 0
        assert tree(tmp_path / stack) == tree(rendered[stack]), stack


# Renders prod, then staging, in one process; says whether prod loaded the Docker SDK.
_OTHER_PROCESS = """
import sys
from pipeline.cli import main
out = sys.argv[1]
assert main(["render", "prod", "--out", out + "/prod"]) == 0
print("pulumi_docker" in sys.modules)
assert main(["render", "staging", "--out", out + "/staging"]) == 0
"""


def test_renders_in_another_process_with_another_hash_seed_are_byte_identical(
    rendered: dict[str, Path], project_root: Path, tmp_path: Path
) -> None:
    # Set iteration order depends on the hash seed: a render must not.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(tmp_path)],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for stack in STACKS:
        assert tree(tmp_path / stack) == tree(rendered[stack]), stack
    # Prod has no tooling: its render does not even import the Docker provider SDK.
    assert [ln for ln in proc.stdout.splitlines() if ln in ("True", "False")] == ["False"]


@pytest.mark.parametrize("stack", [*STACKS, OPEN_STACK])
def test_no_secret_value_appears_anywhere_in_the_render(
    rendered: dict[str, Path], stack: str
) -> None:
    markers = {SECRET_STAND_IN, *base64_fragments(SECRET_STAND_IN)}
    for name, content in tree(rendered[stack]).items():
        text = content.decode()
        for marker in markers:
            assert marker not in text, f"{name} holds {marker!r}"


def test_secret_inputs_are_written_redacted(rendered: dict[str, Path]) -> None:
    staging = rendered["staging"]
    pull = yaml.safe_load(
        (staging / "secret-cv-staging-model-server-registry-pull.yaml").read_text()
    )
    assert pull["data"] == {".dockerconfigjson": "[secret]"}
    redacted = [r["name"] for r in resources(staging) if "[secret]" in json.dumps(r["inputs"])]
    # The pull secret, and the tooling's secrets (admin password, registry credentials).
    assert "model-server-registry-pull" in redacted
    assert len(redacted) >= 3


# --- What each stack holds ------------------------------------------------------------

TOOLING_TYPES = ("docker:", "cv-platform:jenkins:", "cv-platform:registry:", "cv-platform:cihost:")


def test_staging_lists_the_ci_tooling(rendered: dict[str, Path]) -> None:
    listed = resources(rendered["staging"])
    containers = {r["name"] for r in listed if r["type"] == "docker:index/container:Container"}
    assert containers >= {
        "cv-platform-registry-server",
        "cv-platform-jenkins-controller",
        "cv-platform-jenkins-agent",
        "cv-platform-jenkins-buildkitd",
    }
    networks = [r["name"] for r in listed if r["type"] == "docker:index/network:Network"]
    assert networks == ["cv-platform-tooling"]
    protected = {
        r["name"]
        for r in listed
        if r["type"] == "docker:index/volume:Volume" and r["protect"] and r["retainOnDelete"]
    }
    assert {"cv-platform-registry-data", "cv-platform-jenkins-home"} <= protected


def test_staging_renders_the_registry_as_a_fresh_stack_deploys_it(
    rendered: dict[str, Path],
) -> None:
    # No TLS certificate is set in Pulumi.staging.yaml, so none is assumed: loopback only.
    registry = next(
        r for r in resources(rendered["staging"]) if r["name"] == "cv-platform-registry-server"
    )
    assert registry["inputs"]["ports"] == [{"external": 5000, "internal": 5000, "ip": "127.0.0.1"}]


def test_render_names_the_secrets_staging_needs_and_not_the_optional_ones(
    project_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(project_root, "staging", tmp_path / "staging") == 0
    needed = capsys.readouterr().out.split("(pulumi config set --secret KEY before pulumi up): ")[1]
    assert {name.strip() for name in needed.split(",")} == {
        "jenkinsAdminPassword",
        "registryPassword",
        "toolingRegistryHtpasswd",
        "toolingRegistryPassword",
    }


def test_prod_lists_no_tooling(rendered: dict[str, Path]) -> None:
    listed = resources(rendered["prod"])
    assert [r for r in listed if r["type"].startswith(TOOLING_TYPES)] == []
    assert {r["type"] for r in listed if r["type"].startswith("pulumi:providers:")} == {
        "pulumi:providers:kubernetes"
    }
    outputs = json.loads((rendered["prod"] / "stack-outputs.json").read_text())
    assert set(outputs) == {"image", "imageDigest", "namespace", "serviceUrl"}


def test_prod_runs_the_image_by_digest(rendered: dict[str, Path]) -> None:
    deployment = yaml.safe_load(
        (rendered["prod"] / "deployment-cv-prod-model-server.yaml").read_text()
    )
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    outputs = json.loads((rendered["prod"] / "stack-outputs.json").read_text())
    # Whatever image the pipeline last pinned: by digest, as the outputs say.
    assert image == outputs["image"]
    assert re.fullmatch(r"[a-z0-9.:/_-]+@sha256:[0-9a-f]{64}", image), image
    assert image.endswith("@" + outputs["imageDigest"])


# --- Broken configs ---------------------------------------------------------------------


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(config: dict[str, Any]) -> None:
        config[key] = value

    return change


def _drop_digest(config: dict[str, Any]) -> None:
    del config["cv-platform:image"]["digest"]


BROKEN = {
    "wrong type": (
        "staging",
        _set("cv-platform:replicas", "three"),
        "cv-platform:replicas must be an integer >= 1, got 'three'",
    ),
    "prod image without digest": (
        "prod",
        _drop_digest,
        "cv-platform:image.digest is required in prod",
    ),
    "negative resource": (
        "prod",
        _set("cv-platform:cpuRequest", -1),
        "cv-platform:cpuRequest must be a positive CPU quantity",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_config_exits_1_with_one_line_naming_the_key_and_writes_nothing(
    case: str,
    project_root: Path,
    real_stack_files: dict[str, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stack, change, message = BROKEN[case]
    copy = copy_project(project_root, tmp_path / "project")
    edit_stack(copy, stack, change)
    out = tmp_path / "out"
    capsys.readouterr()
    assert render(copy, stack, out) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert message in lines[0]
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["project"]  # no staging dir left behind
    assert {p.name: p.read_bytes() for p in project_root.glob("Pulumi*.yaml")} == real_stack_files
