#!/usr/bin/env python3
"""Stand-in for Trivy (aquasecurity/trivy 0.73) in the stage-script tests: no scanner
and no DB download can run here. It behaves as the real CLI does where ci/scan and
ci/scanner-db depend on it (read from Trivy's source: pkg/db/db.go, pkg/flag,
cmd/trivy/main.go):

- every call is logged to $STUB_LOG (argv; of TRIVY_USERNAME/TRIVY_PASSWORD only
  whether they are set);
- an unknown flag: cobra's "Error: unknown flag: --x", exit 1; a fatal error is one
  "<time>\tFATAL\tFatal error\t..." line on stderr and exit 1 (log.Fatal);
- ``image --download-db-only`` / ``--download-java-db-only``: writes
  CACHE/db/{trivy.db,metadata.json} (or java-db/{trivy-java.db,metadata.json}) with
  Version, NextUpdate, UpdatedAt and DownloadedAt; $STUB_TRIVY_DOWNLOAD_FAILS=N
  makes the first N downloads fail as ghcr.io's rate limit does (TOOMANYREQUESTS);
- ``image --skip-db-update`` without db/trivy.db or metadata.json: "--skip-db-update
  cannot be specified on the first run", exit 1; without --skip-db-update it would
  download, which the stand-in refuses (exit 1);
- ``image ... REPO@DIGEST``: asks the registry for the manifest (plain HTTP for a
  loopback host, Basic auth from TRIVY_USERNAME/TRIVY_PASSWORD): 401 or 404 is a
  fatal error; otherwise a Trivy JSON report (SchemaVersion 2) of a Debian image
  is written to --output, with $STUB_TRIVY_FINDINGS (a JSON list of [id, severity,
  package, installed, fixed or null]) as its vulnerabilities, and it exits 0 even
  with findings (--exit-code N makes it exit N then, as the real one does).
  $STUB_TRIVY_NO_OS=1: an image whose OS Trivy does not detect (no Metadata.OS, no
  os-pkgs result), still exit 0.
"""

import base64
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

VALUED = {"--format", "--output", "--cache-dir", "--scanners", "--timeout", "--exit-code"}
SWITCHES = {
    "--skip-db-update",
    "--skip-java-db-update",
    "--download-db-only",
    "--download-java-db-only",
    "--no-progress",
    "--insecure",
    "--quiet",
}


def fatal(message: str) -> int:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp}\tFATAL\tFatal error\t{message}", file=sys.stderr)
    return 1


def parse(argv: list[str]) -> tuple[dict[str, str], set[str], list[str]] | str:
    values: dict[str, str] = {}
    switches: set[str] = set()
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in VALUED:
            values[arg] = argv[i + 1]
            i += 2
            continue
        if arg in SWITCHES:
            switches.add(arg)
        elif arg.startswith("-"):
            return arg
        else:
            rest.append(arg)
        i += 1
    return values, switches, rest


def download(cache: Path, kind: str) -> int:
    counter = Path(os.environ["STUB_LOG"]).with_name("trivy-downloads")
    done = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(done + 1))
    if done < int(os.environ.get("STUB_TRIVY_DOWNLOAD_FAILS", "0")):
        repo = (
            "ghcr.io/aquasecurity/trivy-db:2"
            if kind == "db"
            else "ghcr.io/aquasecurity/trivy-java-db:1"
        )
        return fatal(
            f"init error: DB error: failed to download vulnerability DB: OCI artifact error: "
            f"failed to download artifact from {repo}: GET https://ghcr.io/v2/: TOOMANYREQUESTS: "
            "retry-after: 59.72s, allowed: 44000/minute"
        )
    folder = cache / kind
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    (folder / ("trivy.db" if kind == "db" else "trivy-java.db")).write_bytes(b"stub db\n")
    meta = {
        "Version": 2 if kind == "db" else 1,
        "NextUpdate": (now + timedelta(hours=24)).isoformat().replace("+00:00", "Z"),
        "UpdatedAt": (now - timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
        "DownloadedAt": now.isoformat().replace("+00:00", "Z"),
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    return 0


def manifest_error(target: str) -> str | None:
    """What the registry says about REPO@DIGEST (None: it serves it)."""
    name, _, digest = target.partition("@")
    host, _, repository = name.partition("/")
    request = urllib.request.Request(
        f"http://{host}/v2/{repository}/manifests/{digest}",
        method="HEAD",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    user, password = os.environ.get("TRIVY_USERNAME"), os.environ.get("TRIVY_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10):
            return None
    except urllib.error.HTTPError as exc:
        code = {401: "UNAUTHORIZED: authentication required", 404: "MANIFEST_UNKNOWN"}
        return code.get(exc.code, f"HTTP {exc.code}")
    except OSError as exc:
        return f"dial tcp {host}: {exc}"


def report(target: str) -> dict[str, object]:
    no_os = os.environ.get("STUB_TRIVY_NO_OS") == "1"
    vulns = [
        {
            "VulnerabilityID": vid,
            "PkgName": pkg,
            "InstalledVersion": installed,
            "Severity": severity,
            "Title": f"{pkg}: a vulnerability",
            **({"FixedVersion": fixed} if fixed else {}),
        }
        for vid, severity, pkg, installed, fixed in json.loads(
            os.environ.get("STUB_TRIVY_FINDINGS", "[]")
        )
    ]
    result: dict[str, object] = {
        "Target": f"{target} (debian 12.11)",
        "Class": "os-pkgs",
        "Type": "debian",
    }
    if vulns:
        result["Vulnerabilities"] = vulns
    metadata: dict[str, object] = {"RepoDigests": [target]}
    if not no_os:
        metadata["OS"] = {"Family": "debian", "Name": "12.11"}
    return {
        "SchemaVersion": 2,
        "Trivy": {"Version": "0.73.0"},
        "CreatedAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "ArtifactName": target,
        "ArtifactType": "container_image",
        "Metadata": metadata,
        **({} if no_os else {"Results": [result]}),
    }


def main(argv: list[str]) -> int:
    env = os.environ
    facts = {name: True for name in ("TRIVY_USERNAME", "TRIVY_PASSWORD") if env.get(name)}
    with open(env["STUB_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps({"tool": "trivy", "argv": argv, "env": facts}) + "\n")
    if not argv or argv[0] != "image":
        print("Error: only `trivy image` is stood in for", file=sys.stderr)
        return 1
    parsed = parse(argv[1:])
    if isinstance(parsed, str):
        print(f"Error: unknown flag: {parsed}", file=sys.stderr)
        return 1
    values, switches, rest = parsed
    cache = Path(
        values.get("--cache-dir", Path(env.get("HOME", "/nonexistent")) / ".cache" / "trivy")
    )
    if "--download-db-only" in switches:
        return download(cache, "db")
    if "--download-java-db-only" in switches:
        return download(cache, "java-db")
    if "--skip-db-update" not in switches:
        return fatal("init error: DB error: the stand-in downloads nothing: pass --skip-db-update")
    if not (cache / "db" / "trivy.db").is_file() or not (cache / "db" / "metadata.json").is_file():
        return fatal(
            "run error: init error: DB error: --skip-db-update cannot be specified on the first run"
        )
    (target,) = rest
    problem = manifest_error(target)
    if problem is not None:
        scan_error = "run error: image scan error: scan error"
        return fatal(f"{scan_error}: unable to initialize a scan service: {problem}")
    written = report(target)
    text = json.dumps(written, indent=2)
    if "--output" in values:
        Path(values["--output"]).write_text(text + "\n")
    else:
        print(text)
    found = bool(json.loads(env.get("STUB_TRIVY_FINDINGS", "[]")))
    return int(values.get("--exit-code", "0")) if found else 0


sys.exit(main(sys.argv[1:]))
