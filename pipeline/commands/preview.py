"""``preview``: what a change does to each stack, as a pull-request comment (Markdown on stdout).

Three sources, one comment:
- online (default): ``pulumi preview --json --diff --stack S`` per stack, with the policy pack
  (``pipeline.preview.online``);
- ``--preview-json FILE``: a saved output of that command (``--stack S`` names its stack);
- ``--offline [--base REF]``: render each stack at REF (default: the merge-base of HEAD and
  origin/main, else main) and at the working tree, and diff them (``pipeline.preview.offline``).
The policy rules run over the resources in every mode and their violations are listed.
``--post-github OWNER/REPO#PR`` creates or updates the comment on that pull request.

Exit codes: 0 done; 1 when a preview reported errors or a mandatory rule is broken (the comment
is still printed and posted), or on bad input (one line, nothing printed or posted); 2 usage.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters
    from pipeline.preview.report import StackReport
    from pipeline.project import Project


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print one Markdown comment saying what the change does to each stack: counts, "
        "changed resources and why, replaces and deletes in prod first, diagnostics, policy "
        "violations and property-level details, secrets always [secret]. Online it runs "
        "`pulumi preview --json` with the policy pack; --offline diffs two renders and needs "
        "no Pulumi CLI or credentials. Exit 1 when a preview failed or a mandatory rule is "
        "broken, after the comment is printed (and posted)."
    )
    parser.epilog = examples(
        "preview --offline --base origin/main",
        "preview --stack staging --stack prod --post-github example/cv-platform#42",
        "preview --preview-json staging.json --stack staging",
    )
    parser.add_argument(
        "--stack",
        action="append",
        default=[],
        metavar="S",
        help="preview this stack; repeat for more (default: every Pulumi.<stack>.yaml)",
    )
    parser.add_argument(
        "--preview-json",
        metavar="FILE",
        help="read a saved `pulumi preview --json` output instead of running pulumi",
    )
    parser.add_argument(
        "--offline", action="store_true", help="diff offline renders instead of `pulumi preview`"
    )
    parser.add_argument(
        "--base",
        metavar="REF",
        help="git ref to diff against (with --offline; default: the merge-base of HEAD and "
        "origin/main, else main)",
    )
    parser.add_argument(
        "--post-github",
        metavar="OWNER/REPO#PR",
        help="create or update the comment on that pull request (token from GITHUB_TOKEN)",
    )


def _check_args(args: argparse.Namespace) -> None:
    from pipeline.errors import UsageError

    if args.base and not args.offline:
        raise UsageError("--base REF only applies with --offline")
    if args.offline and args.preview_json:
        raise UsageError("--offline and --preview-json exclude each other")
    if args.preview_json and len(args.stack) > 1:
        raise UsageError("--preview-json holds one stack's preview: give at most one --stack")


def _read_preview_file(path: str) -> str:
    from pathlib import Path

    from pipeline.errors import PipelineError

    file = Path(path)
    if not file.is_file():
        what = "not a file" if file.exists() else "no such file"
        raise PipelineError(f"--preview-json {path}: {what}")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PipelineError(f"--preview-json {path}: not UTF-8 text") from None


def _saved(args: argparse.Namespace, project: Project) -> StackReport:
    """The report of a saved ``pulumi preview --json`` output (``--preview-json``)."""
    from dataclasses import replace
    from pathlib import Path

    from pipeline.preview.pulumi_json import loads_preview
    from pipeline.preview.report import preview_policy, report_from_preview, stack_in

    result = loads_preview(_read_preview_file(args.preview_json), args.preview_json)
    in_urns = stack_in(result)
    stack = args.stack[0] if args.stack else (in_urns or "stack")
    project.stack_file(stack)  # validates the name
    report = report_from_preview(
        stack,
        result,
        preview_policy(stack, result),
        source=f"pulumi preview, saved in {Path(args.preview_json).name}",
    )
    if in_urns and in_urns != stack:
        # Shown as asked (the stack-specific rules run for `stack`), but never silently.
        note = f"The saved preview's resources belong to stack `{in_urns}`, shown as `{stack}`."
        report = replace(report, notes=(note, *report.notes))
    return report


def build(args: argparse.Namespace, adapters: Adapters) -> tuple[str, list[str]]:
    """The comment and the reasons to exit non-zero (errors, mandatory violations)."""
    from pipeline.errors import PipelineError
    from pipeline.preview.comment import build_comment
    from pipeline.project import find_project

    _check_args(args)
    project = find_project(args.project_dir)
    secret_values: list[str] = []
    if args.preview_json:
        reports = [_saved(args, project)]
    else:
        stacks = list(dict.fromkeys(args.stack)) or project.stacks()
        if not stacks:
            raise PipelineError(f"no Pulumi.<stack>.yaml in {project.root}: nothing to preview")
        for stack in stacks:
            project.existing_stack_file(stack)
        if args.offline:
            from pipeline.preview.offline import offline_preview
            from pipeline.preview.report import report_from_diff
            from pipeline.secrets import SECRET_STAND_IN

            # Renders hold no secret (the render refuses a leak); the stand-in is scrubbed too.
            secret_values.append(SECRET_STAND_IN)
            diffs = offline_preview(
                project.root, stacks, args.base, runner=adapters.run, git=adapters.run
            )
            reports = [report_from_diff(d) for d in diffs]
        else:
            from pipeline.io.pulumi import PulumiCli
            from pipeline.preview.online import preview_stack, secret_config_values
            from pipeline.preview.report import preview_policy, report_from_preview

            cli = PulumiCli(cwd=project.root, runner=adapters.run)
            reports = []
            for stack in stacks:
                result = preview_stack(cli, stack, project.root)
                secret_values += secret_config_values(cli, stack)
                reports.append(report_from_preview(stack, result, preview_policy(stack, result)))
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


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    pr = None
    if args.post_github:
        from pipeline.preview.github import PullRequest, api_url_from_env, token_from_env

        # Fail on a bad target or a missing token before any (slow) preview runs.
        pr = PullRequest.parse(args.post_github)
        token_from_env()
        api_url_from_env()
    body, problems = build(args, adapters)
    status = ""
    if pr is not None:
        from pipeline.preview.comment import MARKER

        posted = adapters.github().upsert_comment(pr, body, MARKER)
        status = f"preview comment {posted.action} on {pr}" + (
            f": {posted.url}" if posted.url else ""
        )
    sys.stdout.write(body)
    sys.stdout.flush()
    if status:
        print(status, file=sys.stderr)
    if problems:
        print(f"python -m pipeline preview: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0
