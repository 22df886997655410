#!/usr/bin/env python3
"""Stand-in for BuildKit's buildctl in the stage-script tests (no BuildKit daemon here).

`buildctl --addr ADDR build ... --output type=oci,dest=PATH,name=NAME` writes, at
PATH, an OCI archive (a tar of an OCI image layout, as BuildKit writes one) of the
layout in $STUB_OCI_LAYOUT. `--opt target=card --output type=local,dest=DIR` writes
what that stage holds, DIR/model-card.json: the file $STUB_MODEL_CARD names, else a
valid card. Every call is logged to $STUB_LOG. Exit 1 without --addr, as buildctl
cannot reach a daemon then, and for a target model/Dockerfile does not have.
"""

import json
import os
import shutil
import sys
import tarfile
from pathlib import Path

CARD = {
    "model": {"name": "digits", "version": "1.0.0+0123456789ab"},
    "metrics": {"accuracy": 0.9711},
    "signature": {
        "inputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 64]}}]',
        "outputs": '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 10]}}]',
    },
}
TARGETS = {"train", "card", "test", "deps", "serve"}


def main(argv: list[str]) -> int:
    with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "buildctl", "argv": argv, "env": {}}) + "\n")
    if "--addr" not in argv or not argv[argv.index("--addr") + 1]:
        print("error: no buildkitd address", file=sys.stderr)
        return 1
    opts = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "--opt")
    target = opts.get("target")
    if target is not None and target not in TARGETS:
        print(
            f'error: failed to solve: target stage "{target}" could not be found', file=sys.stderr
        )
        return 1
    output = dict(part.split("=", 1) for part in argv[argv.index("--output") + 1].split(","))
    if output["type"] == "local":
        dest = Path(output["dest"])
        dest.mkdir(parents=True, exist_ok=True)
        given = os.environ.get("STUB_MODEL_CARD")
        if given:
            shutil.copyfile(given, dest / "model-card.json")
        else:
            (dest / "model-card.json").write_text(json.dumps(CARD, indent=2) + "\n")
        return 0
    layout = Path(os.environ["STUB_OCI_LAYOUT"])
    with tarfile.open(output["dest"], "w") as archive:
        for path in sorted(layout.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return 0


sys.exit(main(sys.argv[1:]))
