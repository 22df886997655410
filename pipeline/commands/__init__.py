"""The commands of ``python -m pipeline``, one module each, thin by design.

A command module has ``SUMMARY`` (its line in ``--help``), ``register(parser)``
(its description, examples and arguments) and ``run(args, adapters) -> int``:
arguments -> adapters -> the core packages -> output. Modules import only
argparse at the top, so the CLI can register every command and stay fast; what
a command needs it imports when it runs.
"""

# Command name -> module in this package, in the order ``--help`` lists them.
COMMANDS = {
    "render": "render",
    "set-image": "set_image",
    "promote": "promote",
    "rollback": "rollback",
    "hold": "hold",
    "history": "history",
    "record": "record",
    "metrics": "metrics",
    "preview": "preview",
}
