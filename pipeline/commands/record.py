"""``record deploy`` and ``record ci``: append what happened to the record store.

The flags choose a source: plain figures, JUnit reports (``--junit``), a Jenkins
build (``--from-jenkins``) or ``pulumi stack history`` (``--from-pulumi``). The
command checks the flags (a source that supplies a figure refuses the flag for
it), reads everything through ``pipeline.records.sources`` before the store is
opened, prints the notes the sources return, and appends the records in one go,
so a source that fails records nothing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pipeline.commands.options import ISO, add_command, count, examples, seconds

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from datetime import datetime

    from pipeline.commands.adapters import Adapters
    from pipeline.records.model import Record
    from pipeline.records.sources.ci import CiFacts

_COUNT_FLAGS: tuple[tuple[str, str], ...] = (
    ("passed", "--passed"),
    ("failed", "--failed"),
    ("errors", "--errors"),
    ("skipped", "--skipped"),
)


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Append a finished deployment or CI run to the record store: the evidence promote "
        "gates on and metrics measure. A record with a source key (a Jenkins build, a "
        "Pulumi update) is stored once, however often it is recorded."
    )
    parser.epilog = examples(
        "record deploy --stack staging --result succeeded --started 2026-03-02T09:00:00Z "
        "--finished 2026-03-02T09:04:30Z",
        "record ci --junit 'build/junit/*.xml' --build-seconds 312 --image REPO:TAG@DIGEST",
    )
    kinds = parser.add_subparsers(dest="record_kind", metavar="KIND", required=True)
    summary = "record a finished deployment (or read them from `pulumi stack history`)"
    _register_deploy(add_command(kinds, "deploy", summary))
    summary = "record a CI run (build/test times, test counts, scan counts)"
    _register_ci(add_command(kinds, "ci", summary))


def _register_deploy(d: argparse.ArgumentParser) -> None:
    d.description = (
        "Record one finished `pulumi up` of --stack, or with --from-pulumi every finished "
        "update in `pulumi stack history` (each once: re-running adds only new ones). "
        "Without --image, the image is the one Pulumi.STACK.yaml pins."
    )
    d.epilog = examples(
        "record deploy --stack staging --result succeeded --started 2026-03-02T09:00:00Z "
        "--finished 2026-03-02T09:04:30Z --commit 9f3c2ab",
        "record deploy --from-pulumi --stack prod",
    )
    d.add_argument("--stack", required=True, metavar="S", help="the stack deployed")
    d.add_argument("--from-pulumi", action="store_true", help="read updates from the Pulumi CLI")
    d.add_argument("--result", choices=("succeeded", "failed"), help="how the deployment ended")
    d.add_argument(
        "--image",
        metavar="REF",
        help="the image deployed (repo[:tag]@digest; default: the one Pulumi.STACK.yaml pins)",
    )
    d.add_argument("--started", metavar="ISO", help=f"when it started ({ISO})")
    d.add_argument("--finished", metavar="ISO", help=f"when it finished ({ISO})")
    d.add_argument("--commit", metavar="SHA", help="the git commit deployed (for lead time)")


def _register_ci(c: argparse.ArgumentParser) -> None:
    c.description = (
        "Record one CI run: build and test times, test counts and scan counts, given as "
        "flags, counted from JUnit reports (--junit), or read from a Jenkins build "
        "(--from-jenkins; credentials from JENKINS_USER and JENKINS_TOKEN)."
    )
    c.epilog = examples(
        "record ci --image REPO:TAG@DIGEST --build-seconds 312 --test-seconds 88 --passed 212",
        "record ci --junit 'build/junit/*.xml' --build-seconds 312 --image REPO:TAG@DIGEST "
        "--commit 9f3c2ab",
        "record ci --from-jenkins https://jenkins.example.internal/job/cv-platform/job/main/42/",
    )
    c.add_argument(
        "--image",
        metavar="REF",
        help="the image built (repo[:tag]@digest); required unless --junit or --from-jenkins",
    )
    c.add_argument("--build-seconds", type=seconds, metavar="N", help="build time in seconds")
    c.add_argument(
        "--test-seconds",
        type=seconds,
        metavar="N",
        help="test time in seconds (with --junit, default: the reports' time)",
    )
    for flag, words in (
        ("passed", "tests that passed"),
        ("failed", "tests that failed"),
        ("errors", "tests that errored"),
        ("skipped", "tests skipped"),
    ):
        c.add_argument(f"--{flag}", type=count, metavar="N", help=words)
    for severity in ("critical", "high"):
        c.add_argument(
            f"--scan-{severity}",
            type=count,
            metavar="N",
            help=f"{severity} findings of the image's vulnerability scan",
        )
    c.add_argument(
        "--commit",
        metavar="SHA",
        help="the git commit built (its commit time is read from the local checkout)",
    )
    c.add_argument("--started", metavar="ISO", help=f"when the run started ({ISO})")
    c.add_argument(
        "--junit",
        action="extend",
        nargs="+",
        default=[],
        metavar="FILE_OR_GLOB",
        help="JUnit XML report(s) or quoted globs ('reports/**/*.xml') to count tests from; "
        "several may follow one --junit (a glob the shell expanded), or repeat it",
    )
    c.add_argument(
        "--from-jenkins",
        metavar="BUILD_URL",
        help="read stage times and test counts from a Jenkins build "
        "(credentials from JENKINS_USER and JENKINS_TOKEN)",
    )


# -- flags -------------------------------------------------------------------------


def note(text: str) -> None:
    from pipeline.errors import one_line

    print(f"note: {one_line(text)}", file=sys.stderr)


def _require(args: argparse.Namespace, kind: str, flags: Sequence[str]) -> None:
    from pipeline.errors import UsageError

    for flag in flags:
        if getattr(args, flag.removeprefix("--").replace("-", "_"), None) is None:
            raise UsageError(f"record {kind}: {flag} is required")


def _refuse(args: argparse.Namespace, source: str, flags: Sequence[tuple[str, str]]) -> None:
    from pipeline.errors import UsageError

    given = [flag for attr, flag in flags if getattr(args, attr, None) not in (None, False)]
    if given:
        raise UsageError(f"{source} supplies {', '.join(given)} itself; drop {' and '.join(given)}")


def flag_time(flag: str, text: str) -> datetime:
    """An ISO 8601 flag value as aware UTC; one without a zone is read as UTC, and said."""
    from pipeline.errors import UsageError
    from pipeline.records.model import read_time, time_problem, zone_note

    try:
        at, zone_less = read_time(text)
    except ValueError as exc:
        raise UsageError(time_problem(flag, text, exc)) from None
    if zone_less:
        note(zone_note(f"{flag} {text}"))
    return at


def image_and_digest(text: str) -> tuple[str, str | None]:
    """The normalised reference and its digest (None when REF has only a tag)."""
    from pipeline.images.refs import parse_ref

    ref = parse_ref(text)
    return str(ref), ref.digest


def _started(args: argparse.Namespace) -> datetime | None:
    return None if args.started is None else flag_time("--started", args.started)


def _ci_facts(
    args: argparse.Namespace, source: str, adapters: Adapters
) -> tuple[CiFacts, list[str]]:
    """What the flags say of a CI run read from ``source`` (the commit time from git),
    and the note to print about them."""
    from pipeline.records.sources.ci import CiFacts
    from pipeline.records.sources.git import commit_time

    notes = []
    if args.image:
        image, digest = image_and_digest(args.image)
    else:
        # A run that failed before pushing has no image, but its times and tests
        # still count in T_C, T_T and P_T.
        notes.append(f"record ci {source} without --image: the run is recorded with no image")
        image, digest = "", None
    from pathlib import Path

    repo = Path(args.project_dir) if args.project_dir else None
    facts = CiFacts(
        image=image,
        digest=digest,
        commit=args.commit,
        commit_time=commit_time(args.commit, repo, adapters.run),
        scan_critical=args.scan_critical,
        scan_high=args.scan_high,
    )
    return facts, notes


# -- the readers, one per source -------------------------------------------------------


def _deployment_from_flags(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record deploy --stack S --result R [--image REF] --started T --finished T``."""
    from pipeline.errors import UsageError
    from pipeline.project import locate_project
    from pipeline.records.model import Deployment
    from pipeline.stacks.stackfile import read_image

    _require(args, "deploy", ("--result", "--started", "--finished"))
    started = flag_time("--started", args.started)
    finished = flag_time("--finished", args.finished)
    if finished < started:
        raise UsageError(f"--finished {args.finished} is before --started {args.started}")
    text = args.image
    if text is None:
        # The image Pulumi.STACK.yaml pins: what `pulumi up` for that stack deployed.
        project = locate_project(args.project_dir, args.store)
        if project is None:
            raise UsageError("record deploy: --image is required outside a Pulumi project")
        setting = read_image(project.existing_stack_file(args.stack))
        if not setting.repository or not (setting.tag or setting.digest):
            raise UsageError(
                f"record deploy: {project.stack_file(args.stack).name} pins no image "
                "(cv-platform:image); give --image"
            )
        text = str(setting)
    image, digest = image_and_digest(text)
    return [Deployment(args.stack, args.result, image, digest, started, finished, args.commit)]


def _deployments_from_pulumi(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record deploy --from-pulumi --stack S``: every finished update, each once."""
    from pipeline.io.pulumi import PulumiCli
    from pipeline.project import locate_project
    from pipeline.records.sources import pulumi_history

    flags = ("result", "image", "started", "finished", "commit")
    _refuse(args, "--from-pulumi", [(flag, f"--{flag}") for flag in flags])
    project = locate_project(args.project_dir, args.store)
    if project is not None:
        project.existing_stack_file(args.stack)
    cli = PulumiCli(cwd=project.root if project is not None else None, runner=adapters.run)
    history = pulumi_history.parse_history(cli.history(args.stack))
    outputs = cli.outputs(args.stack) if history else {}
    result = pulumi_history.deployments_from_history(args.stack, history, outputs)
    for line in pulumi_history.history_notes(args.stack, result):
        note(line)
    return list(result.deployments)


def _ci_run_from_flags(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record ci --image REF --build-seconds N --test-seconds N [counts] [scan counts]``."""
    from pipeline.records.sources import ci
    from pipeline.records.sources.junit import TestCounts

    _require(args, "ci", ("--image", "--build-seconds", "--test-seconds"))
    image, digest = image_and_digest(args.image)
    started = _started(args)
    facts = ci.CiFacts(image, digest, args.commit, None, args.scan_critical, args.scan_high)
    counts = TestCounts(
        passed=args.passed or 0,
        failed=args.failed or 0,
        errors=args.errors or 0,
        skipped=args.skipped or 0,
    )
    run = ci.ci_run(
        facts,
        counts,
        source="cli",
        started=started,
        build_seconds=args.build_seconds,
        test_seconds=args.test_seconds,
    )
    return [run]


def _ci_run_from_junit(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record ci --image REF --junit FILE_OR_GLOB ... [--build-seconds N]``."""
    from pipeline.records.sources import ci, junit

    _refuse(args, "--junit", _COUNT_FLAGS)
    started = _started(args)
    counts = junit.count(args.junit)  # every report read, a bad one refused, before the rest
    facts, facts_notes = _ci_facts(args, "--junit", adapters)
    reading = ci.from_junit(
        facts,
        counts,
        started=started,
        build_seconds=args.build_seconds,
        test_seconds=args.test_seconds,
    )
    for line in (*reading.notes, *facts_notes):
        note(line)
    return list(reading.records)


def _ci_run_from_jenkins(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record ci --image REF --from-jenkins BUILD_URL [--junit ...]``."""
    from pipeline.records.sources import ci, junit
    from pipeline.records.sources.jenkins import StageMap

    timing = (("build_seconds", "--build-seconds"), ("test_seconds", "--test-seconds"))
    _refuse(args, "--from-jenkins", (*timing, ("started", "--started")))
    # Counts come from the files when given, else from the build's test report.
    _refuse(args, "--junit" if args.junit else "--from-jenkins", _COUNT_FLAGS)
    # Local files first: a bad report fails before Jenkins is asked anything.
    file_counts = junit.count(args.junit) if args.junit else None
    for line in file_counts.warnings if file_counts is not None else ():
        note(line)
    stage_map = StageMap.from_env()
    build = adapters.jenkins().read_build(args.from_jenkins, stage_map)
    facts, facts_notes = _ci_facts(args, "--from-jenkins", adapters)
    reading = ci.from_jenkins(facts, build, file_counts)
    for line in (*reading.notes, *facts_notes):
        note(line)
    return list(reading.records)


Reader = Callable[[argparse.Namespace, "Adapters"], list["Record"]]
# Flags that select a reader other than the plain one, per kind; a combination
# without a reader is refused with a clear line.
_SOURCES: dict[str, dict[str, Reader]] = {
    "deploy": {"--from-pulumi": _deployments_from_pulumi},
    "ci": {
        "--junit": _ci_run_from_junit,
        "--from-jenkins": _ci_run_from_jenkins,
        "--junit with --from-jenkins": _ci_run_from_jenkins,
    },
}
_SOURCE_FLAGS = {
    "deploy": (("from_pulumi", "--from-pulumi"),),
    "ci": (("junit", "--junit"), ("from_jenkins", "--from-jenkins")),
}


def _reader(args: argparse.Namespace) -> Reader:
    from pipeline.errors import UsageError

    kind = args.record_kind
    chosen = " with ".join(flag for attr, flag in _SOURCE_FLAGS[kind] if getattr(args, attr, None))
    if not chosen:
        return _deployment_from_flags if kind == "deploy" else _ci_run_from_flags
    if chosen in _SOURCES[kind]:
        return _SOURCES[kind][chosen]
    raise UsageError(f"record {kind}: {chosen} is not supported by this version")


def _describe(record: Record) -> str:
    from pipeline.records.model import CiRun, Deployment

    if isinstance(record, Deployment):
        digest = record.digest or "no digest"
        return (
            f"deployment #{record.id}: {record.stack} {record.result} {digest} "
            f"({record.duration_seconds:.0f} s)"
        )
    if isinstance(record, CiRun):
        total = record.passed + record.failed + record.errors
        return (
            f"CI run #{record.id}: {record.digest or record.image or 'no image'} "
            f"({record.passed}/{total} tests passed)"
        )
    return f"{type(record).__name__} #{record.id}"


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from datetime import UTC, datetime

    from pipeline.project import locate_project
    from pipeline.records.stores.codec import refuse_future

    records = _reader(args)(args, adapters)
    # Before the store is opened (or created): a refused record leaves no file behind.
    refuse_future(records, datetime.now(UTC))
    project = locate_project(args.project_dir, args.store)
    if project is not None and args.record_kind == "deploy":
        project.existing_stack_file(args.stack)
    store = adapters.open_store(args.store, project)
    try:
        started = datetime.now(UTC)
        stored = store.add_many(records)
    finally:
        store.close()
    # A keyed record that was stored before keeps its earlier recording time.
    fresh = [r for r in stored if r.recorded_at is not None and r.recorded_at >= started]
    if len(stored) == 1:
        verb = "recorded" if fresh else "already recorded"
        print(f"{verb} {_describe(stored[0])} in {store.location}")
    else:
        print(
            f"recorded {len(fresh)} of {len(stored)} records in {store.location} "
            f"({len(stored) - len(fresh)} already present)"
        )
    return 0
