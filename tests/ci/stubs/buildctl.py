#!/usr/bin/env python3
"""Stand-in for BuildKit's buildctl in the stage-script tests (no BuildKit daemon here).

`buildctl --addr ADDR build ... --output type=oci,dest=PATH,name=NAME` writes, at
PATH, an OCI archive (a tar of an OCI image layout, as BuildKit writes one) of the
layout in $STUB_OCI_LAYOUT, and logs the call to $STUB_LOG. Exit 1 without --addr,
as buildctl cannot reach a daemon then.
"""

import json
import os
import sys
import tarfile
from pathlib import Path


def main(argv: list[str]) -> int:
    with open(os.environ["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "buildctl", "argv": argv, "env": {}}) + "\n")
    if "--addr" not in argv or not argv[argv.index("--addr") + 1]:
        print("error: no buildkitd address", file=sys.stderr)
        return 1
    output = dict(part.split("=", 1) for part in argv[argv.index("--output") + 1].split(","))
    layout = Path(os.environ["STUB_OCI_LAYOUT"])
    with tarfile.open(output["dest"], "w") as archive:
        for path in sorted(layout.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(layout)), recursive=False)
    return 0


sys.exit(main(sys.argv[1:]))
