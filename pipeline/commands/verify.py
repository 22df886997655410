"""``verify STACK``: the deployed digest judged by its own metrics in Prometheus.

The stack's last deployment (it must have succeeded), its pods selected by the labels
the ServiceMonitor gives, a window that ends now and never starts before the
deployment (waiting until it has passed), three instant queries
(``pipeline.verification.queries``), a verdict (``decide``: pure), a table, and a
``Verification`` record. With ``--rollback-on-failure`` a failed verification rolls
the stack back and holds it (``commands.common.roll_back``). Exit 0 passed, 3
failed, 1 when it cannot judge: Prometheus unreachable, a query refused, or too few
requests. Never a pass then.
"""

from __future__ import annotations

import argparse
import sys

from pipeline.commands.options import examples, whole

TYPE_CHECKING = False  # not typing's: start-up skips typing; mypy reads this alike

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pipeline.commands.adapters import Adapters
    from pipeline.commands.output import Colour
    from pipeline.project import Project
    from pipeline.records.model import Deployment, Verification
    from pipeline.records.stores import Store
    from pipeline.verification.decide import Measured, Thresholds, Verdict
    from pipeline.verification.plan import Window

_COLOURS: Mapping[str, Colour] = {"pass": "green", "FAIL": "red", "n/a": "yellow"}


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a ratio from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a ratio from 0 to 1, got {text}")
    return value


def _milliseconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected milliseconds > 0, got {text}")
    return value


def register(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Judge STACK's last deployment by its /predict traffic in Prometheus over a window "
        "after it (waiting for the window when it is younger): request count, 5xx ratio "
        "and p95 latency against cv-platform:verification (options override it), recorded "
        "for the `verified` promotion gate and DORA. Exit 0 passed, 3 failed (a table of "
        "measured against threshold), 1 when it cannot judge (Prometheus unreachable, a "
        "query error, too few requests): never a pass."
    )
    parser.epilog = examples(
        "verify staging",
        "verify staging --window 10m --min-requests 500",
        "verify prod --rollback-on-failure",
        "verify prod --prometheus http://127.0.0.1:9090 "
        '--selector \'{namespace="cv-prod",app="model-server"}\' --no-record',
    )
    parser.add_argument("stack", metavar="STACK")
    parser.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus base URL (default: cv-platform:verification.prometheusUrl)",
    )
    parser.add_argument(
        "--window", metavar="DURATION", help="how long to measure, e.g. 5m, 90s (default: config)"
    )
    parser.add_argument(
        "--selector",
        metavar="MATCHERS",
        help='label matchers of the pods, {label="value",...} (default: the deployment\'s '
        "namespace, app and version labels)",
    )
    parser.add_argument(
        "--min-requests", type=whole(1), metavar="N", help="fewer is too few to judge"
    )
    parser.add_argument(
        "--max-error-ratio", type=_ratio, metavar="X", help="highest 5xx share of /predict, 0..1"
    )
    parser.add_argument("--max-p95-ms", type=_milliseconds, metavar="X", help="p95 latency budget")
    parser.add_argument("--no-record", action="store_true", help="judge, but record nothing")
    parser.add_argument(
        "--rollback-on-failure",
        action="store_true",
        help="on a failed verification roll STACK back to its last verified digest and hold it",
    )


def _thresholds_and_url(
    args: argparse.Namespace, project: Project
) -> tuple[Thresholds, float, str, dict[str, object]]:
    """The limits (options over ``cv-platform:verification``), window, URL, stack facts."""
    from pipeline.errors import ConfigError, PipelineError
    from pipeline.stacks.config import load_stack_config
    from pipeline.verification.decide import Thresholds
    from pipeline.verification.settings import (
        policy_from_config,
        prometheus_url_problem,
        window_option,
    )

    cfg = load_stack_config(project, args.stack)
    values = {k: cfg.get(k) for k in ("namespace", "appName", "predictPath")}
    policy = policy_from_config(cfg.get("verification"), args.stack)
    limits = Thresholds(
        args.min_requests if args.min_requests is not None else policy.min_requests,
        args.max_error_ratio if args.max_error_ratio is not None else policy.max_error_ratio,
        args.max_p95_ms if args.max_p95_ms is not None else policy.max_p95_ms,
    )
    window = window_option(args.window) if args.window else policy.window_seconds
    if args.prometheus:
        problem = prometheus_url_problem(args.prometheus)
        if problem:  # exit 1, as --from-jenkins and GITHUB_API_URL
            raise PipelineError(f"--prometheus {problem}")
    url = (args.prometheus or policy.prometheus_url).rstrip("/")
    if not url:
        raise ConfigError(
            f"no Prometheus to ask for {args.stack}: set cv-platform:verification.prometheusUrl "
            f"in Pulumi.{args.stack}.yaml or pass --prometheus URL"
        )
    return limits, window, url, values


def _print_verdict(verdict: Verdict) -> None:
    """The table of measured values against thresholds (RESULT coloured on a terminal)."""
    from pipeline.commands.output import table, use_colour

    rows = [(c.name, c.measured, c.threshold, c.status) for c in verdict.checks]
    tints = [(None, None, None, _COLOURS.get(c.status)) for c in verdict.checks]
    print(
        table(
            ("CHECK", "MEASURED", "THRESHOLD", "RESULT"), rows, tints, colour=use_colour(sys.stdout)
        )
    )


def _roll_back(
    args: argparse.Namespace,
    adapters: Adapters,
    project: Project,
    store: Store,
    deployed: Deployment,
    failed: Verification,
) -> str:
    """Roll back and hold after a failed verification; the line to end with.

    All of it under the stack file's lock, where ``promote`` checks holds: what the
    file pins is read there, and whatever happens next (the file moved on, nothing to
    roll back to, the rollback) the stack is held before the lock is released.
    """
    from pipeline.commands.common import pinned_setting, roll_back_locked
    from pipeline.commands.output import print_diff
    from pipeline.errors import PipelineError
    from pipeline.images.refs import short_digest
    from pipeline.promotion.rollback import plan_rollback
    from pipeline.records.model import Hold, Rollback
    from pipeline.stacks.policy import stack_policy
    from pipeline.stacks.stackfile import NO_DIGEST, locked_stack
    from pipeline.verification.plan import rollback_target

    path = project.existing_stack_file(args.stack)
    now = adapters.now()
    failed_here = f"verification of {short_digest(deployed.digest)} failed: {failed.reason}"

    def hold_only(why: str) -> str:
        (held,) = store.add_many(
            [Hold(args.stack, "placed", now, f"{failed_here}; {why}", actor=adapters.actor())]
        )
        release = f"hold {args.stack} --release"
        return f"{why}; {args.stack} is on hold (hold #{held.id}; release: {release})"

    with locked_stack(path) as stack:
        current = stack.read()
        if current.digest != deployed.digest:
            # The file moved on (a promotion not yet deployed): hold, do not guess a target.
            return hold_only(
                f"{path.name} pins {short_digest(current.digest)}, not the deployed "
                f"{short_digest(deployed.digest)}: not rolled back"
            )
        deployments = store.deployments(args.stack)
        target, why = rollback_target(
            args.stack, current.digest, deployments, store.verifications(args.stack)
        )
        try:
            plan = plan_rollback(args.stack, deployments, current.digest, to_digest=target)
            mutable = stack_policy(project, args.stack).mutable_tags
            image, setting = pinned_setting(plan.to, mutable)
        except PipelineError as exc:  # a first deployment: nothing to return to
            return hold_only(f"not rolled back: {exc}")
        moved = f"{short_digest(current.digest)} -> {short_digest(plan.to.digest)}"
        rollback = Rollback(
            stack=args.stack,
            from_digest=current.digest,
            to_digest=plan.to.digest or "",
            image=str(image),
            at=now,
            reason=f"verify --rollback-on-failure: {failed.reason}",
            actor=adapters.actor(),
        )
        done = roll_back_locked(
            store,
            stack,
            rollback,
            setting,
            expect_digest=current.digest or NO_DIGEST,
            hold_reason=f"verification failed ({failed.reason}); rolled back {moved}",
            at=now,
        )
    print_diff(done.edit.diff)
    return (
        f"rolled {args.stack} back {moved}, to {why}; recorded rollback #{done.rollback.id} and "
        f"hold #{done.hold.id} (release: hold {args.stack} --release). "
        f"Next: pulumi up -s {args.stack}"
    )


def _measure(
    args: argparse.Namespace,
    adapters: Adapters,
    deployed: Deployment,
    config: Mapping[str, object],
    window: float,
    url: str,
) -> tuple[Measured, Window, str]:
    """Wait for the window after the deployment, then ask Prometheus about its pods."""
    from pipeline.errors import PipelineError
    from pipeline.io.urls import shown
    from pipeline.verification.decide import Measured
    from pipeline.verification.plan import (
        DEFAULT_PREDICT,
        default_selector,
        measured_window,
        wait_seconds,
    )
    from pipeline.verification.queries import verification_queries
    from pipeline.verification.selector import parse_selector, render_selector
    from pipeline.verification.settings import format_duration

    matchers = (
        parse_selector(args.selector)
        if args.selector
        else default_selector(args.stack, config, deployed)
    )
    wait = wait_seconds(deployed, window, adapters.now())
    if wait > 0:
        wanted = format_duration(window)
        print(f"waiting {wait:.0f} s for {wanted} of traffic after the deployment")
        sys.stdout.flush()
        adapters.sleep(wait)
    span = measured_window(deployed, window, adapters.now())
    predict = str(config.get("predictPath") or DEFAULT_PREDICT)
    queries = verification_queries(matchers, predict, span.seconds)
    client = adapters.prometheus(url)
    try:
        measured = Measured(
            client.value(queries.requests, span.until),
            client.value(queries.error_ratio, span.until),
            client.value(queries.p95_seconds, span.until),
        )
    except PipelineError as exc:
        raise PipelineError(f"{exc}; nothing recorded") from None
    finally:
        client.close()
    selector = render_selector(matchers)
    length = format_duration(span.seconds)
    print(f"{selector} over {length} to {span.until:%H:%M:%S} UTC ({shown(url)})")
    return measured, span, selector


def run(args: argparse.Namespace, adapters: Adapters) -> int:
    from pipeline.errors import PipelineError, UsageError, VerificationFailed
    from pipeline.images.refs import short_digest
    from pipeline.project import find_project
    from pipeline.records.model import Verification
    from pipeline.verification.decide import decide
    from pipeline.verification.plan import deployment_to_verify
    from pipeline.verification.selector import parse_selector

    if args.no_record and args.rollback_on_failure:
        raise UsageError("--rollback-on-failure records the rollback; drop --no-record")
    if args.selector:
        parse_selector(args.selector)  # a bad selector is a usage error before anything else
    project = find_project(args.project_dir)
    project.existing_stack_file(args.stack)
    limits, window, url, config = _thresholds_and_url(args, project)
    store = adapters.open_store(args.store, project, create=False)
    try:
        deployed = deployment_to_verify(args.stack, store.deployments(args.stack))
        when = f"{deployed.finished:%Y-%m-%d %H:%M:%S} UTC"
        print(f"verify {args.stack}: {deployed.image}, deployed {when}")
        measured, span, selector = _measure(args, adapters, deployed, config, window, url)
        verdict = decide(measured, limits)
        _print_verdict(verdict)
        record = Verification(
            stack=args.stack,
            digest=deployed.digest or "",
            image=deployed.image,
            result=verdict.result,
            since=span.since,
            until=span.until,
            requests=measured.requests,
            error_ratio=measured.error_ratio,
            p95_seconds=measured.p95_seconds,
            min_requests=limits.min_requests,
            max_error_ratio=limits.max_error_ratio,
            max_p95_ms=limits.max_p95_ms,
            selector=selector,
            reason=verdict.reason,
            actor=adapters.actor(),
        )
        noted = " (not recorded: --no-record)"
        if not args.no_record:
            noted = f"; recorded verification #{store.add(record).id}"
        what = f"{args.stack} ({short_digest(deployed.digest)})"
        if verdict.result == "passed":
            print(f"verified {what}: {verdict.reason}{noted}")
            return 0
        if verdict.result == "inconclusive":
            raise PipelineError(f"cannot judge {what}: {verdict.reason}{noted}")
        ending = ""
        if args.rollback_on_failure:
            try:
                ending = "; " + _roll_back(args, adapters, project, store, deployed, record)
            except PipelineError as exc:  # still a failed verification: say both
                ending = f"; the rollback failed: {exc}"
        raise VerificationFailed(f"verification of {what} failed: {verdict.reason}{noted}{ending}")
    finally:
        store.close()
