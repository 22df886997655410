"""``record deploy`` and ``record ci``: append what happened to the record store.

Each source of records is one function ``(args) -> list[Record]`` (pure apart
from reading its input); ``_reader`` picks the one the flags ask for, and
``run`` appends what it returns in one transaction. A new source (JUnit files,
a Jenkins build, ``pulumi stack history``) is a new reader plus one line in
``_reader``. Plain flags are validated here: finished >= started, the digest
comes from ``--image``, and a missing required flag is named in one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from pipeline.errors import UsageError
from pipeline.records import CiRun, Deployment, Record, parse_time
from pipeline.refs import parse_ref

Reader = Callable[[argparse.Namespace], list[Record]]


def _require(args: argparse.Namespace, kind: str, flags: Sequence[str]) -> None:
    for flag in flags:
        if getattr(args, flag.removeprefix("--").replace("-", "_"), None) is None:
            raise UsageError(f"record {kind}: {flag} is required")


def flag_time(flag: str, text: str) -> datetime:
    """An ISO 8601 flag value as aware UTC; one without a zone is read as UTC, and said."""
    try:
        at = parse_time(text)
        raw = text.strip()
        zone_less = raw[-1:] not in ("Z", "z") and datetime.fromisoformat(raw).tzinfo is None
    except ValueError:
        raise UsageError(
            f"{flag} {text!r}: not an ISO 8601 time (e.g. 2026-01-31T14:05:00Z)"
        ) from None
    if zone_less:
        print(f"note: {flag} {text} has no time zone: read as UTC", file=sys.stderr)
    return at


def image_and_digest(text: str) -> tuple[str, str | None]:
    """The normalised reference and its digest (None when REF has only a tag)."""
    ref = parse_ref(text)
    return str(ref), ref.digest


def stack_image(args: argparse.Namespace) -> str:
    """The image Pulumi.STACK.yaml pins: what ``pulumi up`` for that stack deployed."""
    from pipeline.stackfile import read_image
    from pipeline.store import locate_project

    project = locate_project(args.project_dir, args.store)
    if project is None:
        raise UsageError("record deploy: --image is required outside a Pulumi project")
    setting = read_image(project.existing_stack_file(args.stack))
    if not setting.repository or not (setting.tag or setting.digest):
        raise UsageError(
            f"record deploy: {project.stack_file(args.stack).name} pins no image "
            "(cv-platform:image); give --image"
        )
    return str(setting)


def deployment_from_flags(args: argparse.Namespace) -> list[Record]:
    """``record deploy --stack S --result R [--image REF] --started T --finished T``.

    Without ``--image``, the image is the one the stack file pins (what was deployed).
    """
    _require(args, "deploy", ("--result", "--started", "--finished"))
    started = flag_time("--started", args.started)
    finished = flag_time("--finished", args.finished)
    if finished < started:
        raise UsageError(f"--finished {args.finished} is before --started {args.started}")
    image, digest = image_and_digest(args.image if args.image is not None else stack_image(args))
    return [
        Deployment(
            stack=args.stack,
            result=args.result,
            image=image,
            digest=digest,
            started=started,
            finished=finished,
            commit=args.commit,
        )
    ]


def ci_run_from_flags(args: argparse.Namespace) -> list[Record]:
    """``record ci --image REF --build-seconds N --test-seconds N [counts] [scan counts]``."""
    _require(args, "ci", ("--image", "--build-seconds", "--test-seconds"))
    image, digest = image_and_digest(args.image)
    started = flag_time("--started", args.started) if args.started is not None else None
    return [
        CiRun(
            image=image,
            digest=digest,
            commit=args.commit,
            started=started,
            build_seconds=args.build_seconds,
            test_seconds=args.test_seconds,
            passed=args.passed or 0,
            failed=args.failed or 0,
            errors=args.errors or 0,
            skipped=args.skipped or 0,
            scan_critical=args.scan_critical,
            scan_high=args.scan_high,
        )
    ]


# Flags that select a reader other than the plain one, per kind. A reader
# listed here without an entry in ``_reader`` is refused with a clear line.
_SOURCE_FLAGS = {
    "deploy": (("from_pulumi", "--from-pulumi"),),
    "ci": (("junit", "--junit"), ("from_jenkins", "--from-jenkins")),
}


def _reader(args: argparse.Namespace) -> Reader:
    kind = args.record_kind
    chosen = [flag for attr, flag in _SOURCE_FLAGS.get(kind, ()) if getattr(args, attr, None)]
    if not chosen:
        return deployment_from_flags if kind == "deploy" else ci_run_from_flags
    # Readers for other sources are registered here (one line each).
    from pipeline import ingest

    readers: dict[str, Reader] = {
        "--from-pulumi": ingest.deployments_from_pulumi,
        "--junit": ingest.ci_run_from_junit,
        "--from-jenkins": ingest.ci_run_from_jenkins,
        "--junit with --from-jenkins": ingest.ci_run_from_jenkins,
    }
    if " with ".join(chosen) in readers:
        return readers[" with ".join(chosen)]
    raise UsageError(f"record {kind}: {' with '.join(chosen)} is not supported by this version")


def _describe(record: Record) -> str:
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


def run(args: argparse.Namespace) -> int:
    from pipeline.store import locate_project, open_store

    records = _reader(args)(args)
    project = locate_project(args.project_dir, args.store)
    if project is not None and args.record_kind == "deploy":
        project.existing_stack_file(args.stack)
    store = open_store(args.store, project)
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
