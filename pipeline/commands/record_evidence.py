"""The evidence ``record ci`` and ``record scan`` read: a model card and scan reports.

``record ci --model-card FILE [--mlmodel FILE] [--scan-report FILE ...]`` and
``record scan --image REF --scan-report FILE``: every file is read and checked
before the store is opened (``pipeline.records.sources.evidence``), so a
malformed card or report is one line, exit 1, and nothing is stored. Evidence is
kept per image: the image reference must carry its digest.
"""

from __future__ import annotations

import argparse

from pipeline.commands.options import add_command, examples

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from pipeline.commands.adapters import Adapters
    from pipeline.records.model import Record

SCAN_FORMATS = ("auto", "trivy", "grype", "sarif")
# Larger inputs are refused before they are read (the readers' own bounds).
_MAX_REPORT_BYTES = 64 * 1024 * 1024
_MAX_CARD_BYTES = 4 * 1024 * 1024


def add_scan_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scan-report",
        action="append",
        default=[],
        metavar="FILE",
        help="a vulnerability report of the image: Trivy JSON (SchemaVersion 2), Grype JSON "
        "or SARIF 2.1.0 with the scanner's own severities; may be repeated",
    )
    parser.add_argument(
        "--scan-format",
        choices=SCAN_FORMATS,
        default="auto",
        help="the reports' format (default auto: told by their content)",
    )


def add_card_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model-card",
        metavar="FILE",
        help="the image's model-card.json (docs/model-card.schema.json)",
    )
    parser.add_argument(
        "--mlmodel",
        metavar="FILE",
        help="an MLflow MLmodel file to take the card's signature from (with --model-card)",
    )


def register_scan(kinds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    s = add_command(kinds, "scan", "record a vulnerability report of an image (Trivy, Grype)")
    s.description = (
        "Record the vulnerability report(s) of an image by itself (the Jenkinsfile's Scan "
        "stage does). Every finding is kept with its id, severity, package and fixed "
        "version; a later report is added beside earlier ones, never in their place."
    )
    s.epilog = examples(
        "record scan --image REPO:TAG@DIGEST --scan-report build/scan/trivy.json",
        "record scan --image REPO@DIGEST --scan-report grype.json --scan-format grype",
    )
    s.add_argument(
        "--image", required=True, metavar="REF", help="the image scanned (repo[:tag]@digest)"
    )
    add_scan_flags(s)


def _read(path: str, flag: str, limit: int) -> bytes:
    from pipeline.errors import PipelineError

    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise PipelineError(f"{flag} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise PipelineError(f"{flag} {path}: larger than {limit} bytes")
    return data


def evidence(args: argparse.Namespace, image_text: str | None) -> tuple[list[Record], list[str]]:
    """The evidence records the flags name, for ``image_text``, and notes to print."""
    from pipeline.errors import UsageError
    from pipeline.images.refs import parse_ref
    from pipeline.records.sources.evidence import model_card_record, scan_record

    card_file = getattr(args, "model_card", None)
    mlmodel_file = getattr(args, "mlmodel", None)
    if mlmodel_file and not card_file:
        raise UsageError("--mlmodel needs --model-card: an MLmodel gives only the signature")
    if not (args.scan_report or card_file):
        return [], []
    if not image_text:
        raise UsageError(
            "--model-card and --scan-report need --image REPO[:TAG]@DIGEST: evidence is kept "
            "per image"
        )
    ref = parse_ref(image_text)
    if ref.digest is None:
        raise UsageError(f"--image {image_text}: evidence needs the digest (REPO[:TAG]@sha256:...)")
    image, digest = str(ref), ref.digest
    read = []
    for path in args.scan_report:
        data = _read(path, "--scan-report", _MAX_REPORT_BYTES)
        read.append(scan_record(data, image=image, digest=digest, name=path, fmt=args.scan_format))
    if card_file:
        card = _read(card_file, "--model-card", _MAX_CARD_BYTES)
        mlmodel = _read(mlmodel_file, "--mlmodel", _MAX_CARD_BYTES) if mlmodel_file else None
        read.append(
            model_card_record(
                card,
                image=image,
                digest=digest,
                card_name=card_file,
                mlmodel=mlmodel,
                mlmodel_name=mlmodel_file or "MLmodel",
            )
        )
    return [e.record for e in read], [n for e in read for n in e.notes]


def _noted(found: tuple[list[Record], list[str]]) -> list[Record]:
    import sys

    records, notes = found
    for line in notes:
        print(f"note: {line}", file=sys.stderr)
    return records


def ci_evidence(args: argparse.Namespace) -> list[Record]:
    """``record ci``'s evidence flags: the records for its --image (notes printed)."""
    from pipeline.errors import UsageError

    flags = ("--scan-critical", "--scan-high")
    counts = [f for f in flags if getattr(args, f[2:].replace("-", "_")) is not None]
    if args.scan_report and counts:
        raise UsageError(f"--scan-report supplies the findings itself; drop {' and '.join(counts)}")
    return _noted(evidence(args, args.image))


def scan_from_flags(args: argparse.Namespace, adapters: Adapters) -> list[Record]:
    """``record scan --image REF --scan-report FILE ...``."""
    from pipeline.errors import UsageError

    if not args.scan_report:
        raise UsageError("record scan: --scan-report is required")
    return _noted(evidence(args, args.image))


__all__ = [
    "add_card_flags",
    "add_scan_flags",
    "ci_evidence",
    "evidence",
    "register_scan",
    "scan_from_flags",
]
