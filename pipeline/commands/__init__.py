"""The commands of ``python -m pipeline``, one module each, thin by design.

A command module has ``register(parser)`` (its description, examples and
arguments) and ``run(args, adapters) -> int``: arguments -> adapters -> the core
packages -> output. Its line in the top-level ``--help`` is here, so listing the
commands imports none of them; the CLI imports the one being run, and what it
needs it imports when it runs.
"""

# Command name -> (module in this package, its line in --help), in --help's order.
COMMANDS = {
    "render": ("render", "render a stack's resources offline (Pulumi mocks, no credentials)"),
    "set-image": ("set_image", "pin a stack to an image (tag resolved to its digest)"),
    "promote": ("promote", "promote the last good digest of one stack to another, through gates"),
    "rollback": (
        "rollback",
        "return a stack to an earlier successfully deployed digest, and hold it",
    ),
    "verify": (
        "verify",
        "judge a stack's deployed digest by its metrics in Prometheus (and roll back on failure)",
    ),
    "hold": ("hold", "place or release a hold that blocks promotion to a stack"),
    "waive": ("waive", "accept a finding of a digest's scans until a date, with a reason"),
    "history": ("history", "a stack's deployments, promotions, rollbacks and holds, newest first"),
    "record": ("record", "record a deployment or a CI run in the record store"),
    "metrics": ("metrics", "M_CI, M_CD and the DORA keys over a time window"),
    "preview": (
        "preview",
        "what a change does to each stack, as a pull-request comment (Markdown)",
    ),
}
