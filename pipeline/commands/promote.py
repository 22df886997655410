"""``promote --from SOURCE --to TARGET``: the last good digest of one stack, through gates.

The command gathers the facts (stack files, records, the registry's answer, scan
findings), lets ``pipeline.promotion.gates`` decide, prints the gate table, and
only then writes, under the target stack file's lock: the holds are checked again
(a rollback places its hold under the same lock), the file is written (a
compare-and-swap on the digest read at the start), then the promotion recorded.
A refused or failed promotion leaves every stack file byte-identical.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from pipeline.commands.options import examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters
    from pipeline.commands.output import Colour
    from pipeline.images.refs import ImageRef
    from pipeline.project import Project
    from pipeline.promotion.gates import GateResult, PromotionFacts, PromotionPolicy, ScanFindings
    from pipeline.records.model import CiRun, Deployment, Verification
    from pipeline.records.stores import Store
    from pipeline.verification.settings import VerificationPolicy


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Promote the digest of the last successful deployment of --from to --to, never the "
        "newest tag. Eleven gates decide: source succeeded, soak time, verified (when the "
        "source requires it), digest still resolves, tests passed, vulnerabilities (every "
        "scan of the digest, waivers), model quality and compatibility (its model card "
        "against the one --to runs), not rejected by --to, target not on hold, not already "
        "deployed. Exit 3 when a gate refuses; the target file is then untouched."
    )
    parser.epilog = examples(
        "promote --from staging --to prod --dry-run",
        "promote --from staging --to prod",
        "promote --from staging --to prod --skip-gate soak",
        'promote --from staging --to prod --readmit "INC-31 fixed in config 4e1d07c"',
    )
    parser.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="STACK",
        help="the stack whose last successful deployment is promoted",
    )
    parser.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="STACK",
        help="the stack whose Pulumi.STACK.yaml is written",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="evaluate gates, print the diff only"
    )
    parser.add_argument(
        "--skip-gate",
        action="append",
        default=[],
        metavar="NAME",
        help="skip a gate by name (recorded); may be repeated",
    )
    parser.add_argument(
        "--readmit",
        metavar="REASON",
        default="",
        help="admit a digest the target rejected (rolled back) again, saying why (recorded)",
    )


_RESULT_COLOURS: Mapping[str, Colour] = {"pass": "green", "FAIL": "red", "skipped": "yellow"}


def gate_table(results: Sequence[GateResult]) -> str:
    """The gate table; its RESULT column coloured when stdout is a terminal."""
    from pipeline.commands.output import table, use_colour

    return table(
        ("GATE", "RESULT", "REASON"),
        [(r.name, r.status, r.reason) for r in results],
        [(None, _RESULT_COLOURS.get(r.status), None) for r in results],
        colour=use_colour(sys.stdout),
    )


def _target_policy(project: Project, target: str) -> PromotionPolicy:
    from pipeline.promotion.gates import policy_from_config
    from pipeline.stacks.config import load_stack_config

    cfg = load_stack_config(project, target)
    from pipeline.promotion.policy import POLICY_KEYS

    return policy_from_config(
        {key: cfg.get(key) for key in POLICY_KEYS if cfg.get(key) is not None}, target
    )


def _source_verification(project: Project, source: str) -> VerificationPolicy:
    """The source stack's ``cv-platform:verification`` (is a verification required?)."""
    from pipeline.stacks.config import load_stack_config
    from pipeline.verification.settings import policy_from_config

    return policy_from_config(load_stack_config(project, source).get("verification"), source)


def _findings(
    adapters: Adapters, image: ImageRef | None, runs: Sequence[CiRun], block: str
) -> tuple[ScanFindings | None, str]:
    """Counted findings for the candidate: ECR's own scan, else every CI run's recorded
    counts (the gate adds the recorded scan reports); the reason when there are none."""
    from pipeline.errors import RegistryError
    from pipeline.images.refs import ecr_host, short_digest
    from pipeline.promotion.gates import findings_from_ci_runs

    if block == "none" or image is None or image.digest is None:
        return None, "no candidate digest"
    if ecr_host(image.registry) is not None:
        try:
            return adapters.ecr_findings(image), ""
        except RegistryError as exc:
            return None, str(exc)
    findings = findings_from_ci_runs(runs)
    if findings is None:
        return None, (
            f"no scan recorded for {short_digest(image.digest)} (record scan, record ci "
            "--scan-report, or --scan-critical/--scan-high)"
        )
    return findings, ""


def _facts(
    args: argparse.Namespace,
    adapters: Adapters,
    store: Store,
    *,
    deployments: tuple[Deployment, ...],
    policy: PromotionPolicy,
    image: ImageRef | None,
    insecure: Sequence[str],
    target_digest: str | None,
    source_verification: VerificationPolicy | None,
) -> PromotionFacts:
    """Everything the gates decide from, asked of the store, the registry and the scanner."""
    from pipeline.commands.promote_evidence import evidence_facts
    from pipeline.promotion.gates import (
        DIGEST_RESOLVES,
        TESTS_PASSED,
        VERIFIED,
        VULNERABILITIES,
        PromotionFacts,
    )

    skip = frozenset(args.skip_gate)
    digest = image.digest if image is not None else None
    runs: tuple[CiRun, ...] = ()
    if digest is not None and not {TESTS_PASSED, VULNERABILITIES} <= skip:
        runs = tuple(store.ci_runs_for_digest(digest))
    digest_check = None
    if image is not None and DIGEST_RESOLVES not in skip:
        digest_check = adapters.check_digest(image, insecure)
    findings: ScanFindings | None = None
    findings_error = ""
    if VULNERABILITIES not in skip:
        findings, findings_error = _findings(adapters, image, runs, policy.block_severity)
    evidence = evidence_facts(store, digest, args.target, skip, " ".join(args.readmit.split()))
    required = False
    verifications: tuple[Verification, ...] = ()
    if VERIFIED not in skip:
        required = source_verification is not None and source_verification.required
        verifications = tuple(store.verifications(args.source)) if required else ()
    return PromotionFacts(
        source_stack=args.source,
        target_stack=args.target,
        now=adapters.now(),
        policy=policy,
        source_deployments=deployments,
        ci_runs=runs,
        digest_check=digest_check,
        findings=findings,
        findings_error=findings_error,
        target_holds=tuple(store.holds(args.target)),
        target_digest=target_digest,
        verification_required=required,
        source_verifications=verifications,
        **evidence,
    )


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.commands.common import pinned_setting, record_after_write
    from pipeline.commands.output import print_diff
    from pipeline.commands.promote_evidence import model_table, readmission
    from pipeline.errors import GateRefused, UsageError
    from pipeline.images.refs import short_digest
    from pipeline.project import find_project
    from pipeline.promotion.gates import (
        GATE_NAMES,
        NOT_ON_HOLD,
        VERIFIED,
        current_hold,
        evaluate_gates,
        last_successful,
        refused,
    )
    from pipeline.records.model import Promotion
    from pipeline.stacks.policy import stack_policy
    from pipeline.stacks.stackfile import NO_DIGEST, locked_stack, read_image, write_image

    unknown = sorted(set(args.skip_gate) - set(GATE_NAMES))
    if unknown:
        raise UsageError(f"unknown gate {', '.join(unknown)}; gates: {', '.join(GATE_NAMES)}")
    if args.source == args.target:
        raise UsageError(f"--from and --to are both {args.source}")
    project = find_project(args.project_dir)
    project.existing_stack_file(args.source)
    target_file = project.existing_stack_file(args.target)
    policy = _target_policy(project, args.target)
    mutable = stack_policy(project, args.target).mutable_tags
    insecure = stack_policy(project, args.source).insecure_registries
    current = read_image(target_file)
    # Always a compare-and-swap against what was read, also when there was no digest.
    expected = current.digest or NO_DIGEST

    # The promotion needs records that are already there: a --store typo is an error.
    store = adapters.open_store(args.store, project, create=False)
    try:
        deployments = tuple(store.deployments(args.source))
        candidate = last_successful(deployments)
        image = setting = None
        if candidate is not None and candidate.digest:
            image, setting = pinned_setting(candidate, mutable)
        facts = _facts(
            args,
            adapters,
            store,
            deployments=deployments,
            policy=policy,
            image=image,
            insecure=insecure,
            target_digest=current.digest,
            # Not read when the gate is skipped: a broken setting then stops nothing.
            source_verification=None
            if VERIFIED in args.skip_gate
            else _source_verification(project, args.source),
        )
        skip = frozenset(args.skip_gate)
        results = evaluate_gates(facts, skip)
        print(f"promote {args.source} -> {args.target}: {image if image else 'nothing'}")
        print(gate_table(results))
        models = model_table(facts, image.digest if image is not None else None)
        if models is not None:
            print(models)
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
            print_diff(edit.diff)
            print(f"dry run: {target_file.name} not written, nothing recorded")
            return 0
        # Under the target's lock: a rollback holds the stack under the same lock before it
        # writes, so a hold placed since the gates ran is seen here.
        with locked_stack(target_file) as stack:
            held = None if NOT_ON_HOLD in skip else current_hold(store.holds(args.target))
            if held is not None:
                raise GateRefused(
                    f"{args.target} was placed on hold while the gates were evaluated"
                    f"{f': {held.reason}' if held.reason else ''}; {target_file.name} unchanged"
                )
            edit = stack.write(setting, expect_digest=expected)
            promotion = Promotion(
                source_stack=args.source,
                target_stack=args.target,
                image=str(image),
                digest=candidate.digest or "",
                at=facts.now,
                skipped_gates=tuple(name for name in GATE_NAMES if name in skip),
                previous_digest=current.digest,
                actor=adapters.actor(),
            )
            readmitted = readmission(facts, promotion.digest, promotion.actor)
            stored, *_ = record_after_write(
                store,
                [promotion, *([readmitted] if readmitted else [])],
                target_file,
                "promotion",
                current.digest,
                image.digest,
            )
    finally:
        store.close()
    print_diff(edit.diff)
    skipped = (
        f" (skipped: {', '.join(stored.skipped_gates)})"
        if isinstance(stored, Promotion) and stored.skipped_gates
        else ""
    )
    again = f", re-admitted ({readmitted.reason})" if readmitted else ""
    print(
        f"promoted {short_digest(current.digest)} -> {short_digest(image.digest)} in "
        f"{target_file.name}; recorded promotion #{stored.id}{skipped}{again}. "
        f"Next: pulumi up -s {args.target}"
    )
    return 0
