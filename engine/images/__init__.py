"""Images: manifests and configs, safe layer unpacking, pull, push, save and load.

``ImageService`` (``engine.images.service``) is the one entry point; ``engine.api``
wraps it in plain dataclasses for the workers and the command line.
"""
