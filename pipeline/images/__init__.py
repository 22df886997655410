"""Images and the registries that hold them.

``refs`` is the one image-reference grammar (also used by ``infra`` and
``policy``, so it imports nothing heavy); the rest is the OCI distribution
client and the credentials it presents.
"""
