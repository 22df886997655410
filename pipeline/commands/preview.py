"""`preview`: what a change does to each stack, as a pull-request comment (Markdown on stdout).

Three sources, one comment:
- online (default): ``pulumi preview --json --diff --stack S`` per stack, with the policy pack;
- ``--preview-json FILE``: a saved output of that command (``--stack S`` names its stack);
- ``--offline [--base REF]``: render each stack at REF (default: the merge-base of HEAD and
  origin/main, else main) and at the working tree, and diff them.
The policy rules run over the resources in every mode and their violations are listed.
``--post-github OWNER/REPO#PR`` creates or updates the comment on that pull request.

Exit codes: 0 done; 1 when a preview reported errors or a mandatory rule is broken (the comment
is still printed and posted), or on bad input (one line, nothing printed or posted); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError, UsageError
from pipeline.preview_offline import last_line
from pipeline.project import Project, find_project
from pipeline.pulumi_cli import Completed

if TYPE_CHECKING:
    from pipeline.preview_comment import StackReport
    from pipeline.preview_json import PreviewResult
    from pipeline.preview_offline import StackDiff
    from policy.model import PolicyOutcome

PULUMI_TIMEOUT = 1800.0


# The thin adapter around the pulumi CLI: tests pass their own.
PulumiRunner = Callable[[Sequence[str], Path], Completed]


def run_pulumi(cmd: Sequence[str], cwd: Path) -> Completed:
    if shutil.which(cmd[0]) is None:
        raise PipelineError(
            "the pulumi CLI is not installed or not on PATH: install it, or run "
            "`preview --offline` for a preview that needs no CLI or credentials"
        )
    try:
        done = subprocess.run(
            list(cmd), cwd=cwd, capture_output=True, text=True, timeout=PULUMI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise PipelineError(
            f"`{' '.join(cmd[:3])}` timed out after {PULUMI_TIMEOUT:.0f} s"
        ) from None
    return Completed(done.returncode, done.stdout, done.stderr)


# --- online ----------------------------------------------------------------------------------


def pulumi_preview_command(stack: str, project: Project) -> list[str]:
    cmd = ["pulumi", "preview", "--json", "--diff", "--non-interactive", "--stack", stack]
    if (project.root / "policy" / "PulumiPolicy.yaml").is_file():
        cmd += ["--policy-pack", str(project.root / "policy")]
    return cmd


def _online(stack: str, project: Project, runner: PulumiRunner) -> tuple[PreviewResult, list[str]]:
    from pipeline.preview_json import Diagnostic, PreviewFormatError, loads_preview

    done = runner(pulumi_preview_command(stack, project), project.root)
    try:
        result = loads_preview(done.stdout, f"`pulumi preview --stack {stack}` output")
    except PreviewFormatError:
        if done.returncode != 0:
            raise PipelineError(
                f"pulumi preview --stack {stack} failed (exit {done.returncode}): "
                f"{last_line(done.stderr)}"
            ) from None
        raise
    if done.returncode != 0 and not result.errors:
        # Policy failures and engine errors end the run without an error diagnostic.
        extra = Diagnostic(
            "error",
            f"pulumi preview exited {done.returncode}: {last_line(done.stderr or done.stdout)}",
        )
        result = replace(result, diagnostics=(*result.diagnostics, extra))
    return result, _secret_config_values(stack, project, runner)


def _secret_config_values(stack: str, project: Project, runner: PulumiRunner) -> list[str]:
    """Plaintext of the stack's secret config, only to scrub it from the comment."""
    cmd = ["pulumi", "config", "--show-secrets", "--json", "--stack", stack]
    try:
        done = runner(cmd, project.root)
        data = json.loads(done.stdout) if done.returncode == 0 else {}
    except (PipelineError, ValueError):
        return []
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

    if isinstance(data, dict):
        for entry in data.values():
            if isinstance(entry, dict) and entry.get("secret"):
                leaves(entry.get("value"))
                leaves(entry.get("objectValue"))
    return values


def _online_policy(stack: str, result: PreviewResult) -> PolicyOutcome:
    from policy.adapter import CheckedResource, evaluate

    resources = [
        CheckedResource(s.type, s.name, s.new_inputs, s.protect, s.parent_types)
        for s in result.steps
        if s.logical
        and s.op not in ("delete", "discard", "read")
        and s.new_inputs is not None
        and not s.type.startswith(("pulumi:providers:", "pulumi:pulumi:"))
    ]
    return evaluate(resources, stack)


def _stack_in(result: PreviewResult) -> str:
    from pipeline.preview_json import Urn

    for step in result.steps:
        stack = str(Urn.parse(step.urn).stack)
        if stack:
            return stack
    return ""


# --- offline ---------------------------------------------------------------------------------


def _offline_report(diff: StackDiff) -> StackReport:
    from pipeline.preview_comment import ResourceChange, StackReport
    from pipeline.preview_offline import Snapshot, is_kubernetes_object, kubernetes_type
    from policy.adapter import CheckedResource, evaluate

    def checked(snapshot: Snapshot) -> list[CheckedResource]:
        out = []
        for file_name, manifest in sorted(snapshot.manifests.items()):
            meta = manifest.get("metadata") or {}
            name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            out.append(
                CheckedResource(kubernetes_type(manifest), name, manifest, location=file_name)
            )
        for res in snapshot.resources:
            if not is_kubernetes_object(res) and not str(res["type"]).startswith("pulumi:"):
                # The render records `protect`, so the protected-volume rule decides offline;
                # a render without it (an older tool) gets "not checked", never a guess.
                protect = res.get("protect")
                out.append(
                    CheckedResource(
                        res["type"],
                        res["name"],
                        res.get("inputs") or {},
                        protect if isinstance(protect, bool) else None,
                    )
                )
        return out

    head_policy = evaluate(checked(diff.head), diff.stack)
    base_policy = evaluate(checked(diff.base), diff.stack)
    before = {replace(v, location="") for v in base_policy.violations}
    new = frozenset(v for v in head_policy.violations if replace(v, location="") not in before)
    changes = tuple(
        ResourceChange(c.op, c.type, c.name, c.paths, c.detail, c.detail_lang) for c in diff.changes
    )
    return StackReport(
        stack=diff.stack,
        source=f"offline render: {diff.base_label} → working tree "
        "(operations estimated from the manifests; `pulumi preview` decides)",
        counts=diff.counts,
        changes=changes,
        policy=head_policy,
        new_violations=new,
        notes=diff.notes,
    )


# --- the command -----------------------------------------------------------------------------


def _check_args(args: argparse.Namespace) -> None:
    if args.base and not args.offline:
        raise UsageError("--base REF only applies with --offline")
    if args.offline and args.preview_json:
        raise UsageError("--offline and --preview-json exclude each other")
    if args.preview_json and len(args.stack) > 1:
        raise UsageError("--preview-json holds one stack's preview: give at most one --stack")


def _read_preview_file(path: str) -> str:
    file = Path(path)
    if not file.is_file():
        what = "not a file" if file.exists() else "no such file"
        raise PipelineError(f"--preview-json {path}: {what}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"--preview-json {path}: not UTF-8 text") from None


def build(args: argparse.Namespace, runner: PulumiRunner = run_pulumi) -> tuple[str, list[str]]:
    """The comment and the reasons to exit non-zero (errors, mandatory violations)."""
    from pipeline.preview_comment import build_comment, report_from_preview
    from pipeline.preview_json import loads_preview

    _check_args(args)
    project = find_project(args.project_dir)
    secret_values: list[str] = []
    reports: list[StackReport] = []
    if args.preview_json:
        result = loads_preview(_read_preview_file(args.preview_json), args.preview_json)
        in_urns = _stack_in(result)
        stack = args.stack[0] if args.stack else (in_urns or "stack")
        project.stack_file(stack)  # validates the name
        report = report_from_preview(
            stack,
            result,
            _online_policy(stack, result),
            source=f"pulumi preview, saved in {Path(args.preview_json).name}",
        )
        if in_urns and in_urns != stack:
            # Shown as asked (the stack-specific rules run for `stack`), but never silently.
            note = f"The saved preview's resources belong to stack `{in_urns}`, shown as `{stack}`."
            report = replace(report, notes=(note, *report.notes))
        reports.append(report)
    else:
        stacks = list(dict.fromkeys(args.stack)) or project.stacks()
        if not stacks:
            raise PipelineError(f"no Pulumi.<stack>.yaml in {project.root}: nothing to preview")
        for stack in stacks:
            project.existing_stack_file(stack)
        if args.offline:
            from pipeline.preview_offline import offline_preview
            from pipeline.stackconfig import SECRET_PLACEHOLDER

            # Renders hold no secret (the render refuses a leak); the stand-in is scrubbed too.
            secret_values.append(SECRET_PLACEHOLDER)
            reports = [_offline_report(d) for d in offline_preview(project.root, stacks, args.base)]
        else:
            for stack in stacks:
                result, secrets = _online(stack, project, runner)
                secret_values += secrets
                reports.append(report_from_preview(stack, result, _online_policy(stack, result)))
    rerun = "python -m pipeline preview" + (" --offline" if args.offline else "")
    if args.base:
        rerun += f" --base {args.base}"
    body = build_comment(reports, secret_values=secret_values, rerun_hint=rerun)
    problems = []
    for report in reports:
        if report.errors:
            problems.append(f"{report.stack}: {len(report.errors)} preview error(s)")
        if report.policy is not None and report.policy.mandatory:
            problems.append(
                f"{report.stack}: {len(report.policy.mandatory)} mandatory policy violation(s)"
            )
    return body, problems


def _post(target: str, body: str) -> str:
    from pipeline.github import GitHubClient, PullRequest, api_url_from_env, token_from_env
    from pipeline.preview_comment import MARKER

    pr = PullRequest.parse(target)
    client = GitHubClient(token_from_env(), api_url_from_env())
    posted = client.upsert_comment(pr, body, MARKER)
    return f"preview comment {posted.action} on {pr}" + (f": {posted.url}" if posted.url else "")


def run(args: argparse.Namespace, runner: PulumiRunner = run_pulumi) -> int:
    if args.post_github:
        # Fail on a bad target or a missing token before any (slow) preview runs.
        from pipeline.github import PullRequest, api_url_from_env, token_from_env

        PullRequest.parse(args.post_github)
        token_from_env()
        api_url_from_env()
    body, problems = build(args, runner)
    status = _post(args.post_github, body) if args.post_github else ""
    sys.stdout.write(body)
    sys.stdout.flush()
    if status:
        print(status, file=sys.stderr)
    if problems:
        print(f"python -m pipeline preview: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0
