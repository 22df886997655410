"""Run the policy pack's rules over resources outside the Pulumi engine.

The offline preview hands this the rendered resources (``resources.json``); the online preview
hands it the new state of each step of ``pulumi preview --json`` (the JSON digest drops policy
events, so this is how violations reach the comment). Same ``ResourceValidationPolicy``
objects as ``pulumi preview --policy-pack policy``, called through their public ``validate``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError

from policy.model import NotChecked, PolicyOutcome, Violation
from policy.rules import POLICIES, OptionsNotVisible

PROJECT = "cv-platform"


@dataclass(frozen=True)
class CheckedResource:
    """A resource to check: its type token, logical name and inputs.

    ``protect`` is None when the source does not say (an offline render): rules that need
    resource options then report "not checked" instead of a guess.
    """

    type: str
    name: str
    inputs: Mapping[str, Any]
    protect: bool | None = None
    parent_types: tuple[str, ...] = ()
    location: str = ""


def urn_for(stack: str, resource: CheckedResource, project: str = PROJECT) -> str:
    qualified = "$".join((*resource.parent_types, resource.type))
    return f"urn:pulumi:{stack}::{project}::{qualified}::{resource.name}"


def _options(resource: CheckedResource) -> PolicyResourceOptions:
    if resource.protect is None:
        return OptionsNotVisible()
    return PolicyResourceOptions(
        resource.protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None
    )


def _run(result: Awaitable[Any] | None) -> None:
    if result is not None and inspect.isawaitable(result):

        async def wait() -> None:
            await result

        asyncio.run(wait())


def evaluate(
    resources: Iterable[CheckedResource],
    stack: str,
    policies: Sequence[ResourceValidationPolicy] = POLICIES,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    project: str = PROJECT,
) -> PolicyOutcome:
    """Every violation of ``policies`` by ``resources`` in ``stack``, in input order."""
    violations: list[Violation] = []
    not_checked: list[NotChecked] = []
    count = 0
    for resource in resources:
        count += 1
        for policy in policies:
            level = policy.enforcement_level.value if policy.enforcement_level else "advisory"
            if level == "disabled":
                continue
            args = ResourceValidationArgs(
                resource_type=resource.type,
                props=resource.inputs,
                urn=urn_for(stack, resource, project),
                name=resource.name,
                opts=_options(resource),
                provider=None,
                config=(config or {}).get(policy.name, {}),
            )
            found: list[str] = []

            def report(message: str, urn: str | None = None, found: list[str] = found) -> None:
                found.append(message)

            try:
                _run(policy.validate(args, report))
            except (_NotApplicableError, UnknownValueError) as exc:
                not_checked.append(
                    NotChecked(policy.name, resource.type, resource.name, exc.message)
                )
                continue
            violations.extend(
                Violation(
                    policy.name, level, resource.type, resource.name, message, resource.location
                )
                for message in found
            )
    return PolicyOutcome(
        tuple(violations), tuple(not_checked), count, tuple(p.name for p in policies)
    )
