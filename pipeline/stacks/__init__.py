"""Stack files: ``cv-platform:image`` in ``Pulumi.<stack>.yaml``, edited exactly and
atomically, and a stack's configuration as Pulumi resolves it."""
