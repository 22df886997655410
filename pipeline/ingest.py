"""Readers for ``record ci`` / ``record deploy`` that take their facts from real sources.

Each reader is ``(args) -> list[Record]`` like the plain-flag readers in
``pipeline.commands.record``, and reads everything before the store is
opened, so a source that fails records nothing. Notes about what was read
(stages not counted, previews ignored, zone-less times) go to stderr.

* ``--junit FILE_OR_GLOB ...``: test counts (``pipeline.junit``); the test time
  is ``--test-seconds`` when given, else the reports' own time.
* ``--from-jenkins BUILD_URL``: stage times and the JUnit plugin's counts
  (``pipeline.jenkins``); with ``--junit`` too, the files' counts win.
* ``record deploy --from-pulumi --stack S``: every finished update in
  ``pulumi stack history`` (``pipeline.pulumi_cli``), keyed
  ``pulumi:<stack>:<version>`` so a re-run adds only what is new.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from pipeline.errors import UsageError
from pipeline.junit import TestCounts
from pipeline.records import CiRun, Record, parse_time

_SHA = re.compile(r"^[0-9a-fA-F]{7,64}$")
_COUNT_FLAGS: tuple[tuple[str, str], ...] = (
    ("passed", "--passed"),
    ("failed", "--failed"),
    ("errors", "--errors"),
    ("skipped", "--skipped"),
)


def note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def _refuse(args: argparse.Namespace, source: str, flags: Sequence[tuple[str, str]]) -> None:
    given = [flag for attr, flag in flags if getattr(args, attr, None) not in (None, False)]
    if given:
        raise UsageError(f"{source} supplies {', '.join(given)} itself; drop {' and '.join(given)}")


def _image(args: argparse.Namespace, source: str) -> tuple[str, str | None]:
    from pipeline.commands.record import image_and_digest

    if not args.image:
        # A run that failed before pushing has no image, but its times and tests
        # still count in T_C, T_T and P_T.
        note(f"record ci {source} without --image: the run is recorded with no image")
        return "", None
    return image_and_digest(args.image)


def _started(args: argparse.Namespace) -> datetime | None:
    from pipeline.commands.record import flag_time

    return None if args.started is None else flag_time("--started", args.started)


GitRunner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _git(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=10, check=False)


def commit_time(
    commit: str | None, repo: Path | None = None, runner: GitRunner = _git
) -> datetime | None:
    """The committer time of ``commit`` from the local git checkout, if it is there.

    CI runs in a checkout of the commit it builds; its time is what DORA's
    lead time starts from. Anything unavailable (no git, shallow clone, not a
    sha) gives None, never an error: the run is still worth recording.
    """
    if not commit or not _SHA.match(commit):
        return None
    argv = ["git"]
    if repo is not None:
        argv += ["-C", str(repo)]
    argv += ["show", "-s", "--format=%cI", commit]
    try:
        done = runner(argv)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        return parse_time(done.stdout.strip())
    except ValueError:
        return None


def _repo(args: argparse.Namespace) -> Path | None:
    return Path(args.project_dir) if getattr(args, "project_dir", None) else None


def _junit_counts(patterns: Sequence[str]) -> TestCounts:
    from pipeline import junit

    counts = junit.count(patterns)
    for warning in counts.warnings:
        note(warning)
    return counts


def _ci_run(
    args: argparse.Namespace,
    source: str,
    counts: TestCounts,
    *,
    started: datetime | None,
    build_seconds: float | None,
    test_seconds: float | None,
    key: str | None = None,
) -> CiRun:
    """The one CiRun every source makes: its times and counts, the rest from the flags."""
    image, digest = _image(args, source)
    return CiRun(
        image=image,
        digest=digest,
        commit=args.commit,
        commit_time=commit_time(args.commit, _repo(args)),
        started=started,
        build_seconds=build_seconds,
        test_seconds=test_seconds,
        passed=counts.passed,
        failed=counts.failed,
        errors=counts.errors,
        skipped=counts.skipped,
        scan_critical=args.scan_critical,
        scan_high=args.scan_high,
        source=source.removeprefix("--").removeprefix("from-"),
        key=key,
    )


def ci_run_from_junit(args: argparse.Namespace) -> list[Record]:
    """``record ci --image REF --junit FILE_OR_GLOB ... [--build-seconds N]``."""
    _refuse(args, "--junit", _COUNT_FLAGS)
    started = _started(args)
    counts = _junit_counts(args.junit)
    test_seconds = args.test_seconds
    if test_seconds is None:
        test_seconds = counts.time_seconds
        if test_seconds is not None:
            note(f"test time {test_seconds:.1f} s taken from the JUnit reports")
    return [
        _ci_run(
            args,
            "--junit",
            counts,
            started=started,
            build_seconds=args.build_seconds,
            test_seconds=test_seconds,
        )
    ]


def ci_run_from_jenkins(args: argparse.Namespace) -> list[Record]:
    """``record ci --image REF --from-jenkins BUILD_URL [--junit ...]``."""
    from pipeline import jenkins

    _refuse(
        args,
        "--from-jenkins",
        (
            ("build_seconds", "--build-seconds"),
            ("test_seconds", "--test-seconds"),
            ("started", "--started"),
        ),
    )
    # Counts come from the files when given, else from the build's test report.
    _refuse(args, "--junit" if args.junit else "--from-jenkins", _COUNT_FLAGS)
    # Local files first: a bad report fails before Jenkins is asked anything.
    file_counts = _junit_counts(args.junit) if args.junit else None
    stage_map = jenkins.StageMap.from_env()
    build = jenkins.client_from_env().read_build(args.from_jenkins, stage_map)
    for line in build.notes:
        note(line)
    if build.deploy_seconds is not None:
        note(
            f"deploy stages took {build.deploy_seconds:.1f} s; deployments are timed from "
            "their own records (record deploy --from-pulumi)"
        )
    return [
        _ci_run(
            args,
            "--from-jenkins",
            file_counts or build.tests or TestCounts(),
            started=build.started,
            build_seconds=build.build_seconds,
            test_seconds=build.test_seconds,
            key=f"jenkins:{build.url}",
        )
    ]


def deployments_from_pulumi(args: argparse.Namespace) -> list[Record]:
    """``record deploy --from-pulumi --stack S``: every finished update, each once."""
    from pipeline import pulumi_cli
    from pipeline.store import locate_project

    _refuse(
        args,
        "--from-pulumi",
        (
            ("result", "--result"),
            ("image", "--image"),
            ("started", "--started"),
            ("finished", "--finished"),
            ("commit", "--commit"),
        ),
    )
    project = locate_project(args.project_dir, args.store)
    if project is not None:
        project.existing_stack_file(args.stack)
    cli = pulumi_cli.PulumiCli(cwd=project.root if project is not None else None)
    history = pulumi_cli.parse_history(cli.history(args.stack))
    outputs = cli.outputs(args.stack) if history else {}
    result = pulumi_cli.deployments_from_history(args.stack, history, outputs)
    ignored = [
        (result.ignored_previews, "preview(s)"),
        (result.ignored_in_progress, "update(s) still in progress"),
        (result.ignored_other, "refresh/destroy/other operation(s)"),
    ]
    skipped = ", ".join(f"{n} {what}" for n, what in ignored if n)
    if skipped:
        note(f"not deployments, not recorded: {skipped}")
    if result.zone_less:
        note(f"{result.zone_less} update time(s) had no time zone: read as UTC")
    if not result.deployments:
        note(f"stack {args.stack} has no finished update to record")
    return list(result.deployments)
