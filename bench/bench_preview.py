"""Preview: parse + comment for large `pulumi preview --json` documents; offline diff cost.

Prints figures, asserts nothing. The offline part renders the project's stacks at HEAD and at
the working tree (python -m bench preview), which is what a pull request's offline preview costs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pipeline.preview.comment import build_comment
from pipeline.preview.pulumi_json import loads_preview
from pipeline.preview.report import report_from_preview
from tests.pipeline.previewkit import huge_preview

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    for resources, props in ((100, 10), (1000, 10), (3000, 20)):
        text = json.dumps(huge_preview(resources, props, width=24))
        t0 = time.perf_counter()
        result = loads_preview(text)
        t1 = time.perf_counter()
        body = build_comment([report_from_preview("prod", result)])
        t2 = time.perf_counter()
        print(
            f"   {resources:5d} resources x {props:2d} props ({len(text) / 1e6:5.1f} MB JSON): "
            f"parse {1000 * (t1 - t0):7.1f} ms, comment {1000 * (t2 - t1):7.1f} ms, "
            f"{len(body):,} chars{' (shortened)' if 'Shortened' in body else ''}"
        )
    if (ROOT / ".git").exists() and (ROOT / "__main__.py").is_file():
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pipeline",
                "--project-dir",
                str(ROOT),
                "preview",
                "--offline",
                "--base",
                "HEAD",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        elapsed = time.perf_counter() - t0
        stacks = done.stdout.count("\n### ")
        print(
            f"   offline preview HEAD -> working tree, {stacks} stacks: {elapsed:.1f} s "
            f"(exit {done.returncode})"
        )
