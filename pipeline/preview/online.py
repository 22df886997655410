"""Online preview: ``pulumi preview --json --diff`` per stack, with the policy pack.

The Pulumi CLI is run through ``pipeline.io.pulumi``; a preview that failed still
prints JSON whose diagnostics say why, and a failure without a diagnostic (a policy
violation, an engine error) gets one from the exit status. The stack's secret config
is read only to scrub its plaintext from the comment.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.io.process import error_line
from pipeline.io.pulumi import PulumiCli
from pipeline.preview.pulumi_json import (
    Diagnostic,
    PreviewFormatError,
    PreviewResult,
    loads_preview,
)


def policy_pack(project_root: Path) -> Path | None:
    """The project's policy pack, when it has one (``policy/PulumiPolicy.yaml``)."""
    pack = project_root / "policy"
    return pack if (pack / "PulumiPolicy.yaml").is_file() else None


def preview_stack(cli: PulumiCli, stack: str, project_root: Path) -> PreviewResult:
    """One stack's preview, parsed; refuses output that is not a preview."""
    done = cli.preview(stack, policy_pack(project_root))
    try:
        result = loads_preview(done.stdout, f"`pulumi preview --stack {stack}` output")
    except PreviewFormatError:
        if done.returncode != 0:
            raise PipelineError(
                f"pulumi preview --stack {stack} failed (exit {done.returncode}): "
                f"{error_line(done.stderr) or 'no output'}"
            ) from None
        raise
    if done.returncode != 0 and not result.errors:
        # Policy failures and engine errors end the run without an error diagnostic.
        why = error_line(done.stderr or done.stdout) or "no output"
        extra = Diagnostic("error", f"pulumi preview exited {done.returncode}: {why}")
        result = replace(result, diagnostics=(*result.diagnostics, extra))
    return result


def secret_config_values(cli: PulumiCli, stack: str) -> list[str]:
    """Plaintext of the stack's secret config, only to scrub it from the comment."""
    values: list[str] = []

    def leaves(value: object) -> None:
        # A structured secret (`objectValue`) is scrubbed field by field as well as whole.
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                leaves(item)
        elif isinstance(value, list):
            for item in value:
                leaves(item)
        elif value is not None:
            values.append(json.dumps(value))

    for entry in cli.secret_config(stack).values():
        if isinstance(entry, dict) and entry.get("secret"):
            leaves(entry.get("value"))
            leaves(entry.get("objectValue"))
    return values


__all__ = ["policy_pack", "preview_stack", "secret_config_values"]
