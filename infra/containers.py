"""Resource limits of the CI tooling containers (JenkinsServer, ImageRegistry).

Every tooling container has a memory limit with no swap beyond it and a CPU limit, so
a runaway build, test run or upload cannot take the CI Docker host down with it, and
the kernel's OOM killer picks the container that overran, not a neighbour. The sizes
fit one build at a time on a host of 4 CPUs and 16 GiB (docs/ci-tooling.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ContainerLimits:
    memory_mb: int  # the Docker provider's unit (MB); swap is held to the same figure
    cpus: str  # Docker's --cpus, e.g. "1.5"


# The controller schedules and stores; the agent runs the test suite and pulumi;
# BuildKit builds the model image (its train stage fits the digit classifier);
# the registry only moves blobs.
CONTROLLER_LIMITS: Final = ContainerLimits(memory_mb=2048, cpus="2")
AGENT_LIMITS: Final = ContainerLimits(memory_mb=4096, cpus="2")
BUILDKIT_LIMITS: Final = ContainerLimits(memory_mb=4096, cpus="2")
REGISTRY_LIMITS: Final = ContainerLimits(memory_mb=512, cpus="1")

__all__ = [
    "AGENT_LIMITS",
    "BUILDKIT_LIMITS",
    "CONTROLLER_LIMITS",
    "REGISTRY_LIMITS",
    "ContainerLimits",
]
