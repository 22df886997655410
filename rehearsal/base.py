"""The Python base image, made from Debian's mirror when Docker Hub is out of reach.

model/Dockerfile builds FROM ``PYTHON_IMAGE``, pinned to
``python:3.11-slim-bookworm@sha256:...``. Where that cannot be pulled (no Docker
Hub, as on this CI machine), the rehearsal builds the same Dockerfile with
``--build-arg PYTHON_IMAGE=<this base by digest>``: Debian 12 (bookworm) minbase
with its Python 3.11, the interpreter production runs (the pin was moved from
3.12 to 3.11 so that both agree).

Made once with debootstrap from the mirror apt uses, then cached under
``build/rehearsal/cache``: the root filesystem as a tarball keyed by the recipe
below, and the imported image as a ``docker save`` tarball, so that a later run
loads the very same image ID and the registry digest stays the same. The host's
CA bundle is added, because pip inside the build must trust what the host trusts
(some networks re-sign TLS), and Debian's EXTERNALLY-MANAGED marker is removed,
as the python:*-slim images do, so pip may install into the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from rehearsal.engine import DockerEngine
from rehearsal.proc import StageFailed, run

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Everything that makes the image; its hash keys the cache.
RECIPE = (
    f"debootstrap --variant=minbase --include={','.join(PACKAGES)} {SUITE}; "
    "host CA bundle added; EXTERNALLY-MANAGED removed; apt lists, docs, man pages removed; "
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
)
IMPORT_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)


def recipe_key() -> str:
    return hashlib.sha256(RECIPE.encode()).hexdigest()[:16]


def apt_mirror() -> str:
    """The first Debian mirror apt uses here (deb822 or one-line sources)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    sources = Path("/etc/apt/sources.list")
    if sources.exists():
        for line in sources.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["deb"] and len(parts) > 1:
                return parts[2] if parts[1].startswith("[") else parts[1]
    return "http://deb.debian.org/debian"


def _unmount_under(root: Path) -> None:
    mounts = run(["findmnt", "-rn", "-o", "TARGET"], timeout=10).stdout.splitlines()
    for mount in sorted((m for m in mounts if m.startswith(f"{root}/")), reverse=True):
        run(["umount", "-l", mount], timeout=10)


def rootfs_tarball(cache: Path, log: Path) -> Path:
    """The cached root filesystem, made with debootstrap when missing (a few minutes)."""
    tarball = cache / f"base-{recipe_key()}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        raise StageFailed("debootstrap is missing (Debian package debootstrap)")
    (cache / "debs").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="rootfs.", dir=cache))
    rootfs = work / "rootfs"
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                f"--cache-dir={cache / 'debs'}",
                SUITE,
                str(rootfs),
                apt_mirror(),
            ],
            timeout=1200,
            log=log,
            check="debootstrap",
        )
        extra = rootfs / "usr/local/share/ca-certificates/host-bundle.crt"
        shutil.copyfile(HOST_CA_BUNDLE, extra)
        run(
            ["chroot", str(rootfs), "update-ca-certificates"],
            timeout=120,
            log=log,
            check="update-ca-certificates",
        )
        for marker in rootfs.glob("usr/lib/python3.*/EXTERNALLY-MANAGED"):
            marker.unlink()
        for pattern in (
            "var/lib/apt/lists/*",
            "var/cache/apt/*.bin",
            "var/cache/apt/archives/*.deb",
            "usr/share/doc/*",
            "usr/share/man/*",
            "usr/share/info/*",
            "var/log/*",
        ):
            for path in rootfs.glob(pattern):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        (rootfs / "etc/resolv.conf").write_text("")
        partial = tarball.with_suffix(".partial")
        run(
            ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(partial), "."],
            timeout=600,
            log=log,
            check="tar the root filesystem",
        )
        partial.rename(tarball)
        return tarball
    finally:
        _unmount_under(rootfs)
        shutil.rmtree(work, ignore_errors=True)


def ensure_base_image(
    engine: DockerEngine, cache: Path, registry: str, log: Path
) -> tuple[str, bool]:
    """The base image pushed to ``registry``, by digest; and whether it was cached."""
    key = recipe_key()
    name = f"rehearsal/python-base:{key}"
    saved = cache / f"base-{key}.docker.tar"
    cached = saved.exists()
    if engine.docker("image", "inspect", name, timeout=30, log=False).returncode != 0:
        if cached:
            engine.docker("load", "-q", "-i", str(saved), timeout=300, check="docker load")
        else:
            tarball = rootfs_tarball(cache, log)
            changes = [arg for change in IMPORT_CHANGES for arg in ("--change", change)]
            engine.docker(
                "import", *changes, str(tarball), name, timeout=600, check="docker import"
            )
            engine.docker("save", "-o", str(saved), name, timeout=600, check="docker save")
    remote = f"{registry}/{name}"
    engine.docker("tag", name, remote, timeout=30, check="tag")
    engine.docker("push", remote, timeout=600, check="push to the local registry")
    digests = engine.docker(
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        remote,
        timeout=30,
        check="read its digest",
    ).stdout
    repository = remote.rsplit(":", 1)[0]
    found = [d for d in json.loads(digests or "[]") if d.startswith(f"{repository}@sha256:")]
    if not found:
        raise StageFailed(f"no registry digest for {remote} (got {digests.strip()})")
    digest = found[0]
    return digest, cached
