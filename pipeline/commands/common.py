"""What ``promote``, ``rollback``, ``verify``, ``hold`` and ``history`` share: reading a
recorded deployment back as a stack-file image, recording after a stack file was
written, and a rollback (hold first, then the file, then the record, under the lock)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.errors import ConfigError, PipelineError, StoreError
from pipeline.images.refs import ImageRef, InvalidReferenceError, parse_ref, short_digest
from pipeline.records.model import Deployment, Hold, Record, Rollback
from pipeline.records.stores import Store
from pipeline.stacks.image import ImageSetting
from pipeline.stacks.stackfile import Expected, LockedStack, StackEdit, locked_stack


def pinned_setting(
    deployment: Deployment, mutable: Sequence[str] = ()
) -> tuple[ImageRef, ImageSetting]:
    """The image reference and stack-file setting of a recorded deployment.

    The recorded digest is the authority; the reference gives repository and
    tag. A tag the stack marks mutable is dropped: the digest pins the image.
    """
    if deployment.digest is None:
        raise PipelineError(f"deployment #{deployment.id} of {deployment.stack} has no digest")
    try:
        ref = parse_ref(deployment.image)
    except InvalidReferenceError:
        # Readers may record a bare repository beside the digest.
        try:
            ref = parse_ref(f"{deployment.image.split('@', 1)[0]}@{deployment.digest}")
        except InvalidReferenceError as exc:
            raise ConfigError(
                f"deployment #{deployment.id} of {deployment.stack} records image "
                f"{deployment.image!r}, not a usable reference: {exc}"
            ) from None
    tag = ref.tag if ref.tag not in mutable else None
    pinned = ImageRef(ref.registry, ref.repository, tag, deployment.digest)
    return pinned, ImageSetting(pinned.name, tag, deployment.digest)


def record_after_write(
    store: Store, records: Sequence[Record], path: Path, what: str, old: str | None, new: str | None
) -> list[Record]:
    """Append ``records`` after ``path`` was written; a failure says the file changed.

    A file and a store cannot change in one transaction. The file goes first
    (its compare-and-swap is what can refuse), so if the store then fails, the
    one line must say that the file was written, not that nothing happened.
    """
    from pipeline.records.limits import RecordRefused

    try:
        return store.add_many(records)
    except (StoreError, RecordRefused) as exc:
        raise StoreError(
            f"{path.name} was written ({short_digest(old)} -> {short_digest(new)}) but the {what} "
            f"was not recorded: {exc}; restore the file (git checkout {path.name}) and run it again"
        ) from None


@dataclass(frozen=True)
class RollbackDone:
    edit: StackEdit
    rollback: Rollback
    hold: Hold


def roll_back(
    store: Store,
    path: Path,
    rollback: Rollback,
    setting: ImageSetting,
    *,
    expect_digest: Expected,
    hold_reason: str,
    at: datetime,
) -> RollbackDone:
    """Hold ``rollback.stack``, write its file back, record the rollback: under the file's lock.

    The hold is recorded before the file changes, and ``promote`` checks holds under
    the same lock, so no promotion can land between the rollback's write and its
    hold. If the write then fails the hold stays (safe: promotion waits for a person);
    if recording the rollback fails, the file is written and held, and the line says so.
    """
    with locked_stack(path) as stack:
        return roll_back_locked(
            store,
            stack,
            rollback,
            setting,
            expect_digest=expect_digest,
            hold_reason=hold_reason,
            at=at,
        )


def roll_back_locked(
    store: Store,
    stack: LockedStack,
    rollback: Rollback,
    setting: ImageSetting,
    *,
    expect_digest: Expected,
    hold_reason: str,
    at: datetime,
) -> RollbackDone:
    """``roll_back`` for a caller that holds the stack file's lock already."""
    # The compare-and-swap before anything is recorded: a refused rollback holds nothing.
    stack.check(expect_digest)
    (hold,) = store.add_many(
        [Hold(rollback.stack, "placed", at, hold_reason, actor=rollback.actor)]
    )
    try:
        edit = stack.write(setting, expect_digest=expect_digest)
    except PipelineError as exc:
        raise PipelineError(
            f"{exc}; {rollback.stack} stays on hold (hold {rollback.stack} --release)"
        ) from None
    (stored,) = record_after_write(
        store, [rollback], stack.path, "rollback", rollback.from_digest, rollback.to_digest
    )
    assert isinstance(stored, Rollback)
    assert isinstance(hold, Hold)
    return RollbackDone(edit, stored, hold)


__all__ = ["RollbackDone", "pinned_setting", "record_after_write", "roll_back", "roll_back_locked"]
