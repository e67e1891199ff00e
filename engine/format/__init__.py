"""Docker's ``--format``, in the standard library only: Go templates, tables, JSON lines, sizes, times.

The engine's command line and the ``berth`` command line print through this package, so that a
template behaves the same in both and as in Docker's CLI:

- ``template``: Go's ``text/template`` with Docker's functions (``json``, ``join``, ``upper`` …);
- ``gofmt`` and ``gojson``: how Go prints values and JSON;
- ``tabwriter``: the column layout of Docker's tables;
- ``output``: ``table``, ``json`` and custom formats over rows, and ``inspect``'s formats;
- ``contexts``: the rows Docker's ``ps``, ``images``, ``network ls``, ``volume ls``, ``history`` and
  ``stats`` offer a template (``.ID``, ``.Names``, ``.RunningFor`` …);
- ``units``: ``4.26MB``, ``1.5GiB``, ``About a minute``.

Importing it costs next to nothing: no ``re``, no ``json``.
"""
