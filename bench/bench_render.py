"""Render time of each stack beside the floor: importing the SDKs it uses.

Both are measured as fresh processes (what a user or CI pays), median of a
few runs. Aim: a render no slower than 1.5 times the import floor.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
FLOOR = "import pulumi, pulumi_kubernetes, pulumi_docker"


def _time(cmd: list[str]) -> float:
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    floor = _time([sys.executable, "-c", FLOOR])
    print(f"   import floor ({FLOOR}): {floor:.2f} s (median of {RUNS})")
    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        for stack in stacks:
            out = Path(tmp) / stack
            took = _time([sys.executable, "-m", "pipeline", "render", stack, "--out", str(out)])
            print(
                f"   render {stack}: {took:.2f} s = {took / floor:.2f} x floor "
                f"(aim <= 1.50 x), {len(list(out.glob('*.yaml')))} manifests"
            )
