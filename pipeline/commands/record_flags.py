"""The flags of ``record``: its kinds (``deploy``, ``ci``, ``scan``), each with its help.

Kept apart from ``record``, which reads the flags and records what they name.
"""

from __future__ import annotations

import argparse

from pipeline.commands import record_evidence
from pipeline.commands.options import ISO, add_command, count, examples, seconds


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
    summary = "record a CI run (build/test times, test counts, its image's evidence)"
    _register_ci(add_command(kinds, "ci", summary))
    record_evidence.register_scan(kinds)


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
        "(--from-jenkins; credentials from JENKINS_USER and JENKINS_TOKEN); with its "
        "image's evidence: a model card (--model-card) and scan reports (--scan-report)."
    )
    c.epilog = examples(
        "record ci --image REPO:TAG@DIGEST --build-seconds 312 --test-seconds 88 --passed 212",
        "record ci --junit 'build/junit/*.xml' --build-seconds 312 --image REPO:TAG@DIGEST "
        "--commit 9f3c2ab",
        "record ci --from-jenkins https://jenkins.example.internal/job/cv-platform/job/main/42/",
        "record ci --junit build/junit/model.xml --image REPO:TAG@DIGEST "
        "--model-card build/ci/model-card.json --scan-report build/scan/trivy.json",
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
            help=f"{severity} findings of a scan in no format --scan-report reads",
        )
    record_evidence.add_scan_flags(c)
    record_evidence.add_card_flags(c)
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


__all__ = ["register"]
