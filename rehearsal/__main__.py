"""``make rehearse``: the whole delivery on real parts, on this machine.

    python -m rehearsal [--variant VARIANT] [--expect-failure STAGE]

Builds the model image from model/Dockerfile on a private Docker Engine, runs
the model's tests inside an image of it, pushes it to a local Distribution
registry with htpasswd auth, pins staging to it (set-image), deploys staging by
running the rendered Deployment as real containers (a stand-in for ``pulumi up``,
said once), smoke-tests it, verifies it against a real Prometheus scraping its
replicas under a bounded load, records the deployment and the CI run, promotes it
to prod through the gates, deploys, smoke-tests and verifies prod (with rollback
on failure), then reports each stage, the digest in each environment, the
verifications and M_CI/M_CD of this run (computed by ``pipeline metrics`` from the
run's own records) on stdout and in ``build/rehearsal/report.json``. Everything it
started is stopped on success, failure and Ctrl-C. A failed stage is one line
naming it and why, exit 1.

Variants break the workload on purpose (CI runs them; each must fail at
``--expect-failure``): ``rootfs-write`` makes the server write to its
read-only root filesystem, ``readiness-path`` gives the stack a readiness path
the server does not serve, ``prod-latency`` gives prod a latency limit no
replica meets, so prod's verification fails and, with nothing verified to roll
back to, must leave prod on hold. ``prod-rollback`` runs a second release after
the first one passed everywhere (a new commit that changes the server's code and
gives prod that limit): its prod verification fails, prod must be rolled back to
the first release's digest, redeployed and held.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from rehearsal.flow import STACKS, Rehearsal, Run, on_hold, rolled_back_to, say
from rehearsal.proc import StageFailed, run

VARIANTS = ("rootfs-write", "readiness-path", "prod-latency", "prod-rollback")
# The p95 limit (ms) of the prod-latency variant: far below any request's latency.
UNMEETABLE_P95_MS = 0.001


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise StageFailed(f"variant: {path.name} no longer has {old.strip()!r}; update rehearsal")
    path.write_text(text.replace(old, new, 1))


def apply_variant(rehearsal: Rehearsal) -> None:
    worktree = rehearsal.run.worktree
    variant = rehearsal.run.variant
    if variant == "rootfs-write":
        # Next to its code: writable where the tests run, read-only in the served image.
        _edit(
            worktree / "model" / "model_server" / "app.py",
            '    app = Flask("model_server")\n',
            '    Path(__file__).with_name(".started").write_text("started")\n'
            '    app = Flask("model_server")\n',
        )
        say("variant rootfs-write: the server writes a file next to its code at start")
    elif variant == "readiness-path":
        _edit(
            worktree / "Pulumi.staging.yaml",
            "config:\n",
            "config:\n  cv-platform:readinessPath: /not-served\n",
        )
        say("variant readiness-path: staging's readiness probe asks for /not-served")
    elif variant == "prod-rollback":
        say("variant prod-rollback: a second release follows the first, and must fail in prod")
    elif variant == "prod-latency":
        _limit_prod_latency(worktree)
        say(
            f"variant prod-latency: prod's verification allows a p95 of {UNMEETABLE_P95_MS} ms, "
            "which no replica meets"
        )


def _limit_prod_latency(worktree: Path) -> None:
    _edit(
        worktree / "Pulumi.prod.yaml",
        "  cv-platform:verification:\n",
        f"  cv-platform:verification:\n    maxP95LatencyMs: {UNMEETABLE_P95_MS}\n",
    )


def second_change(rehearsal: Rehearsal) -> str:
    """The second release's commit: a change to the server's code (so a new image) and
    prod's unmeetable latency limit."""
    worktree = rehearsal.run.worktree
    server = worktree / "model" / "model_server" / "__init__.py"
    server.write_text(server.read_text() + "# rehearsal: the second release\n")
    _limit_prod_latency(worktree)
    # The worktree's own repository, whatever the caller's git environment says; no
    # hooks, no signing, no automatic gc in the shared object store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    settings = ("user.name=rehearsal", "user.email=rehearsal@localhost",
                "commit.gpgsign=false", "gc.auto=0")  # fmt: skip
    git = ["git", "-C", str(worktree), *(arg for s in settings for arg in ("-c", s))]
    run([*git, "commit", "--quiet", "--no-verify", "-am", "rehearsal: the second release"],
        timeout=60, env=env, check="commit the second release")  # fmt: skip
    commit = run(
        [*git, "rev-parse", "HEAD"], timeout=30, env=env, check="read the commit"
    ).stdout.strip()
    say(
        f"variant prod-rollback: commit {commit[:12]} changes the server's code and gives "
        f"prod's verification a p95 limit of {UNMEETABLE_P95_MS} ms"
    )
    return f"commit {commit[:12]}"


def _prod_failed_and_held(data: dict[str, Any]) -> str | None:
    checks = [v for v in data["verifications"] if v["stack"] == "prod"]
    if not checks or checks[-1]["result"] != "failed":
        return f"prod's verification was {checks[-1]['result'] if checks else 'not recorded'}"
    if not data["held"].get("prod"):
        return "prod is not on hold after its failed verification"
    return None


def variant_problem(data: dict[str, Any]) -> str | None:
    """What a variant's run must have left besides its failed stage; None when it did."""
    variant = data["variant"]
    if variant not in ("prod-latency", "prod-rollback"):
        return None
    problem = _prod_failed_and_held(data)
    if problem:
        return problem
    if variant == "prod-latency":
        # Prod had never passed a verification: nothing to roll back to, so hold only.
        rolled = data["rolled_back"].get("prod")
        return None if rolled is None else f"prod was rolled back to {rolled}: hold only expected"
    first, second = (data["pushed"] + [None, None])[:2]
    if first is None or second is None or first == second:
        return f"the two releases did not push two images (pushed {data['pushed']})"
    if data["rolled_back"].get("prod") != first:
        return f"prod was rolled back to {data['rolled_back'].get('prod')}, not to {first}"
    running = {env["stack"]: env["digest"] for env in data["environments"]}
    if running.get("prod") != first:
        return f"prod runs {running.get('prod')} after the rollback, not {first}"
    return None


def metrics(rehearsal: Rehearsal) -> dict[str, Any]:
    done = run(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--store",
            str(rehearsal.run.root / "records.db"),
            "metrics",
            "--format",
            "json",
            "--window",
            "1d",
            "--stack",
            "staging",
            "--stack",
            "prod",
        ],
        timeout=120,
        cwd=rehearsal.run.worktree,
        check="compute the run's metrics",
    )
    data: dict[str, Any] = json.loads(done.stdout)
    return {
        k: data.get(k)
        for k in ("m_ci_minutes", "m_cd", "t_c_minutes", "t_t_minutes", "t_d_minutes", "p_t", "p_d")
    }


def environments(rehearsal: Rehearsal) -> list[dict[str, Any]]:
    found = []
    for stack in STACKS:
        path = rehearsal.run.root / f"{stack}.json"
        image = json.loads(path.read_text())["image"] if path.exists() else None
        digest = image.rsplit("@", 1)[1] if image and "@" in image else None
        found.append({"stack": stack, "image": image, "digest": digest})
    return found


def report(rehearsal: Rehearsal, started: float, failure: str) -> dict[str, Any]:
    facts = rehearsal.run.facts
    standing = {stack: rehearsal.events(stack) for stack in STACKS}  # one read per stack
    data = {
        "commit": facts.get("commit"),
        "variant": rehearsal.run.variant or None,
        "result": "failed" if failure else "passed",
        "failure": failure or None,
        "seconds": round(time.monotonic() - started, 1),
        "base_image_cached": facts.get("base_cached"),
        "stages": [
            {"name": s.name, "status": s.status, "seconds": s.seconds, "detail": s.detail}
            for s in rehearsal.run.stages
        ],
        "environments": environments(rehearsal),
        "metrics": facts.get("metrics"),
        "verifications": facts.get("verifications", []),
        "held": {stack: on_hold(events) for stack, events in standing.items()},
        "rolled_back": {stack: rolled_back_to(events) for stack, events in standing.items()},
        "pushed": facts.get("pushed", []),
        "image": {"bytes": facts.get("image_bytes"), "base_bytes": facts.get("base_bytes")},
        "model": facts.get("model"),
    }
    return data


def print_report(data: dict[str, Any]) -> None:
    print()
    print(f"{'stage':<20} {'result':<8} {'seconds':>8}")
    for stage in data["stages"]:
        print(f"{stage['name']:<20} {stage['status']:<8} {stage['seconds']:>8.1f}")
    for env in data["environments"]:
        print(f"{env['stack']:<8} {env['digest'] or '(not deployed)'}")
    for check in data.get("verifications") or []:
        p95 = "n/a" if check["p95_ms"] is None else f"{check['p95_ms']:.0f} ms"
        ratio = "n/a" if check["error_ratio"] is None else f"{check['error_ratio'] * 100:.2f}%"
        print(
            f"verify {check['stack']:<8} {check['result']:<12} {check['requests'] or 0:.0f} "
            f"requests, error ratio {ratio}, p95 {p95} ({check['sent']} sent)"
        )
    held = [stack for stack, is_held in data["held"].items() if is_held]
    if held:
        print(f"on hold: {', '.join(held)}")
    m = data.get("metrics") or {}
    if m:
        ci = m.get("m_ci_minutes")
        cd = m.get("m_cd")
        print(
            f"M_CI {ci:.2f} min" if ci is not None else "M_CI n/a",
            f"M_CD {cd:.3f}" if cd is not None else "M_CD n/a",
            sep="   ",
        )
    image = data["image"]
    if image.get("bytes") and image.get("base_bytes"):
        mib = image["bytes"] / 2**20, image["base_bytes"] / 2**20
        print(f"image {mib[0]:.0f} MiB on a {mib[1]:.0f} MiB base")
    model = data.get("model") or {}
    if model:
        print(
            f"model {model['name']} {model['version']}, accuracy {model['accuracy']}, "
            f"p95 {model.get('latency_p95_ms')} ms (card recorded, image labelled)"
        )
    cold = "warm (base cached)" if data["base_image_cached"] else "cold (base made)"
    print(f"{data['result']} in {data['seconds']:.0f} s, {cold}")


# One commit's way from build to a verified prod, in order.
RELEASE_STAGES = (
    "build",
    "test",
    "push",
    "set image staging",
    "deploy staging",
    "smoke staging",
    "verify staging",
    "record ci",
    "promote",
    "deploy prod",
    "smoke prod",
    "verify prod",
)


def stage_names(variant: str) -> list[str]:
    """Every stage a run of ``variant`` ("" for none) goes through when nothing fails."""
    names = ["prepare", "base image", *RELEASE_STAGES]
    if variant == "prod-rollback":
        names += ["second change", *(f"{name} 2" for name in RELEASE_STAGES)]
    return names


def release(rehearsal: Rehearsal, *, second: bool = False) -> None:
    """``RELEASE_STAGES`` for one commit (their names end in " 2" the second time)."""
    bodies: tuple[Callable[[], str | None], ...] = (
        rehearsal.build,
        rehearsal.test,
        rehearsal.push,
        rehearsal.set_image,
        lambda: rehearsal.deploy("staging"),
        lambda: rehearsal.smoke("staging"),
        lambda: rehearsal.verify("staging"),
        rehearsal.record_ci,
        rehearsal.promote_again if second else rehearsal.promote,
        lambda: rehearsal.deploy("prod"),
        lambda: rehearsal.smoke("prod"),
        lambda: rehearsal.verify("prod", "--rollback-on-failure"),
    )
    for name, body in zip(RELEASE_STAGES, bodies, strict=True):
        rehearsal.stage(f"{name} 2" if second else name, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rehearsal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variant", choices=VARIANTS, help="break the workload on purpose")
    parser.add_argument(
        "--expect-failure",
        metavar="STAGE",
        help="succeed only if the run fails at STAGE (with --variant)",
    )
    args = parser.parse_args(argv)
    if args.expect_failure and args.expect_failure not in stage_names(args.variant or ""):
        parser.error(
            f"--expect-failure {args.expect_failure!r} is not a stage of this run: "
            f"{', '.join(stage_names(args.variant or ''))}"
        )
    checkout = Path(run(["git", "rev-parse", "--show-toplevel"], timeout=30).stdout.strip() or ".")
    root = checkout / "build" / "rehearsal"
    rehearsal = Rehearsal(
        Run(
            checkout,
            root,
            variant=args.variant or "",
            ready_seconds=20.0 if args.variant else 120.0,
        )
    )
    signal.signal(signal.SIGTERM, _terminate)
    started = time.monotonic()
    failure = ""
    exit_code = 0
    say(
        "no Pulumi CLI and kube context here: deploys stand in for pulumi up "
        "(render the stack, run its Deployment on the engine)"
    )
    try:
        rehearsal.stage("prepare", rehearsal.prepare)
        if args.variant:
            apply_variant(rehearsal)
        rehearsal.stage("base image", rehearsal.base_image)
        release(rehearsal)
        if args.variant == "prod-rollback":
            rehearsal.stage("second change", lambda: second_change(rehearsal))
            release(rehearsal, second=True)
        rehearsal.run.facts["metrics"] = metrics(rehearsal)
    except StageFailed as exc:
        failure = str(exc)
        exit_code = 1
    except KeyboardInterrupt:
        failure = "interrupted"
        exit_code = 130
    finally:
        # The report reads the run's records (subprocesses): whatever it raises, even a
        # second Ctrl-C, everything the rehearsal started is still stopped.
        data: dict[str, Any] = {}
        try:
            data = report(rehearsal, started, failure)
        finally:
            try:
                rehearsal.cleanup()
            finally:
                if data:
                    root.mkdir(parents=True, exist_ok=True)
                    (root / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    print_report(data)
    if failure:
        print(f"rehearsal failed: {failure}", file=sys.stderr)
    if args.expect_failure:
        failed = [s["name"] for s in data["stages"] if s["status"] == "failed"]
        if failed != [args.expect_failure]:
            print(
                f"rehearsal: expected a failure at {args.expect_failure}, got "
                f"{failed[0] if failed else 'none'}",
                file=sys.stderr,
            )
            return 1
        problem = variant_problem(data)
        if problem:
            print(f"rehearsal: {args.expect_failure} failed, but {problem}", file=sys.stderr)
            return 1
        say(f"failed at {args.expect_failure}, as expected for variant {args.variant}")
        return 0
    shutil.rmtree(root / "render", ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
