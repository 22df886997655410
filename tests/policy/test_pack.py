"""The pack loads the way `pulumi preview --policy-pack policy` loads it, and answers over gRPC.

Pulumi starts a Python pack through its `pulumi-analyzer-policy-python` shim: working
directory the pack, `<virtualenv>/bin/python -u -m pulumi.policy ENGINE .` with the
virtualenv of PulumiPolicy.yaml, then reads the port the pack prints and calls the Analyzer
service. This test does the same in a child process (constructing `PolicyPack` never returns,
so it stays out of this process), bounded in time, and stops it by its pid.
"""

from __future__ import annotations

import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy.rules import POLICIES

START_TIMEOUT = 30.0
CALL_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def analyzer(project_root: Path) -> Iterator[Any]:
    pack = project_root / "policy"
    manifest = yaml.safe_load((pack / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert manifest["runtime"]["name"] == "python"
    # Not resolved: the venv's python is a symlink, and only its own path selects the venv.
    python = pack / manifest["runtime"]["options"]["virtualenv"] / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"the pack's virtualenv has no {python} (run make setup)")
    # The pack does not dial the engine to answer these calls: nothing listens on port 1.
    proc = subprocess.Popen(
        [str(python), "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=pack,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        port = proc.stdout.readline().decode().strip() if ready else ""
        if not port.isdigit():
            proc.kill()
            _, err = proc.communicate(timeout=CALL_TIMEOUT)
            pytest.fail(f"the pack did not print its port: {err.decode()[-2000:]}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        proc.kill()
        proc.wait(timeout=CALL_TIMEOUT)


def _analyze(stub: Any, rtype: str, props: dict[str, Any], stack: str = "staging") -> list[Any]:
    struct = struct_pb2.Struct()
    struct.update(props)
    request = analyzer_pb2.AnalyzeRequest(
        type=rtype,
        properties=struct,
        urn=f"urn:pulumi:{stack}::cv-platform::{rtype}::res",
        name="res",
    )
    return list(stub.Analyze(request, timeout=CALL_TIMEOUT).diagnostics)


def test_pack_announces_every_rule_as_mandatory(analyzer: Any) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
    assert info.name == "cv-platform"
    assert [p.name for p in info.policies] == [p.name for p in POLICIES]
    mandatory = analyzer_pb2.EnforcementLevel.Value("MANDATORY")
    assert {p.enforcementLevel for p in info.policies} == {mandatory}


def test_pack_reports_a_violation_with_its_rule(analyzer: Any) -> None:
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"}}
    open_lb = {**service, "spec": {"type": "LoadBalancer"}}
    (diagnostic,) = _analyze(analyzer, "kubernetes:core/v1:Service", open_lb)
    assert diagnostic.policyName == "load-balancer-source-ranges"
    assert "has no spec.loadBalancerSourceRanges" in diagnostic.message


def test_pack_passes_a_compliant_resource(analyzer: Any) -> None:
    allowed = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "lb"},
        "spec": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]},
    }
    assert _analyze(analyzer, "kubernetes:core/v1:Service", allowed) == []
