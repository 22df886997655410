"""Render time of each stack beside its floor: importing the SDK modules it uses.

The floor is a fresh process that imports exactly the pulumi, pulumi_kubernetes
and pulumi_docker modules a render of that stack ends up loading (the providers
load their resource modules lazily, so importing only the top packages would
understate it). Both are fresh processes, median of a few runs, run in turn so
they share the machine's load; CPU time (user + system) is printed beside the
wall time because the machine may be shared.
Aim: a render no slower than 1.5 times the floor.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
SDK_PREFIXES = ("pulumi", "pulumi_kubernetes", "pulumi_docker")

_LIST_MODULES = """
import json, sys
from pathlib import Path
from pipeline.project import find_project
from pipeline.render.stack import render
render(find_project(), sys.argv[1])
prefixes = tuple(json.loads(sys.argv[2]))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in prefixes)))
"""


def _run(cmd: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def _sdk_modules(stack: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES, stack, json.dumps(SDK_PREFIXES)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    modules: list[str] = json.loads(out.strip().splitlines()[-1])
    return modules


def main() -> None:
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        for stack in stacks:
            modules = _sdk_modules(stack)
            out = Path(tmp) / stack
            floors, renders = [], []
            for _ in range(RUNS):
                floors.append(_run([sys.executable, "-c", "import " + ", ".join(modules)]))
                renders.append(
                    _run([sys.executable, "-m", "pipeline", "render", stack, "--out", str(out)])
                )
            (floor, floor_cpu), (took, took_cpu) = _medians(floors), _medians(renders)
            print(
                f"   {stack}: render {took:.2f} s (CPU {took_cpu:.2f} s); floor (import of the "
                f"{len(modules)} SDK modules it loads) {floor:.2f} s (CPU {floor_cpu:.2f} s); "
                f"ratio {took / floor:.2f}, CPU {took_cpu / floor_cpu:.2f} (aim <= 1.50); "
                f"{len(list(out.glob('*.yaml')))} manifests (median of {RUNS} runs each)"
            )
