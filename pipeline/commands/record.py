"""``record deploy``, ``record ci`` and ``record scan``: append what happened to the store.

The flags choose a source: plain figures, JUnit reports (``--junit``), a Jenkins
build (``--from-jenkins``) or ``pulumi stack history`` (``--from-pulumi``). The
command checks the flags (a source that supplies a figure refuses the flag for
it), reads everything through ``pipeline.records.sources`` before the store is
opened, prints the notes the sources return, and appends the records in one go,
so a source that fails records nothing. An image's evidence (a model card, scan
reports) is read by ``record_evidence``, also before the store is opened.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from pipeline.commands import record_evidence, record_flags

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

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
    """The flags of ``record deploy``, ``record ci`` and ``record scan`` (``record_flags``)."""
    record_flags.register(parser)


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


def _repo(args: argparse.Namespace) -> Path | None:
    """The git checkout commit times are read from: the project, else the working directory."""
    from pathlib import Path

    return Path(args.project_dir) if args.project_dir else None


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
    facts = CiFacts(
        image=image,
        digest=digest,
        commit=args.commit,
        commit_time=commit_time(args.commit, _repo(args), adapters.run),
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
    from pipeline.records.sources.git import commit_time
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
    when = commit_time(args.commit, _repo(args), adapters.run)
    return [
        Deployment(args.stack, args.result, image, digest, started, finished, args.commit, when)
    ]


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
    from pipeline.records.sources.git import commit_time
    from pipeline.records.sources.junit import TestCounts

    _require(args, "ci", ("--image", "--build-seconds", "--test-seconds"))
    image, digest = image_and_digest(args.image)
    started = _started(args)
    when = commit_time(args.commit, _repo(args), adapters.run)
    facts = ci.CiFacts(image, digest, args.commit, when, args.scan_critical, args.scan_high)
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
    if kind == "scan":
        return record_evidence.scan_from_flags
    chosen = " with ".join(flag for attr, flag in _SOURCE_FLAGS[kind] if getattr(args, attr, None))
    if not chosen:
        return _deployment_from_flags if kind == "deploy" else _ci_run_from_flags
    if chosen in _SOURCES[kind]:
        return _SOURCES[kind][chosen]
    raise UsageError(f"record {kind}: {chosen} is not supported by this version")


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from datetime import UTC, datetime

    from pipeline.commands.output import describe
    from pipeline.project import locate_project
    from pipeline.records.limits import check_records
    from pipeline.records.sources.git import within_record

    # Local files first: a bad card or report fails before any source is asked.
    evidence = record_evidence.ci_evidence(args) if args.record_kind == "ci" else []
    records = _reader(args)(args, adapters)
    now = datetime.now(UTC)
    # A commit time is the committer's clock: one ahead of the record is taken as the
    # record's time (said), not refused with the record (pipeline.records.sources.git).
    readings = [within_record(r, now) for r in records]
    records = [record for record, _ in readings]
    for line in (why for _, why in readings if why):
        note(line)
    # Before the store is opened (or created): a refused record leaves no file behind.
    # (The store checks again: every writer goes through it.)
    check_records([*records, *evidence], now)
    project = locate_project(args.project_dir, args.store)
    if project is not None and args.record_kind == "deploy":
        project.existing_stack_file(args.stack)
    store = adapters.open_store(args.store, project)
    try:
        if args.record_kind == "deploy" and not args.from_pulumi:
            from pipeline.records.sources.git import with_changes

            # The same ``now``: a change that is the record's own commit was said above.
            readings = [with_changes(r, store, _repo(args), adapters.run, now) for r in records]
            records = [record for record, _ in readings]
            for line in (why for _, why in readings if why):
                note(line)
        started = datetime.now(UTC)
        stored = store.add_many([*records, *evidence])
    finally:
        store.close()
    stored, added = stored[: len(records)], stored[len(records) :]
    # A keyed record that was stored before keeps its earlier recording time.
    fresh = [r for r in stored if r.recorded_at is not None and r.recorded_at >= started]
    if len(stored) == 1:
        verb = "recorded" if fresh else "already recorded"
        print(f"{verb} {describe(stored[0])} in {store.location}")
    else:
        print(
            f"recorded {len(fresh)} of {len(stored)} records in {store.location} "
            f"({len(stored) - len(fresh)} already present)"
        )
    for record in added:
        again = record.recorded_at is None or record.recorded_at < started
        print(f"{'already recorded' if again else 'recorded'} {describe(record)}")
    return 0
