"""``pulumi stack history --json`` as deployments (pure).

The documented JSON (pulumi/pulumi ``pkg/cmd/pulumi/stack/stack_history.go``,
``updateInfoJSON``)::

    [{"version": 12, "kind": "update", "startTime": "2026-11-20T10:00:01.000Z",
      "message": "...", "environment": {"git.head": "<sha>", ...},
      "config": {"cv-platform:image": {"value": "{...}", "objectValue": {...},
                                        "secret": false}},
      "result": "succeeded", "endTime": "2026-11-20T10:02:31.000Z",
      "resourceChanges": {"same": 9, "update": 1}}]

``kind`` is update, preview, refresh, destroy, import or rename; ``result`` is
succeeded, failed or in-progress (then ``endTime`` is absent). Times are
RFC 5424 strings with milliseconds (``cmd.FormatTime``); epoch seconds or
milliseconds are accepted too, and a time without a zone is read as UTC.
The CLI itself is run by ``pipeline.io.pulumi``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.io.pulumi import PulumiError
from pipeline.records.model import Deployment, TimeRangeError, read_time
from pipeline.stacks.image import IMAGE_KEY

DIGEST_OUTPUT = "imageDigest"
IMAGE_OUTPUT = "image"
# Only `pulumi up` rolls out an image; preview, refresh, destroy, import and
# rename entries are not deployments of the service.
DEPLOYING_KINDS = frozenset({"update"})
FINISHED_RESULTS = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class Update:
    """One entry of a stack's history."""

    version: int
    kind: str
    result: str
    start: datetime
    end: datetime | None
    config: Mapping[str, Any]
    environment: Mapping[str, str]
    message: str = ""
    zone_less: bool = False


def parse_time_value(value: Any, what: str) -> tuple[datetime, bool]:
    """A history timestamp as aware UTC, and whether it lacked a zone (read as UTC)."""
    if isinstance(value, bool):
        raise PulumiError(f"history: {what} is not a time: {value!r}")
    if isinstance(value, int | float):
        try:
            seconds = value / 1000 if value > 1e11 else value  # epoch ms vs epoch s
            return datetime.fromtimestamp(seconds, tz=UTC), False
        except (OverflowError, OSError, ValueError):
            raise PulumiError(
                f"history: {what} {value!r:.40} is not a time (out of the calendar's range)"
            ) from None
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.isdigit() and text.isascii():
            return parse_time_value(int(text[:40]) if len(text) <= 40 else 10**40, what)
        try:
            return read_time(text)
        except TimeRangeError as exc:
            raise PulumiError(f"history: {what} {value!r:.40}: {exc}") from None
        except ValueError:
            raise PulumiError(f"history: {what} is not an ISO 8601 time: {value!r:.60}") from None
    raise PulumiError(f"history: {what} is missing or not a time: {value!r}")


def parse_history(data: Any) -> list[Update]:
    """Validate and convert ``pulumi stack history --json`` output, oldest first."""
    if not isinstance(data, list):
        raise PulumiError("history: expected a JSON array of updates")
    updates: list[Update] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise PulumiError(f"history: entry {index} is not an object")
        version = entry.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise PulumiError(f"history: entry {index} has no integer 'version'")
        kind = str(entry.get("kind") or "")
        result = str(entry.get("result") or "in-progress")
        start, start_naive = parse_time_value(
            entry.get("startTime"), f"version {version} startTime"
        )
        end: datetime | None = None
        end_naive = False
        if entry.get("endTime") is not None:
            end, end_naive = parse_time_value(entry["endTime"], f"version {version} endTime")
        config = entry.get("config") or {}
        environment = entry.get("environment") or {}
        if not isinstance(config, dict) or not isinstance(environment, dict):
            raise PulumiError(f"history: version {version} has a malformed config or environment")
        updates.append(
            Update(
                version=version,
                kind=kind,
                result=result,
                start=start,
                end=end,
                config=config,
                environment={str(k): str(v) for k, v in environment.items()},
                message=str(entry.get("message") or ""),
                zone_less=start_naive or end_naive,
            )
        )
    updates.sort(key=lambda u: u.version)
    return updates


def _config_image(config: Mapping[str, Any]) -> dict[str, Any] | None:
    entry = config.get(IMAGE_KEY)
    if not isinstance(entry, dict) or entry.get("secret"):
        return None
    obj = entry.get("objectValue")
    if isinstance(obj, dict):
        return obj
    raw = entry.get("value")
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _reference(image: Mapping[str, Any] | None) -> tuple[str, str | None]:
    """(image reference as deployed, digest) from the config object {repository, tag, digest}."""
    if not image:
        return "", None
    repo = str(image.get("repository") or "")
    tag = image.get("tag")
    digest = image.get("digest") or None
    ref = repo
    if tag:
        ref += f":{tag}"
    if digest:
        ref += f"@{digest}"
    return ref, (str(digest) if digest else None)


@dataclass(frozen=True)
class HistoryImport:
    deployments: tuple[Deployment, ...]
    ignored_previews: int = 0
    ignored_in_progress: int = 0
    ignored_other: int = 0
    zone_less: int = 0


def deployments_from_history(
    stack: str,
    history: Sequence[Update],
    outputs: Mapping[str, Any] | None = None,
) -> HistoryImport:
    """One ``Deployment`` per finished update (key ``pulumi:<stack>:<version>``).

    The digest comes from the update's own ``cv-platform:image`` config. The
    stack output ``imageDigest`` (what is running now) wins only for the newest
    entry of the history when that is a succeeded update: after a failed
    update the outputs still describe the image before it, and while an update
    is in progress (or after a refresh or destroy) they may describe another.
    """
    previews = in_progress = other = zone_less = 0
    finished: list[Update] = []
    for update in history:
        if update.kind == "preview":
            previews += 1
        elif update.result not in FINISHED_RESULTS or update.end is None:
            in_progress += 1
        elif update.kind not in DEPLOYING_KINDS:
            other += 1
        else:
            finished.append(update)
    # Previews do not touch the stack's outputs; anything else after an update might.
    newest = max((u for u in history if u.kind != "preview"), key=lambda u: u.version, default=None)
    latest = (
        newest.version
        if newest is not None and newest in finished and newest.result == "succeeded"
        else None
    )
    deployments: list[Deployment] = []
    for update in finished:
        assert update.end is not None
        ref, digest = _reference(_config_image(update.config))
        if update.version == latest and outputs:
            out_digest = outputs.get(DIGEST_OUTPUT)
            if isinstance(out_digest, str) and out_digest.startswith("sha256:"):
                digest = out_digest
                out_image = outputs.get(IMAGE_OUTPUT)
                if isinstance(out_image, str) and out_image:
                    ref = out_image
        zone_less += update.zone_less
        commit = update.environment.get("git.head") or None
        deployments.append(
            Deployment(
                stack=stack,
                result="succeeded" if update.result == "succeeded" else "failed",
                image=ref,
                digest=digest,
                started=update.start,
                finished=update.end,
                commit=commit,
                source="pulumi",
                key=f"pulumi:{stack}:{update.version}",
            )
        )
    return HistoryImport(
        deployments=tuple(deployments),
        ignored_previews=previews,
        ignored_in_progress=in_progress,
        ignored_other=other,
        zone_less=zone_less,
    )


def history_notes(stack: str, result: HistoryImport) -> tuple[str, ...]:
    """What to tell the user about a history import besides the records themselves."""
    ignored = [
        (result.ignored_previews, "preview(s)"),
        (result.ignored_in_progress, "update(s) still in progress"),
        (result.ignored_other, "refresh/destroy/other operation(s)"),
    ]
    notes = []
    skipped = ", ".join(f"{n} {what}" for n, what in ignored if n)
    if skipped:
        notes.append(f"not deployments, not recorded: {skipped}")
    if result.zone_less:
        notes.append(f"{result.zone_less} update time(s) had no time zone: read as UTC")
    if not result.deployments:
        notes.append(f"stack {stack} has no finished update to record")
    return tuple(notes)


__all__ = [
    "HistoryImport",
    "Update",
    "deployments_from_history",
    "history_notes",
    "parse_history",
    "parse_time_value",
]
