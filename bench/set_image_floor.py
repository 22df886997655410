"""Not a tool: the least a Python ``set-image`` must do, to measure the floor under it.

Resolves one tag with one ``HEAD`` to a loopback registry (plain HTTP, Basic auth
sent at once, so no challenge round trip), then rewrites the ``digest:`` line of a
stack file as ``pipeline set-image`` writes one: under an exclusive ``flock``,
re-checked against a writer that replaced the file meanwhile, through a fsynced
temporary file renamed over it, the directory fsynced. No YAML reader, no reference
grammar, no policy, no retries, no error handling: everything ``pipeline set-image``
does beyond this is what its start-up pays for. ``bench_images`` runs it beside
``skopeo inspect``.

    python bench/set_image_floor.py 127.0.0.1:PORT REPOSITORY TAG STACK_FILE
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


def resolve(host: str, repository: str, tag: str) -> str:
    address, _, port = host.partition(":")
    if address != "127.0.0.1" or not port.isdigit():
        # Plain HTTP with the login in the first packet: never anywhere but loopback.
        raise SystemExit(f"{host}: the floor speaks plain HTTP to 127.0.0.1:PORT only")
    with open(os.path.join(os.environ["DOCKER_CONFIG"], "config.json"), encoding="utf-8") as f:
        auth = json.load(f)["auths"][host]["auth"]
    with socket.create_connection((address, int(port)), timeout=5) as conn:
        conn.sendall(
            f"HEAD /v2/{repository}/manifests/{tag} HTTP/1.1\r\nHost: {host}\r\n"
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
        status = head.split(b"\r\n", 1)[0]
        raise SystemExit(f"no digest in the answer (status line {status!r})")
    return found.group(1).decode()


def rewrite(path: str, digest: str) -> None:
    while True:
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            break  # still the file that was locked, not one a writer renamed over it
        os.close(fd)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = re.sub(r"(?m)^(\s*digest: )sha256:[0-9a-f]{64}", lambda m: m.group(1) + digest, text)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as f:
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("host", "repository", "tag", "stack_file"):
        parser.add_argument(name)
    args = parser.parse_args()
    digest = resolve(args.host, args.repository, args.tag)
    rewrite(args.stack_file, digest)
    print(digest)


if __name__ == "__main__":
    main()
