"""The pipeline's edges to the outside world: HTTP, child processes, the Pulumi CLI.

Each is a small adapter with a fake-friendly interface; nothing here decides
anything about stacks, images or records.
"""
