"""Plain results of a policy check, shared by the offline adapter and the preview comment."""

from __future__ import annotations

from dataclasses import dataclass

# Stacks that are production: the digest rule applies there (policy config `prodStacks`
# overrides it in the pack) and the comment flags their replaces and deletes first.
DEFAULT_PROD_STACKS = ("prod", "production")


@dataclass(frozen=True)
class Violation:
    """One rule broken by one resource. ``message`` never contains a secret value."""

    policy: str
    enforcement: str  # advisory | mandatory
    resource_type: str
    resource_name: str
    message: str
    location: str = ""  # where the resource came from, e.g. a rendered manifest's file name


@dataclass(frozen=True)
class NotChecked:
    """A rule that could not be decided for a resource (e.g. options not visible offline)."""

    policy: str
    resource_type: str
    resource_name: str
    reason: str


@dataclass(frozen=True)
class PolicyOutcome:
    violations: tuple[Violation, ...] = ()
    not_checked: tuple[NotChecked, ...] = ()
    resources_checked: int = 0
    policies: tuple[str, ...] = ()

    @property
    def mandatory(self) -> tuple[Violation, ...]:
        return tuple(v for v in self.violations if v.enforcement == "mandatory")
