"""Moving images: `set-image` against a loopback registry beside `skopeo inspect`,
and the start-up cost of `python -m pipeline --help`.

Figures are medians of several runs of each whole command (a new process each
time, as a Jenkins step or a shell pipeline runs them). Printed, never asserted.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
HEAVY = ("pulumi", "boto3", "botocore", "requests", "yaml", "ruamel", "matplotlib")


def _run(
    command: Sequence[str], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _medians(
    commands: Sequence[Sequence[str]], env: dict[str, str], cwd: Path | None = None
) -> tuple[float, float]:
    """Median wall and CPU seconds over ``commands`` (one run each)."""
    runs = [_run(command, env, cwd) for command in commands]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def _shown(figures: tuple[float, float]) -> str:
    wall, cpu = figures
    return f"{wall * 1000:4.0f} ms wall, {cpu * 1000:4.0f} ms CPU"


def _median_seconds(command: Sequence[str], env: dict[str, str], runs: int = RUNS) -> float:
    return statistics.median(_run(command, env)[0] for _ in range(runs))


def _help_figures(env: dict[str, str]) -> None:
    seconds = _median_seconds([sys.executable, "-m", "pipeline", "--help"], env, runs=9)
    print(f"   python -m pipeline --help: {seconds * 1000:.0f} ms (median of 9; aim < 100 ms)")
    probe = (
        "import sys, pipeline.cli; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    print(f"   heavy modules loaded by importing pipeline.cli: {loaded}")


# What a `set-image` run imports, and the packages worth naming in the split.
_SET_IMAGE_MODULES = (
    "pipeline.cli, pipeline.commands.set_image, pipeline.commands.adapters, "
    "pipeline.stacks.stackfile, pipeline.stacks.config, pipeline.images.client"
)
# dataclasses (it imports inspect), ssl and http.client are named to show they stay out
# (0 ms): set-image's value types are NamedTuples and the registry is plain HTTP.
_NAMED_IMPORTS = (
    "yaml",
    "argparse",
    "typing",
    "pathlib",
    "socket",
    "dataclasses",
    "ssl",
    "http.client",
)


def _import_split(env: dict[str, str], checkout: Path, runs: int = 5) -> str:
    """Median import cost (``-X importtime``, microseconds summed) of set-image's modules,
    imported from ``checkout`` as a set-image run imports them."""
    totals: dict[str, list[int]] = {name: [] for name in ("all", *_NAMED_IMPORTS)}
    for _ in range(runs):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {_SET_IMAGE_MODULES}"],
            env=env,
            cwd=checkout,
            check=True,
            capture_output=True,
            text=True,
        ).stderr
        seen = dict.fromkeys(totals, 0)
        for line in err.splitlines():
            parts = line.split("|")
            if len(parts) != 3 or not parts[1].strip().isdigit():
                continue
            name, cumulative = parts[2], int(parts[1])
            if not name.startswith("  "):  # a top-level import: part of the total
                seen["all"] += cumulative
            if name.strip() in _NAMED_IMPORTS:
                seen[name.strip()] += cumulative
        for key, value in seen.items():
            totals[key].append(value)
    med = {key: statistics.median(values) / 1000 for key, values in totals.items()}
    named = ", ".join(f"{name} {med[name]:.0f} ms" for name in _NAMED_IMPORTS)
    return f"{med['all']:.0f} ms in all, of which {named} (median of {runs})"


def _bytecode(env: dict[str, str]) -> str:
    """Whether PyYAML's modules have .pyc files (the agent image compiles its venv:
    its user cannot write there, so without them every run would compile PyYAML)."""
    probe = (
        "import importlib.util, os, yaml.reader as r; "
        "print(os.path.exists(importlib.util.cache_from_source(r.__file__)))"
    )
    present = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    ).stdout.strip()
    return f"PyYAML .pyc present: {present.lower()}"


def _checkout(work: Path) -> Path:
    """``pipeline/`` as a fresh clone has it: sources only, no ``__pycache__``."""
    checkout = work / "checkout"
    shutil.copytree(
        ROOT / "pipeline", checkout / "pipeline", ignore=shutil.ignore_patterns("__pycache__")
    )
    return checkout


def _check_imported_from(checkout: Path, env: dict[str, str]) -> None:
    """Refuse to measure when ``pipeline`` would not come from ``checkout``."""
    where = subprocess.run(
        [sys.executable, "-c", "import pipeline; print(pipeline.__file__)"],
        env=env,
        cwd=checkout,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not Path(where).is_relative_to(checkout):
        raise SystemExit(f"bench images: set-image would run {where}, not the checkout's copy")


# The standard modules any Python registry client with a command line imports:
# with the interpreter's own start-up, a floor no Python set-image can go under.
_STDLIB_FLOOR = "import argparse, base64, fcntl, json, socket"


def _set_image_figures(env: dict[str, str]) -> None:
    from tests.registry_fixture import OCI_MANIFEST, OciLayoutBuilder, run_registry

    if not (shutil.which("skopeo") and os.access("/usr/bin/docker-registry", os.X_OK)):
        print("   set-image vs skopeo: skipped (needs docker-registry and skopeo: make setup)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-images-") as tmp:
        work = Path(tmp)
        (work / "registry").mkdir()
        with run_registry(work / "registry") as server:
            builder = OciLayoutBuilder(work / "layout")
            for tag in ("v1", "v2"):
                builder.tag(tag, builder.image(f"bench {tag}\n".encode()), OCI_MANIFEST)
                server.push(builder.path, "cv/model-server", tag)
            project = work / "project"
            project.mkdir()
            shutil.copy(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
            (project / "Pulumi.staging.yaml").write_text(
                "config:\n  cv-platform:environment: staging\n  cv-platform:image:\n"
                f"    repository: {server.host}/cv/model-server\n"
                f"    digest: sha256:{'0' * 64}\n"
            )
            # The pipeline runs from a checkout, as on the agent (`-m` imports from the
            # working directory first); whether Python may write bytecode is set here,
            # not inherited from whoever runs the bench.
            checkout = _checkout(work)
            dropped = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONSAFEPATH")
            run_env = {
                **{k: v for k, v in env.items() if k not in dropped},
                "DOCKER_CONFIG": str(server.docker_config(work / "docker")),
            }
            _check_imported_from(checkout, run_env)
            cli = [sys.executable, "-m", "pipeline", "--project-dir", str(project), "set-image"]
            # Alternate tags so every run really resolves and rewrites the file.
            runs = [[*cli, "staging", ("v1", "v2")[i % 2]] for i in range(RUNS)]
            # Without bytecode for the checkout (PYTHONDONTWRITEBYTECODE, as the Jenkinsfile
            # once set it): every run compiles the pipeline's modules again.
            uncompiled = _medians(runs, {**run_env, "PYTHONDONTWRITEBYTECODE": "1"}, checkout)
            _run(runs[0], run_env, checkout)  # the first run of a build writes the .pyc
            set_image = _medians(runs, run_env, checkout)
            # Its imports alone, nothing run: what set-image pays before any work.
            imports = [sys.executable, "-c", f"import {_SET_IMAGE_MODULES}"]
            imported = _medians([imports] * RUNS, run_env, checkout)
            split = _import_split(run_env, checkout)
            dry_run = _medians([[*cli, "staging", "v1", "--dry-run"]] * RUNS, run_env, checkout)
            floor_script = [sys.executable, str(ROOT / "bench" / "set_image_floor.py"), server.host]
            least = _medians(
                [
                    [*floor_script, "cv/model-server", ("v1", "v2")[i % 2],
                     str(project / "Pulumi.staging.yaml")]
                    for i in range(RUNS)
                ],
                run_env,
            )  # fmt: skip
            ref = f"docker://{server.host}/cv/model-server:v1"
            creds = ["--creds", f"{server.user}:{server.password}", "--tls-verify=false"]
            skopeo = _medians([["skopeo", "inspect", *creds, ref]] * RUNS, run_env)
            skopeo_raw = _medians([["skopeo", "inspect", "--raw", *creds, ref]] * RUNS, run_env)
            # The floor under set-image: the interpreter, with the standard modules a
            # registry client needs, and with PyYAML.
            bare = _medians([[sys.executable, "-c", "pass"]] * RUNS, run_env)
            stdlib = _medians([[sys.executable, "-c", _STDLIB_FLOOR]] * RUNS, run_env)
            with_yaml = _medians([[sys.executable, "-c", "import yaml"]] * RUNS, run_env)
            from pipeline.images.client import RegistryClient
            from pipeline.images.refs import parse_ref

            client = RegistryClient(docker_config=work / "docker" / "config.json")
            image = parse_ref(f"{server.host}/cv/model-server:v1")
            client.resolve(image)  # first call answers the auth challenge
            resolves = []
            for _ in range(25):
                started = time.perf_counter()
                client.resolve(image)
                resolves.append(time.perf_counter() - started)
    print(f"   set-image staging TAG (resolve + locked write): {_shown(set_image)}")
    print(f"   set-image staging TAG --dry-run:                {_shown(dry_run)}")
    print(f"   set-image, no .pyc for the checkout:            {_shown(uncompiled)}")
    print(f"   skopeo inspect (same tag):                      {_shown(skopeo)}")
    print(f"   skopeo inspect --raw (same tag):                {_shown(skopeo_raw)}")
    print(
        f"   set-image / skopeo inspect: {set_image[0] / skopeo[0]:.2f}x wall, "
        f"{set_image[1] / skopeo[1]:.2f}x CPU (aim: within 1.5x wall)"
    )
    print(
        "   floor: "
        + ", ".join(
            f"{label} {figures[0] * 1000:.0f} ms ({figures[0] / skopeo[0]:.2f}x)"
            for label, figures in (
                ("python -c pass", bare),
                (f"python -c '{_STDLIB_FLOOR}'", stdlib),
                ("python -c 'import yaml'", with_yaml),
                ("the least set-image (bench/set_image_floor.py)", least),
            )
        )
    )
    print(
        f"   set-image's imports alone, nothing run:         {_shown(imported)} "
        f"({imported[0] / skopeo[0]:.2f}x skopeo)"
    )
    print(
        f"   in-process resolve (HEAD, warm session):        "
        f"{statistics.median(resolves) * 1000:.1f} ms (median of 25)"
    )
    print(f"   (medians of {RUNS} runs; every command is a fresh process)")
    print(f"   imports of a set-image run (-X importtime): {split}")
    print(f"   bytecode: {_bytecode(env)}")


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _help_figures(env)
    _set_image_figures(env)


if __name__ == "__main__":
    main()
