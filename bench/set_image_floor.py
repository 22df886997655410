"""Not a tool: the least a Python ``set-image`` must do, to measure the floor under it.

Resolves one tag with one ``HEAD`` (Basic auth sent at once, so no challenge round
trip), then rewrites the ``digest:`` line of a stack file under an exclusive lock,
through a fsynced temporary file. No YAML reader, no reference grammar, no policy,
no retries, no error handling: everything ``pipeline set-image`` does beyond this is
what its start-up pays for. ``bench_images`` runs it beside ``skopeo inspect``.

    python bench/set_image_floor.py HOST REPOSITORY TAG STACK_FILE
"""

import argparse
import fcntl
import json
import os
import re
import socket

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("host", "repository", "tag", "stack_file"):
        parser.add_argument(name)
    args = parser.parse_args()
    with open(os.path.join(os.environ["DOCKER_CONFIG"], "config.json"), encoding="utf-8") as f:
        auth = json.load(f)["auths"][args.host]["auth"]
    address, _, port = args.host.partition(":")
    with socket.create_connection((address, int(port or 443)), timeout=5) as conn:
        conn.sendall(
            f"HEAD /v2/{args.repository}/manifests/{args.tag} HTTP/1.1\r\nHost: {args.host}\r\n"
            f"Authorization: Basic {auth}\r\nAccept: {ACCEPT}\r\nConnection: close\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(65536)
            if not chunk:
                break
            head += chunk
    found = re.search(rb"(?im)^docker-content-digest: *(sha256:[0-9a-f]{64})", head)
    if found is None:
        raise SystemExit(f"no digest in the answer: {head[:80]!r}")
    digest = found.group(1).decode()
    fd = os.open(args.stack_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with open(args.stack_file, encoding="utf-8") as f:
            text = f.read()
        new = re.sub(r"(?m)^(\s*digest: )sha256:[0-9a-f]{64}", lambda m: m.group(1) + digest, text)
        temporary = f"{args.stack_file}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, args.stack_file)
    finally:
        os.close(fd)
    print(digest)


if __name__ == "__main__":
    main()
