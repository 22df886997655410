"""cv-platform delivery tooling: move images between stacks, preview, measure.

Run as ``python -m pipeline <command>``. Heavy dependencies (pulumi, boto3,
matplotlib) are imported inside the commands that need them so that
``--help`` starts fast.
"""

__version__ = "0.1.0"
