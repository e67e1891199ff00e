"""Docker's ``--format``, in the standard library only: Go templates, tables, JSON lines, sizes, times.

The engine's command line and the ``berth`` command line print through this package, so that a
template behaves the same in both and as in Docker's CLI 28:

- ``template``: Go's ``text/template`` (``lex``, ``nodes``, ``parse``; ``funcs`` holds Go's
  builtins and Docker's functions ``json``, ``join``, ``upper`` …);
- ``gofmt`` and ``gojson``: how Go prints values (``%v``, ``printf``) and JSON;
- ``tabwriter``: the column layout of Docker's tables;
- ``output``: ``table``, ``json`` and custom formats over rows (``Rows``), and ``inspect``'s formats;
- ``contexts``: the rows Docker's ``ps``, ``images``, ``network ls``, ``volume ls``, ``history`` and
  ``stats`` offer a template (``.ID``, ``.Names``, ``.RunningFor`` …), with their defaults;
- ``commands``: what those commands print, from the Docker Engine API's objects;
- ``units``: ``4.26MB``, ``1.5GiB``, ``About a minute``, Go's time texts.

Importing it costs next to nothing: no ``re``, no ``json``.
"""
