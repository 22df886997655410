"""``promote``, ``rollback``, ``hold`` and ``history``: the imperative shell.

Each command gathers facts (stack files, records, the registry, scan
findings), lets ``pipeline.promotion`` decide, and only then writes: first the
stack file (a locked compare-and-swap on the digest read at the start), then
the record. A refused or failed command leaves every stack file byte-identical.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.commands.set_image import stack_policy
from pipeline.errors import (
    ConfigError,
    GateRefused,
    PipelineError,
    RegistryError,
    StoreError,
    UsageError,
)
from pipeline.project import Project, find_project
from pipeline.promotion import (
    DIGEST_RESOLVES,
    GATE_NAMES,
    TESTS_PASSED,
    VULNERABILITIES,
    DigestCheck,
    GateResult,
    PromotionFacts,
    ScanFindings,
    current_hold,
    evaluate_gates,
    findings_from_ci_run,
    findings_from_counts,
    last_successful,
    plan_rollback,
    policy_from_config,
    producing_ci_run,
    refused,
    short,
)
from pipeline.records import CiRun, Deployment, Hold, Promotion, Record, Rollback
from pipeline.refs import ImageRef, parse_ref
from pipeline.store import Store, open_store


def actor() -> str:
    """Who acts, for the audit trail: PIPELINE_ACTOR, else the login name."""
    name = os.environ.get("PIPELINE_ACTOR") or os.environ.get("USER") or ""
    if not name:
        import getpass

        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = ""
    return name


def _now() -> datetime:
    return datetime.now(UTC)


# -- adapters (tests may replace them) -------------------------------------------


def check_digest(ref: ImageRef, insecure: Sequence[str]) -> DigestCheck:
    """Ask the registry whether ``ref``'s digest still serves the same manifest."""
    from pipeline.registry import client_for_stack

    assert ref.digest is not None
    try:
        matches = client_for_stack(insecure).manifest_digest_matches(ref, ref.digest)
    except RegistryError as exc:
        return DigestCheck(False, str(exc))
    if matches:
        return DigestCheck(True, f"{ref.registry} serves {short(ref.digest)}")
    return DigestCheck(
        False, f"{ref.registry} no longer serves {short(ref.digest)} in {ref.repository}"
    )


def ecr_findings(ref: ImageRef, account: str, region: str) -> ScanFindings:
    """ECR's scan counts for the digest (``describe_image_scan_findings``)."""
    import boto3

    assert ref.digest is not None
    client = boto3.client("ecr", region_name=region)
    try:
        answer = client.describe_image_scan_findings(
            registryId=account,
            repositoryName=ref.repository,
            imageId={"imageDigest": ref.digest},
            maxResults=1,
        )
    except Exception as exc:  # noqa: BLE001 - botocore errors of every kind mean "no findings"
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and "Error" in response:
            code = response["Error"].get("Code", "")
            message = response["Error"].get("Message", "")
            raise RegistryError(f"ECR scan of {short(ref.digest)}: {code}: {message}") from None
        raise RegistryError(f"ECR scan of {short(ref.digest)}: {exc}") from None
    status = answer.get("imageScanStatus", {}).get("status", "UNKNOWN")
    if status != "COMPLETE":
        raise RegistryError(f"ECR scan of {short(ref.digest)} is {status}, not COMPLETE")
    counts = answer.get("imageScanFindings", {}).get("findingSeverityCounts", {})
    plain = {str(severity): int(count) for severity, count in counts.items()}
    return findings_from_counts(f"ECR scan of {short(ref.digest)}", plain)


@dataclass
class Adapters:
    check_digest: Callable[[ImageRef, Sequence[str]], DigestCheck] = check_digest
    ecr_findings: Callable[[ImageRef, str, str], ScanFindings] = ecr_findings
    now: Callable[[], datetime] = _now


ADAPTERS = Adapters()


# -- shared ----------------------------------------------------------------------


def _project(args: argparse.Namespace) -> Project:
    return find_project(args.project_dir)


def _open(args: argparse.Namespace, project: Project, *, create: bool = False) -> Store:
    # Only placing a hold may start a new store at an explicit location: the
    # other commands need records that are already there, so a --store typo
    # must be an error, not an empty history or a "nothing deployed" refusal.
    return open_store(args.store, project, create=create)


def _record_written(
    store: Store, records: Sequence[Record], path: Path, what: str, old: str | None, new: str | None
) -> list[Record]:
    """Append ``records`` after ``path`` was written; a failure says the file changed.

    A file and a store cannot change in one transaction. The file goes first
    (its compare-and-swap is what can refuse), so if the store then fails, the
    one line must say that the file was written, not that nothing happened.
    """
    try:
        return store.add_many(records)
    except StoreError as exc:
        raise StoreError(
            f"{path.name} was written ({short(old)} -> {short(new)}) but the {what} was not "
            f"recorded: {exc}; restore the file (git checkout {path.name}) and run it again"
        ) from None


def _setting_for(deployment: Deployment, mutable: Sequence[str] = ()) -> tuple[ImageRef, Any]:
    """The image reference and stack-file setting of a recorded deployment.

    The recorded digest is the authority; the reference gives repository and
    tag. A tag the stack marks mutable is dropped: the digest pins the image.
    """
    from pipeline.refs import InvalidReferenceError
    from pipeline.stackfile import ImageSetting

    if deployment.digest is None:
        raise PipelineError(f"deployment #{deployment.id} of {deployment.stack} has no digest")
    try:
        ref = parse_ref(deployment.image)
    except InvalidReferenceError:
        # Readers may record a bare repository beside the digest.
        try:
            ref = parse_ref(f"{deployment.image.split('@', 1)[0]}@{deployment.digest}")
        except InvalidReferenceError as exc:
            raise ConfigError(
                f"deployment #{deployment.id} of {deployment.stack} records image "
                f"{deployment.image!r}, not a usable reference: {exc}"
            ) from None
    tag = ref.tag if ref.tag not in mutable else None
    pinned = ImageRef(ref.registry, ref.repository, tag, deployment.digest)
    return pinned, ImageSetting(pinned.name, tag, deployment.digest)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = [cell.ljust(w) for cell, w in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def gate_table(results: Sequence[GateResult]) -> str:
    return _table(("GATE", "RESULT", "REASON"), [(r.name, r.status, r.reason) for r in results])


# -- promote ---------------------------------------------------------------------


def _findings(
    facts_digest: str | None,
    image: ImageRef | None,
    run: CiRun | None,
    block_severity: str,
) -> tuple[ScanFindings | None, str]:
    from pipeline.registry import ecr_host

    if block_severity == "none" or image is None or facts_digest is None:
        return None, "no candidate digest"
    ecr = ecr_host(image.registry)
    if ecr is not None:
        try:
            return ADAPTERS.ecr_findings(image, ecr[0], ecr[1]), ""
        except RegistryError as exc:
            return None, str(exc)
    if run is None:
        return None, f"no CI run recorded for {short(facts_digest)}, so no scan counts"
    findings = findings_from_ci_run(run)
    if findings is None:
        return None, f"CI run #{run.id} recorded no scan counts (--scan-critical/--scan-high)"
    return findings, ""


def promote(args: argparse.Namespace) -> int:
    from pipeline.stackconfig import load_stack_config
    from pipeline.stackfile import NO_DIGEST, read_image, write_image

    unknown = sorted(set(args.skip_gate) - set(GATE_NAMES))
    if unknown:
        raise UsageError(f"unknown gate {', '.join(unknown)}; gates: {', '.join(GATE_NAMES)}")
    if args.source == args.target:
        raise UsageError(f"--from and --to are both {args.source}")
    skip = frozenset(args.skip_gate)
    project = _project(args)
    project.existing_stack_file(args.source)
    target_file = project.existing_stack_file(args.target)
    target_cfg = load_stack_config(project, args.target)
    keys = ("promotionSoakMinutes", "promotionMinPassPercent", "promotionBlockSeverity")
    given = {key: target_cfg.get(key) for key in keys if target_cfg.get(key) is not None}
    policy = policy_from_config(given, args.target)
    mutable = stack_policy(project, args.target).mutable_tags
    insecure = stack_policy(project, args.source).insecure_registries
    current = read_image(target_file)
    # Always a compare-and-swap against what was read, also when there was no digest.
    expected = current.digest or NO_DIGEST

    store = _open(args, project)
    try:
        deployments = tuple(store.deployments(args.source))
        candidate = last_successful(deployments)
        image: ImageRef | None = None
        setting = None
        if candidate is not None and candidate.digest:
            image, setting = _setting_for(candidate, mutable)
        digest = image.digest if image is not None else None
        runs: tuple[CiRun, ...] = ()
        if digest is not None and not {TESTS_PASSED, VULNERABILITIES} <= skip:
            runs = tuple(store.ci_runs_for_digest(digest))
        digest_check = None
        if image is not None and DIGEST_RESOLVES not in skip:
            digest_check = ADAPTERS.check_digest(image, insecure)
        findings: ScanFindings | None = None
        findings_error = ""
        if VULNERABILITIES not in skip:
            run = producing_ci_run(digest, runs) if digest is not None else None
            findings, findings_error = _findings(digest, image, run, policy.block_severity)
        facts = PromotionFacts(
            source_stack=args.source,
            target_stack=args.target,
            now=ADAPTERS.now(),
            policy=policy,
            source_deployments=deployments,
            ci_runs=runs,
            digest_check=digest_check,
            findings=findings,
            findings_error=findings_error,
            target_holds=tuple(store.holds(args.target)),
            target_digest=current.digest,
        )
        results = evaluate_gates(facts, skip)
        print(f"promote {args.source} -> {args.target}: {image if image else 'nothing'}")
        print(gate_table(results))
        failed = refused(results)
        if failed:
            names = ", ".join(r.name for r in failed)
            raise GateRefused(f"refused by {names}; {target_file.name} unchanged")
        if image is None or setting is None or candidate is None:
            raise GateRefused(
                f"nothing to promote: no successful deployment of {args.source} with a digest "
                f"is recorded; {target_file.name} unchanged"
            )
        if args.dry_run:
            edit = write_image(target_file, setting, expect_digest=expected, dry_run=True)
            print(edit.diff, end="" if edit.diff.endswith("\n") else "\n")
            print(f"dry run: {target_file.name} not written, nothing recorded")
            return 0
        edit = write_image(target_file, setting, expect_digest=expected)
        promotion = Promotion(
            source_stack=args.source,
            target_stack=args.target,
            image=str(image),
            digest=candidate.digest or "",
            at=facts.now,
            skipped_gates=tuple(name for name in GATE_NAMES if name in skip),
            previous_digest=current.digest,
            actor=actor(),
        )
        (stored,) = _record_written(
            store, [promotion], target_file, "promotion", current.digest, image.digest
        )
    finally:
        store.close()
    print(edit.diff, end="" if edit.diff.endswith("\n") else "\n")
    skipped = (
        f" (skipped: {', '.join(stored.skipped_gates)})"
        if isinstance(stored, Promotion) and stored.skipped_gates
        else ""
    )
    print(
        f"promoted {short(current.digest)} -> {short(image.digest)} in {target_file.name}; "
        f"recorded promotion #{stored.id}{skipped}. Next: pulumi up -s {args.target}"
    )
    return 0


# -- rollback and hold -------------------------------------------------------------


def rollback(args: argparse.Namespace) -> int:
    from pipeline.refs import parse_digest
    from pipeline.stackfile import NO_DIGEST, read_image, write_image

    if args.to_digest is not None:
        parse_digest(args.to_digest)
    project = _project(args)
    path = project.existing_stack_file(args.stack)
    current = read_image(path)
    expected = current.digest or NO_DIGEST
    store = _open(args, project)
    try:
        plan = plan_rollback(
            args.stack,
            store.deployments(args.stack),
            current.digest,
            steps=args.steps,
            to_digest=args.to_digest,
        )
        image, setting = _setting_for(plan.to, stack_policy(project, args.stack).mutable_tags)
        if args.dry_run:
            edit = write_image(path, setting, expect_digest=expected, dry_run=True)
            print(edit.diff, end="" if edit.diff.endswith("\n") else "\n")
            print(
                f"dry run: would roll {args.stack} back {short(current.digest)} -> "
                f"{short(plan.to.digest)}; nothing written or recorded"
            )
            return 0
        edit = write_image(path, setting, expect_digest=expected)
        now = ADAPTERS.now()
        who = actor()
        how = f"--to {plan.to.digest}" if args.to_digest else f"--steps {args.steps or 1}"
        stored = _record_written(
            store,
            [
                Rollback(
                    stack=args.stack,
                    from_digest=current.digest,
                    to_digest=plan.to.digest or "",
                    image=str(image),
                    at=now,
                    reason=f"rollback {how}",
                    actor=who,
                ),
                Hold(
                    stack=args.stack,
                    action="placed",
                    at=now,
                    reason=f"rolled back {short(current.digest)} -> {short(plan.to.digest)}",
                    actor=who,
                ),
            ],
            path,
            "rollback",
            current.digest,
            plan.to.digest,
        )
    finally:
        store.close()
    print(edit.diff, end="" if edit.diff.endswith("\n") else "\n")
    print(
        f"rolled {args.stack} back {short(current.digest)} -> {short(plan.to.digest)} "
        f"(deployed {plan.to.finished:%Y-%m-%d %H:%M} UTC); recorded rollback #{stored[0].id}"
    )
    print(
        f"{args.stack} is on hold: promotion to it is refused until "
        f"`hold {args.stack} --release`. Next: pulumi up -s {args.stack}"
    )
    return 0


def hold(args: argparse.Namespace) -> int:
    project = _project(args)
    project.existing_stack_file(args.stack)
    store = _open(args, project, create=not args.release)
    try:
        held = current_hold(store.holds(args.stack))
        now = ADAPTERS.now()
        if args.release:
            if held is None:
                print(f"{args.stack} is not on hold; nothing recorded")
                return 0
            store.add(Hold(args.stack, "released", now, args.reason or "", actor=actor()))
            print(f"released the hold on {args.stack} (held since {held.at:%Y-%m-%d %H:%M} UTC)")
            return 0
        store.add(Hold(args.stack, "placed", now, args.reason, actor=actor()))
    finally:
        store.close()
    again = f" (already held since {held.at:%Y-%m-%d %H:%M} UTC)" if held else ""
    print(f"{args.stack} is on hold{again}: promotion to it is refused until --release")
    return 0


# -- history ---------------------------------------------------------------------

_EVENT_ORDER = {"deployment": 0, "promotion": 1, "rollback": 2, "hold": 3}


def _event(record: Record, stack: str) -> tuple[datetime, str, str, str]:
    """(time, event, digest, detail) of one record, for the table."""
    if isinstance(record, Deployment):
        return (
            record.finished,
            "deploy",
            short(record.digest),
            f"{record.result} in {record.duration_seconds:.0f} s ({record.source})",
        )
    if isinstance(record, Promotion):
        direction = "promoted in" if record.target_stack == stack else "promoted out"
        detail = f"{direction}: {record.source_stack} -> {record.target_stack}"
        if record.skipped_gates:
            detail += f", skipped {', '.join(record.skipped_gates)}"
        return record.at, "promote", short(record.digest), detail
    if isinstance(record, Rollback):
        return record.at, "rollback", short(record.to_digest), f"from {short(record.from_digest)}"
    assert isinstance(record, Hold)
    name = "hold" if record.action == "placed" else "release"
    return record.at, name, "-", record.reason


def _jsonable(record: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"event": type(record).__name__.lower()}
    for item in fields(record):
        value = getattr(record, item.name)
        if isinstance(value, datetime):
            value = value.isoformat().replace("+00:00", "Z")
        elif isinstance(value, tuple):
            value = list(value)
        out[item.name] = value
    return out


def history(args: argparse.Namespace) -> int:
    project = _project(args)
    project.existing_stack_file(args.stack)
    store = _open(args, project)
    try:
        records: list[Record] = [
            *store.deployments(args.stack),
            *store.promotions(args.stack),
            *store.rollbacks(args.stack),
            *store.holds(args.stack),
        ]
    finally:
        store.close()

    def newest_first(record: Record) -> tuple[datetime, int, int]:
        when = _event(record, args.stack)[0]
        kind = type(record).__name__.lower()
        return (when, _EVENT_ORDER[kind], record.id or 0)

    records.sort(key=newest_first, reverse=True)
    shown = records[: args.limit]
    if args.json:
        print(json.dumps([_jsonable(r) for r in shown], indent=2))
        return 0
    if not shown:
        print(f"no history for {args.stack} in {store.location}")
        return 0
    rows = []
    for record in shown:
        when, event, digest, detail = _event(record, args.stack)
        rows.append((f"{when:%Y-%m-%d %H:%M:%S}", event, digest, detail))
    print(_table(("TIME (UTC)", "EVENT", "DIGEST", "DETAIL"), rows))
    if len(records) > len(shown):
        print(f"({len(records) - len(shown)} older events not shown; --limit N)")
    return 0


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "promote": promote,
    "rollback": rollback,
    "hold": hold,
    "history": history,
}


def run(args: argparse.Namespace) -> int:
    return _COMMANDS[args.command](args)
