#!/usr/bin/env python3
"""Stand-in for the Pulumi CLI in the stage-script tests (the real one cannot be installed here).

Logs each call (argv, and which of the variables pulumi reads are set) as one JSON
line to $STUB_LOG, then behaves as the real CLI does at the points the scripts
depend on:

- no backend (no PULUMI_BACKEND_URL and no login in ~/.pulumi/credentials.json) in
  a non-interactive session: "PULUMI_ACCESS_TOKEN must be set for login during
  non-interactive CLI sessions", exit 255, as pulumi 3.x does;
- a stack file with an encryptionsalt and no passphrase: the passphrase secrets
  provider's error, exit 255;
- `stack output NAME`: $STUB_SERVICE_URL; `up`: exit $STUB_PULUMI_UP_EXIT (default 0);
- `preview --json`: the recorded preview $STUB_PREVIEW_DIR/STACK.json; `config --json`: {}.
"""

import json
import os
import sys
from pathlib import Path

WATCHED = (
    "PULUMI_BACKEND_URL",
    "PULUMI_CONFIG_PASSPHRASE",
    "PULUMI_CONFIG_PASSPHRASE_FILE",
    "PULUMI_ACCESS_TOKEN",
    "KUBECONFIG",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def main(argv: list[str]) -> int:
    env = os.environ
    facts = {
        name: env[name] if name in ("PULUMI_BACKEND_URL", "KUBECONFIG") else True
        for name in WATCHED
        if name in env
    }
    with open(env["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "pulumi", "argv": argv, "env": facts}) + "\n")
    logged_in = (Path(env.get("HOME", "/nonexistent")) / ".pulumi" / "credentials.json").exists()
    if "PULUMI_BACKEND_URL" not in env and not logged_in:
        print(
            "error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI sessions",
            file=sys.stderr,
        )
        return 255
    stack = argv[argv.index("--stack") + 1] if "--stack" in argv else ""
    stack_file = Path(f"Pulumi.{stack}.yaml")
    encrypted = stack_file.is_file() and "\nencryptionsalt:" in "\n" + stack_file.read_text()
    if encrypted and not (
        "PULUMI_CONFIG_PASSPHRASE" in env or "PULUMI_CONFIG_PASSPHRASE_FILE" in env
    ):
        print(
            'error: constructing secrets manager of type "passphrase": unable to find either '
            "`PULUMI_CONFIG_PASSPHRASE` or `PULUMI_CONFIG_PASSPHRASE_FILE` when trying to access "
            "the Passphrase Secrets Provider; please ensure one of these environment variables is "
            "set to allow the operation to continue",
            file=sys.stderr,
        )
        return 255
    if argv[:2] == ["stack", "output"]:
        print(env.get("STUB_SERVICE_URL", ""))
        return 0
    if argv[:1] == ["up"]:
        return int(env.get("STUB_PULUMI_UP_EXIT", "0"))
    if argv[:1] == ["preview"] and "--json" in argv:
        print((Path(env["STUB_PREVIEW_DIR"]) / f"{stack}.json").read_text())
    if argv[:1] == ["config"] and "--json" in argv:
        print("{}")
    return 0


sys.exit(main(sys.argv[1:]))
