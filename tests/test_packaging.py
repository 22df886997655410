"""How the project is installed: one lock (uv.lock), the files exported from it,
the pinned uv, the Makefile's install steps and the `cv-pipeline` console script."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.records.model import Deployment
from pipeline.records.stores import open_store
from tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
UV = BIN / "uv"  # the dev group's uv, the same release the Makefile bootstraps
DIGEST = "sha256:" + "a" * 64
EXPORTED = (
    "requirements.txt",
    "model/requirements.txt",
    "model/requirements-serve.txt",
    "model/requirements-test.txt",
)


def export_check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / "scripts/export-requirements"), "--check"],
        env={**os.environ, "UV": str(UV)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def lock_copy(tmp_path: Path) -> Path:
    """What the export reads and writes, copied: pyproject.toml, uv.lock, the exports."""
    for name in ("pyproject.toml", "uv.lock", "scripts/export-requirements", *EXPORTED):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / name, tmp_path / name)
    return tmp_path


def test_exported_requirement_files_match_the_lock() -> None:
    done = export_check(PROJECT_ROOT)
    assert (done.returncode, done.stderr) == (0, "")


def test_a_requirement_file_that_drifts_from_the_lock_is_named(lock_copy: Path) -> None:
    serve = lock_copy / "model/requirements-serve.txt"
    text = serve.read_text()
    assert re.search(r"^flask==\S+ \\$", text, re.M)
    serve.write_text(re.sub(r"^flask==\S+ \\$", "flask==3.0.0 \\\\", text, flags=re.M))
    done = export_check(lock_copy)
    assert done.returncode == 1
    assert done.stderr == (
        "export-requirements: model/requirements-serve.txt does not match uv.lock: run make lock\n"
    )
    assert serve.read_text() != text  # --check writes nothing


def test_a_lock_behind_pyproject_is_refused(lock_copy: Path) -> None:
    pyproject = lock_copy / "pyproject.toml"
    text = pyproject.read_text()
    pyproject.write_text(text.replace('"PyYAML>=6.0,<7",', '"PyYAML>=6.0,<7",\n    "rich>=13",', 1))
    done = export_check(lock_copy)
    assert done.returncode == 1
    assert done.stderr == (
        "export-requirements: uv.lock does not match pyproject.toml: run make lock\n"
    )


def test_exports_pin_every_package_with_hashes() -> None:
    # pip installs them in hash-checking mode: each entry is name==version, then its hashes.
    entry = re.compile(
        r"^([\w.-]+)==[\w.+!-]+(?: ; .+)? \\\n(?:    --hash=sha256:[0-9a-f]{64}.*\n)+", re.M
    )
    for name in EXPORTED:
        text = (PROJECT_ROOT / name).read_text()
        heads = [ln for ln in text.splitlines() if ln and not ln.startswith((" ", "#"))]
        assert heads, name
        assert len(entry.findall(text)) == len(heads), name


def test_the_model_image_gets_the_model_groups_versions(locked: dict[str, dict[str, Any]]) -> None:
    serve = (PROJECT_ROOT / "model/requirements-serve.txt").read_text()
    train = (PROJECT_ROOT / "model/requirements.txt").read_text()
    for package in ("flask", "gunicorn", "numpy", "pillow", "prometheus-client"):
        pin = f"\n{package}=={locked[package]['version']} "
        assert pin in serve, package
        assert pin in train, package
    assert "\nscikit-learn==" in train
    assert "scikit-learn" not in serve  # the serving image carries no training code


def test_one_uv_release_everywhere(locked: dict[str, dict[str, Any]]) -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    match = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert match
    dev = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["dependency-groups"]["dev"]
    assert f"uv=={match.group(1)}" in dev
    assert locked["uv"]["version"] == match.group(1)
    version = subprocess.run([str(UV), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split()[:2] == ["uv", match.group(1)]


def make_dry_run(target: str) -> list[str]:
    # Run as a user would, not as a sub-make of `make test` (which passes its flags on).
    ignored = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "STACK", "OUT", "VENV", "PYTHON"}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        env={k: v for k, v in os.environ.items() if k not in ignored},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.splitlines()


def test_make_render_installs_the_runtime_only_and_no_system_packages() -> None:
    commands = make_dry_run("render")
    assert not [c for c in commands if "install-system-packages" in c]
    (sync,) = [c for c in commands if " sync " in c]
    assert "--locked" in sync.split()
    assert "--no-dev" in sync.split()
    assert commands[-1].endswith("-m pipeline render staging --out build/render/staging")


@pytest.mark.parametrize("target", ["setup", "test", "lint"])
def test_make_setup_installs_the_lock_and_the_system_packages(target: str) -> None:
    commands = make_dry_run(target)
    assert "scripts/install-system-packages" in commands
    (sync,) = [c for c in commands if " sync " in c]
    assert "--locked" in sync.split()  # never a silent re-resolve
    assert not [c for c in commands if re.search(r"\bpip install\b|\buv (lock|pip)\b", c)]


# -- the console script ---------------------------------------------------------


@pytest.fixture(scope="module")
def console_script() -> Path:
    try:
        importlib.metadata.distribution("cv-platform")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("the project is not installed in this environment (make setup installs it)")
    return BIN / "cv-pipeline"


def run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A record store holding one staging deployment."""
    path = tmp_path / "records.db"
    store = open_store(str(path), None)
    try:
        store.add_many(
            [
                Deployment(
                    stack="staging",
                    result="succeeded",
                    image="registry.cv.example:5000/cv/model:abc",
                    digest=DIGEST,
                    started=datetime(2026, 1, 5, 10, 0, tzinfo=UTC),
                    finished=datetime(2026, 1, 5, 10, 5, tzinfo=UTC),
                )
            ]
        )
    finally:
        store.close()
    return path


@pytest.mark.parametrize("where", ["docs", "infra", "infra/jenkins/agent"])
def test_console_script_finds_the_project_from_a_subdirectory(
    console_script: Path, store: Path, where: str
) -> None:
    done = run_cli(
        [str(console_script), "--store", str(store), "history", "staging", "--json"],
        PROJECT_ROOT / where,
    )
    assert (done.returncode, done.stderr) == (0, "")
    (entry,) = json.loads(done.stdout)
    assert entry["digest"] == DIGEST


def test_console_script_takes_the_project_dir_from_anywhere(
    console_script: Path, store: Path, tmp_path: Path
) -> None:
    argv = [str(console_script), "--store", str(store)]
    done = run_cli(
        [*argv, "--project-dir", str(PROJECT_ROOT), "history", "staging", "--json"], tmp_path
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert len(json.loads(done.stdout)) == 1
    outside = run_cli([*argv, "history", "staging", "--json"], tmp_path)
    assert outside.returncode == 1
    assert outside.stderr.count("\n") == 1
    assert "Pulumi.yaml" in outside.stderr


def test_python_m_pipeline_works_from_a_subdirectory(console_script: Path) -> None:
    done = run_cli([sys.executable, "-m", "pipeline", "--help"], PROJECT_ROOT / "docs")
    assert done.returncode == 0
    assert "render" in done.stdout


def test_the_project_is_installed_editable(console_script: Path) -> None:
    # The script runs the code of the checkout it was installed from, not a copy of it.
    dist = importlib.metadata.distribution("cv-platform")
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    assert direct["dir_info"] == {"editable": True}
    source = Path(urllib.parse.urlparse(direct["url"]).path)
    assert (source / "Pulumi.yaml").is_file()
    probe = (
        "import infra, pipeline, policy; print(pipeline.__file__, infra.__file__, policy.__file__)"
    )
    done = run_cli([sys.executable, "-c", probe], Path("/"))
    assert done.returncode == 0, done.stderr
    for path in done.stdout.split():
        assert Path(path).is_relative_to(source), path


# -- bootstrapping uv -------------------------------------------------------------


def bootstrap(tmp_path: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROJECT_ROOT / "scripts/bootstrap-uv"), "0.13.8", str(tmp_path / "tools/uv")],
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_bootstrap_uses_the_pinned_uv_on_path(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text("#!/bin/sh\necho 'uv 0.13.8 (x86_64-unknown-linux-gnu)'\n")
    (bin_dir / "uv").chmod(0o755)
    done = bootstrap(tmp_path, f"{bin_dir}:/usr/bin:/bin", PYTHON="no-such-python")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "tools/uv/bin/uv").resolve() == (bin_dir / "uv").resolve()


def test_bootstrap_without_uv_or_python_says_what_to_install(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text("#!/bin/sh\necho 'uv 0.9.0'\n")  # another release: not used
    (bin_dir / "uv").chmod(0o755)
    done = bootstrap(tmp_path, f"{bin_dir}:/usr/bin:/bin", PYTHON="no-such-python")
    assert done.returncode == 1
    assert done.stderr == (
        "bootstrap-uv: no-such-python not found: install Python 3.11+ (or uv 0.13.8) first\n"
    )
    assert not (tmp_path / "tools").exists()
