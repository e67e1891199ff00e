"""Image builds from Dockerfiles: parsing, the context, the step cache, running steps, the builder.

    from engine.build.builder import Builder
    from engine.build.model import BuildOptions
    result = Builder(svc).build(BuildOptions(context=Path("."), tags=["app:1"]), progress=print)

See ``engine/README-build.md`` for what is supported.
"""
