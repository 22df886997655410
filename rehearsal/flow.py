"""The delivery flow, stage by stage, with the stage scripts the Jenkinsfile runs.

Everything runs under ``build/rehearsal/`` of the checkout: a throwaway git
worktree of the current commit (the checkout's own stack files never change),
the engine's and the registry's data (kept between runs, so a second run reuses
the base image and the layers), the record store of this run, and the report.
The ci/ scripts get Jenkins' environment semantics: a variable whose value would
be empty is left unset.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rehearsal.base import ensure_base_image
from rehearsal.engine import DockerEngine
from rehearsal.load import Load
from rehearsal.proc import StageFailed, last_line, run
from rehearsal.prometheus import RehearsalPrometheus
from rehearsal.registry import LocalRegistry, Login

REPOSITORY = "cv-platform/model-server"
STACKS = ("staging", "prod")
# The prod stack's soak, shortened in the throwaway worktree only (and said so).
REHEARSAL_SOAK_MINUTES = 0
# Verification over a short window of a bounded load (ci/verify options, said so):
# requests per second to each replica, from the deploy until its verification.
VERIFY_WINDOW = "20s"
VERIFY_MIN_REQUESTS = "30"
LOAD_RATE = 8.0
LOAD_SECONDS = 180.0


@dataclass
class Stage:
    name: str
    status: str = "not run"  # passed | failed | not run
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Run:
    checkout: Path
    root: Path  # build/rehearsal
    variant: str = ""
    ready_seconds: float = 120.0
    stages: list[Stage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def worktree(self) -> Path:
        return self.root / "worktree"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


def on_hold(events: list[dict[str, Any]] | None) -> bool | None:
    """Whether a stack's newest hold event (of ``events``, newest first) placed a hold."""
    if events is None:
        return None
    last = next((e for e in events if e["event"] == "hold"), None)
    return last is not None and last["action"] == "placed"


def rolled_back_to(events: list[dict[str, Any]] | None) -> str | None:
    """The digest a stack's newest rollback returned it to (None: none, or unknown)."""
    last = next((e for e in events or () if e["event"] == "rollback"), None)
    return None if last is None else str(last["to_digest"])


def say(text: str) -> None:
    print(f"rehearsal: {text}", flush=True)


def jenkins_env(*layers: Mapping[str, str | None]) -> dict[str, str]:
    """Jenkins' rule (hudson.EnvVars.override): an empty value removes the variable."""
    env: dict[str, str] = {}
    for layer in layers:
        for key, value in layer.items():
            if value:
                env[key] = value
            else:
                env.pop(key, None)
    return env


class Rehearsal:
    def __init__(self, run_: Run) -> None:
        self.run = run_
        self.engine = DockerEngine(run_.root / "engine", run_.logs / "engine.log")
        self.registry = LocalRegistry(run_.root / "registry", run_.logs / "registry.log")
        self.prometheus = RehearsalPrometheus(
            run_.root / "prometheus", run_.logs / "prometheus.log"
        )
        self.login: Login | None = None
        self.base = ""
        self.loads: dict[str, Load] = {}

    # --- plumbing ------------------------------------------------------------------------

    def stage(self, name: str, body: Callable[[], str | None]) -> None:
        stage = Stage(name)
        self.run.stages.append(stage)
        say(f"{name} ...")
        started = time.monotonic()
        try:
            stage.detail = body() or ""
        except StageFailed as exc:
            stage.status, stage.detail = "failed", str(exc)
            raise StageFailed(f"{name}: {exc}") from None
        except BaseException:
            stage.status = "interrupted"
            raise
        finally:
            stage.seconds = round(time.monotonic() - started, 1)
        stage.status = "passed"
        say(
            f"{name}: passed in {stage.seconds:.1f} s{f' ({stage.detail})' if stage.detail else ''}"
        )

    def ci(
        self,
        script: str,
        *args: str,
        timeout: float = 900,
        codes: tuple[int, ...] = (0,),
        **extra: str | None,
    ) -> str:
        """One ci/ script in the worktree, as a Jenkins sh step would run it; an exit code
        outside ``codes`` fails the stage."""
        assert self.login is not None
        env = jenkins_env(
            {k: v for k, v in os.environ.items() if k not in ("PULUMI_BACKEND_URL",)},
            self.engine.env,
            {
                "PYTHON": sys.executable,
                "IMAGE_REPOSITORY": f"{self.login.host}/{REPOSITORY}",
                "PIPELINE_STORE": str(self.run.root / "records.db"),
                "REGISTRY_USER": self.login.user,
                "REGISTRY_PASSWORD": self.login.password,
                "WORKSPACE_TMP": str(self.run.root / "tmp"),
                "REHEARSAL_RUN": str(self.run.root),
                "REHEARSAL_READY_SECONDS": str(self.run.ready_seconds),
                "PIPELINE_ACTOR": "rehearsal",
                # As the Jenkinsfile leaves it: the checkout's bytecode is written and reused.
                "PYTHONDONTWRITEBYTECODE": None,
            },
            extra,
        )
        log = self.run.logs / f"{script.replace('/', '-')}.log"
        done = run(
            ["bash", script, *args], timeout=timeout, env=env, cwd=self.run.worktree, log=log
        )
        if done.returncode not in codes:
            raise StageFailed(f"{script} {' '.join(args)}: {last_line(done.stderr or done.stdout)}")
        for line in done.stdout.splitlines():
            if line.startswith("rehearsal: "):
                print(line, flush=True)
        return done.stdout

    def state(self, key: str) -> str:
        return (self.run.worktree / "build" / "ci" / key).read_text().strip()

    # --- stages --------------------------------------------------------------------------

    def prepare(self) -> str:
        for sub in ("logs", "tmp", "bin", "cache"):
            (self.run.root / sub).mkdir(parents=True, exist_ok=True)
        (self.run.root / "records.db").unlink(missing_ok=True)
        for stale in self.run.root.glob("*.json"):
            stale.unlink()
        commit = run(
            ["git", "rev-parse", "HEAD"],
            timeout=30,
            cwd=self.run.checkout,
            check="read the current commit",
        ).stdout.strip()
        dirty = run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            timeout=30,
            cwd=self.run.checkout,
        ).stdout.strip()
        if dirty:
            say(f"the checkout has uncommitted changes: rehearsing {commit[:12]} without them")
        self.remove_worktree()
        run(
            ["git", "worktree", "add", "--detach", "--force", str(self.run.worktree), commit],
            timeout=120,
            cwd=self.run.checkout,
            check="make the throwaway worktree",
        )
        stand_in = Path(self.stand_in)
        stand_in.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rehearsal.deploy "$@"\n')
        stand_in.chmod(0o755)
        self.engine.start()
        self.login = self.registry.start()
        self.engine.login(self.login.host, self.login.user, self.login.password)
        prometheus = self.prometheus.start()
        self.run.facts["commit"] = commit
        return (
            f"commit {commit[:12]}, engine, registry {self.login.host} and "
            f"Prometheus {prometheus} up"
        )

    def base_image(self) -> str:
        assert self.login is not None
        self.base, cached = ensure_base_image(
            self.engine, self.run.root / "cache", self.login.host, self.run.logs / "base.log"
        )
        self.run.facts["base_cached"] = cached
        self.run.facts["base_image"] = self.base
        return f"{'cached' if cached else 'made from Debian'}: {self.base}"

    def build(self) -> str:
        self.ci("ci/begin")
        self.ci(
            "ci/build",
            CI_ENGINE="docker",
            BUILD_ARGS=f"PYTHON_IMAGE={self.base}",
            CI_BUILD_NETWORK="host",
            BUILDKIT_HOST=None,
        )
        image = self.state("image-source").removeprefix("docker-daemon:")
        self.run.facts["image_bytes"] = self.engine.image_size(image)
        self.run.facts["base_bytes"] = self.engine.image_size(self.base)
        model = self.labelled_model(image)
        return f"{self.state('build-seconds')} s, {model['name']} {model['version']}"

    def labelled_model(self, image: str) -> dict[str, Any]:
        """The card ci/build kept, and the built image's labels saying the same."""
        card = json.loads((self.run.worktree / "build" / "ci" / "model-card.json").read_text())
        done = self.engine.docker(
            "image", "inspect", "--format", "{{json .Config.Labels}}", image, timeout=30
        )
        labels = json.loads(done.stdout or "null") or {}
        model = {
            "name": card["model"]["name"],
            "version": card["model"]["version"],
            "accuracy": card["metrics"]["accuracy"],
            "latency_p95_ms": card.get("latency_ms", {}).get("p95"),
        }
        said = {
            "name": labels.get("io.cv-platform.model.name"),
            "version": labels.get("io.cv-platform.model.version"),
            "accuracy": float(labels.get("io.cv-platform.model.accuracy") or "nan"),
        }
        if said != {k: model[k] for k in said}:
            raise StageFailed(f"the image's labels {said} do not say what its card does {model}")
        self.run.facts["model"] = model
        return model

    def test(self) -> str:
        """The model's tests inside an image of the same Dockerfile (stage test)."""
        tag = f"rehearsal/model-tests:{self.state('image-tag')[:12]}"
        worktree = self.run.worktree
        started = time.monotonic()
        self.engine.docker(
            "build",
            "--network",
            "host",
            "--target",
            "test",
            "--build-arg",
            f"PYTHON_IMAGE={self.base}",
            "-t",
            tag,
            str(worktree / "model"),
            timeout=1800,
            check="build the test image (model/Dockerfile, --target test)",
        )
        junit = worktree / "build" / "junit"
        junit.mkdir(parents=True, exist_ok=True)
        model = worktree / "model"
        mounts = [
            arg
            for name in ("tests", "smoke_test.py", "gunicorn.conf.py", "Dockerfile")
            for arg in ("-v", f"{model / name}:/src/{name}:ro")
        ]
        done = self.engine.docker(
            "run", "--rm", "--network", "none", "-v", f"{junit}:/junit", *mounts, tag, timeout=900
        )
        seconds = time.monotonic() - started
        (worktree / "build" / "ci" / "test-seconds").write_text(f"{seconds:.3f}\n")
        if not (junit / "model.xml").exists():
            raise StageFailed(
                f"the model tests wrote no JUnit report: {last_line(done.stderr or done.stdout)}"
            )
        if done.returncode != 0:
            raise StageFailed(f"the model tests failed: {last_line(done.stdout)}")
        return last_line(done.stdout)

    def push(self) -> str:
        self.ci("ci/push")
        ref = self.state("image-ref")
        self.run.facts.setdefault("pushed", []).append(ref.rsplit("@", 1)[1])
        return ref

    def set_image(self) -> str:
        return last_line(self.ci("ci/set-image", "staging"))

    @property
    def stand_in(self) -> str:
        """What ci/deploy runs instead of ``pulumi up`` (CI_DEPLOY_COMMAND)."""
        return str(self.run.root / "bin" / "deploy-stand-in")

    def deploy(self, stack: str) -> str:
        try:
            self.ci("ci/deploy", stack, CI_DEPLOY_COMMAND=self.stand_in)
        except StageFailed as failed:
            # The stand-in's own line says why (ci/deploy's says only that it failed).
            log = (self.run.logs / "ci-deploy.log").read_text(errors="replace")
            reasons = [ln for ln in log.splitlines() if ln.startswith(f"deploy {stack}: ")]
            if not reasons:
                raise
            reason = reasons[-1].removeprefix(f"deploy {stack}: ")
            raise StageFailed(f"{reason}; recorded as a failed deployment") from failed
        replicas = json.loads((self.run.root / f"{stack}.json").read_text())["replicas"]
        # Traffic for the verification, from now until it has judged the stack.
        self.loads[stack] = Load(
            replicas, rate=LOAD_RATE, seconds=LOAD_SECONDS, budget=int(LOAD_RATE * LOAD_SECONDS)
        ).start()
        return f"{len(replicas)} replica(s), {replicas[0]}"

    def smoke(self, stack: str) -> str:
        replicas = json.loads((self.run.root / f"{stack}.json").read_text())["replicas"]
        for url in replicas:
            self.ci("ci/smoke", stack, url)
        return f"{len(replicas)} replica(s) answered"

    def verify(self, stack: str, *options: str) -> str:
        """``ci/verify STACK`` against the run's Prometheus, over the deploy's load."""
        placed = json.loads((self.run.root / f"{stack}.json").read_text())
        rules = self.prometheus.load_rules(stack, self.run.root / "render" / stack)
        replicas = placed["replicas"]
        if not self.prometheus.wait_scraped(placed["namespace"], len(replicas)):
            raise StageFailed(f"Prometheus did not scrape the {len(replicas)} {stack} replica(s)")
        say(
            f"{stack}: verify over {VERIFY_WINDOW} with at least {VERIFY_MIN_REQUESTS} requests "
            f"(rehearsal options of ci/verify), {len(replicas)} replica(s) under load, "
            f"{rules} rules of the rendered PrometheusRule loaded"
        )
        load = self.loads.pop(stack, None)
        before = self.verification(stack)
        failed: StageFailed | None = None
        try:
            self.ci(
                "ci/verify",
                stack,
                "--window",
                VERIFY_WINDOW,
                "--min-requests",
                VERIFY_MIN_REQUESTS,
                *options,
                PROMETHEUS_URL=self.prometheus.url,
                CI_DEPLOY_COMMAND=self.stand_in,  # a rollback redeploys through ci/deploy
            )
        except StageFailed as exc:
            failed = exc
        finally:
            if load is not None:
                load.stop()
        sent = sum(load.sent(url) for url in replicas) if load is not None else 0
        found = self.verification(stack)
        if found is not None and found != before:
            # The report shows what was measured, also when the verification failed.
            found["sent"] = sent
            self.run.facts.setdefault("verifications", []).append(found)
        if failed is not None:
            raise failed
        if found is None or found == before:
            raise StageFailed(f"ci/verify {stack} passed but recorded no verification")
        return (
            f"{found['result']}: {found['requests']:.0f} requests, error ratio "
            f"{found['error_ratio'] * 100:.2f}%, p95 {found['p95_ms']:.0f} ms ({sent} sent)"
        )

    def history(self, stack: str) -> list[dict[str, Any]]:
        """The stack's events in the run's store, newest first (none before the first)."""
        if not (self.run.root / "records.db").exists():
            return []
        done = run(
            [sys.executable, "-m", "pipeline", "--store", str(self.run.root / "records.db"),
             "history", stack, "--json", "--limit", "50"],
            timeout=60, cwd=self.run.worktree, check=f"read {stack}'s history",
        )  # fmt: skip
        events: list[dict[str, Any]] = json.loads(done.stdout)
        return events

    def events(self, stack: str) -> list[dict[str, Any]] | None:
        """``history``, or None when it cannot be read (no worktree, the command failed,
        no JSON): the report is written whatever happened."""
        if not self.run.worktree.exists():
            return None
        try:
            return self.history(stack)
        except (StageFailed, ValueError):
            return None

    def verification(self, stack: str) -> dict[str, Any] | None:
        """The stack's latest verification in the run's store (None: none yet)."""
        last = next((e for e in self.history(stack) if e["event"] == "verification"), None)
        if last is None:
            return None
        return {
            "stack": stack,
            "id": last.get("id"),
            "result": last["result"],
            "requests": last["requests"],
            "error_ratio": last["error_ratio"],
            "p95_ms": None if last["p95_seconds"] is None else last["p95_seconds"] * 1000,
            "since": last["since"],
            "until": last["until"],
        }

    def record_ci(self) -> str:
        return last_line(self.ci("ci/record-ci"))

    def promote(self) -> str:
        prod = self.run.worktree / "Pulumi.prod.yaml"
        text = prod.read_text()
        prod.write_text(
            text.replace(
                "config:\n",
                f"config:\n  cv-platform:promotionSoakMinutes: {REHEARSAL_SOAK_MINUTES}\n",
                1,
            )
        )
        say(
            f"promotion soak shortened to {REHEARSAL_SOAK_MINUTES} min in the throwaway worktree's "
            "Pulumi.prod.yaml (a rehearsal setting; the committed prod stack keeps its own)"
        )
        say("no vulnerability scanner here: the vulnerabilities gate is skipped (and recorded)")
        # The model gates run for real on the recorded card: prod has never run a model,
        # so they must refuse (no card to compare with); then they are skipped, recorded.
        dry = self.ci(
            "ci/promote",
            "staging",
            "prod",
            "--skip-gate",
            "vulnerabilities",
            "--dry-run",
            codes=(3,),
        )
        refused = sorted(ln.split()[0] for ln in dry.splitlines() if ln.split()[1:2] == ["FAIL"])
        if refused != ["model-compatible", "model-quality"]:
            raise StageFailed(f"the dry run was refused by {refused}, not by the model gates")
        model = self.run.facts.get("model", {})
        if f"{model.get('accuracy', 0):.4f}" not in dry:
            raise StageFailed("the gate table does not show the candidate's recorded model card")
        say(
            "model gates: the candidate's card is recorded ("
            f"{model.get('name')} {model.get('version')}, accuracy {model.get('accuracy')}), "
            "but prod has never run a model to compare it with: they refuse, so this first "
            "promotion skips them (and records that it did)"
        )
        skips = ("vulnerabilities", "model-quality", "model-compatible")
        out = self.ci(
            "ci/promote", "staging", "prod", *(arg for g in skips for arg in ("--skip-gate", g))
        )
        return last_line(out)

    def promote_again(self) -> str:
        """A later promotion: prod runs a model with a recorded card now, so the model
        gates compare the candidate's card with it for real (only the scanner's is skipped)."""
        say("no vulnerability scanner here: the vulnerabilities gate is skipped (and recorded)")
        out = self.ci("ci/promote", "staging", "prod", "--skip-gate", "vulnerabilities")
        return last_line(out)

    # --- the whole ----------------------------------------------------------------------

    def remove_worktree(self) -> None:
        if self.run.worktree.exists():
            run(
                ["git", "worktree", "remove", "--force", str(self.run.worktree)],
                timeout=60,
                cwd=self.run.checkout,
            )
            shutil.rmtree(self.run.worktree, ignore_errors=True)
        run(["git", "worktree", "prune"], timeout=60, cwd=self.run.checkout)

    def stop_loads(self) -> None:
        for load in self.loads.values():
            load.stop()
        self.loads.clear()

    def cleanup(self) -> None:
        say("stopping what the rehearsal started ...")
        steps = (
            self.stop_loads,
            self.prometheus.stop,
            self.engine.stop,
            self.registry.stop,
            self.remove_worktree,
        )
        for step in steps:
            try:
                step()
            except (StageFailed, OSError, subprocess.SubprocessError) as exc:
                say(f"cleanup: {exc}")
        shutil.rmtree(self.run.root / "tmp", ignore_errors=True)
