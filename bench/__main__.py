"""Run every benchmark module (bench/bench_*.py) and print its figures.

Figures are printed, never asserted: a noisy machine must not fail a build.
Run one with `python -m bench NAME` (e.g. `python -m bench render`).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))
    chosen = argv or names
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        print(
            f"bench: unknown benchmark(s) {', '.join(unknown)}; have: {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    for name in chosen:
        print(f"== {name}")
        started = time.perf_counter()
        importlib.import_module(f"bench.bench_{name}").main()
        print(f"   ({time.perf_counter() - started:.1f} s in all)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
