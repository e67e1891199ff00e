"""Docker's ``--format`` over a command's output: tables, JSON lines, templates, and ``inspect``.

Two shapes, as in Docker's CLI:

- **Lists** (``ps``, ``images``, ``network ls``, ``volume ls``, ``history``, ``stats``): ``Rows(format,
  headers)`` is ``formatter.Context``. ``table …`` prints a header line (the template run over
  the column names) and aligned columns; ``json`` is ``{{json .}}``: one JSON object a line; any
  other text is a template run on each row. ``\\t`` and ``\\n`` written as two characters become a
  tab and a newline, as Docker's::

      rows = Rows("table {{.ID}}\\t{{.Names}}", CONTAINER_HEADERS)   # a bad template raises FormatError
      print(rows.render([container_context(c) for c in listed]), end="")

- **Objects** (``inspect``, ``image inspect``, ``network inspect``, ``volume inspect``, ``info``):
  ``inspect_text(objects, format, maps)``. No format: an indented JSON array; ``json``: the array
  on one line; a template: one line per object. Each object is a JSON-shaped dict; ``maps`` names
  the paths that are Go maps (``Config.Labels``), the rest are Go structs, so that a missing label
  prints ``<no value>`` while a misspelt field fails, as Docker's typed objects do. A template
  that fails on the typed object runs again on the plain one with ``missingkey=error``, as
  Docker's ``tryRawInspectFallback``.

Errors are ``FormatError`` with Docker's message and its exit code (``exit_code``: 1, or 64 for a
template ``inspect`` cannot parse).
"""

from __future__ import annotations

from engine.errors import InvalidArgument
from engine.format.template import HEADER_FUNCS, Template, TemplateError, TemplateParseError


class FormatError(InvalidArgument):
    """A ``--format`` that does not parse or does not run: Docker's message, and Docker's exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def prepare(fmt: str) -> tuple[str, bool]:
    """Docker's ``preFormat``: (template text, is a table)."""
    table = fmt.startswith("table")
    if table:
        text = fmt[len("table"):]
    elif fmt == "json":
        text = "{{json .}}"
    else:
        text = fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return text, table


class Rows:
    """One ``--format`` for a list of rows: parsed once, rendered over all rows."""

    def __init__(self, fmt: str, headers: dict[str, str] | None = None, *,
                 parse_message: str = "template parsing error"):
        from engine.format.contexts import header

        self.format = fmt
        text, self.table = prepare(fmt)
        self.header = header(headers or {})
        try:
            self.template = Template(text)
        except TemplateError as exc:
            raise FormatError(f"{parse_message}: {exc}") from None

    def check(self, sample, message: str = "failed to execute template") -> None:
        """Run the template once on a row with nothing in it, as ``docker ps`` does before it lists:
        a template that names a field a row does not have fails before any work is done."""
        try:
            self.template.execute(sample)
        except TemplateError as exc:
            raise FormatError(f"{message}: {exc}") from None

    def render(self, rows) -> str:
        """The whole output: each row's text and a newline; a table aligned under its header line."""
        texts = []
        for row in rows:
            try:
                texts.append(self.template.execute(row))
            except TemplateError as exc:
                raise FormatError(f"template parsing error: {exc}") from None
        if not self.table:
            return "".join(t + "\n" for t in texts)
        from engine.format.tabwriter import TabWriter

        w = TabWriter(minwidth=10, tabwidth=1, padding=3)
        # the header line runs the same template over the column names; an error ends it quietly
        w.write(self.template.execute_partial(self.header, funcs=HEADER_FUNCS) + "\n")
        for t in texts:
            w.write(t + "\n")
        return w.flush()


def render_rows(fmt: str, headers: dict[str, str], rows) -> str:
    """``Rows(fmt, headers).render(rows)``."""
    return Rows(fmt, headers).render(rows)


# -- inspect ---------------------------------------------------------------------------------------------


def _match(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p == "*" or p == q for p, q in zip(pattern, path))


def go_structs(value, maps: dict[str, object] | None = None, type_name: str = "struct", _path: tuple = ()):
    """A JSON-shaped object as Go's typed one: dicts become ``Struct`` (fields in order, a missing
    field an error) except at the dotted paths of ``maps`` (``"Config.Labels": ""``, ``"*"`` for any
    key), which become ``GoMap`` with that zero value for ``index``. Items of a list keep its path."""
    from engine.format.gofmt import GoMap, Struct

    patterns = [(tuple(p.split(".")), zero) for p, zero in (maps or {}).items()]
    return _typed(value, patterns, type_name, _path, GoMap, Struct)


def _typed(value, patterns, type_name, path, GoMap, Struct):
    if isinstance(value, dict) or value is None:
        for pattern, zero in patterns:
            if _match(pattern, path):
                elem = "string" if isinstance(zero, str) else "interface {}"
                return GoMap({k: _typed(v, patterns, type_name, path + ("*",), GoMap, Struct)
                              for k, v in (value or {}).items()}, f"map[string]{elem}", zero=zero,
                             nil=value is None)
    if value is None:
        return None
    if isinstance(value, dict):
        return Struct(type_name, {k: _typed(v, patterns, type_name, path + (k,), GoMap, Struct)
                                  for k, v in value.items()})
    if isinstance(value, list):
        return [_typed(v, patterns, type_name, path, GoMap, Struct) for v in value]
    return value


def inspect_template(fmt: str) -> Template:
    """The template of ``inspect --format``: ``FormatError`` (exit 64) when it does not parse."""
    try:
        return Template(fmt)
    except TemplateParseError as exc:
        raise FormatError(f"template parsing error: {exc}", exit_code=64) from None


def inspect_text(objects: list, fmt: str = "", maps: dict[str, object] | None = None,
                 type_name: str = "struct") -> tuple[str, list[str]]:
    """What ``docker inspect [--format fmt]`` prints for ``objects``: (stdout text, error messages)."""
    from engine.format.gojson import encode, encode_indent

    if not fmt:
        return encode_indent(list(objects)) + "\n", []
    if fmt == "json":
        return encode(list(objects), keep_order=True) + "\n", []
    template = inspect_template(fmt)
    out: list[str] = []
    errors: list[str] = []
    for obj in objects:
        try:
            out.append(template.execute(go_structs(obj, maps, type_name)) + "\n")
            continue
        except TemplateError:
            pass
        try:
            out.append(template.execute(obj, missingkey="error") + "\n")
        except TemplateError as exc:
            errors.append(f"template parsing error: {exc}")
    return ("".join(out) or "\n"), errors


# Go maps in Docker's inspect objects (the rest are structs): a missing key there is no error.
CONTAINER_MAPS = {
    "Config.Labels": "", "Config.ExposedPorts": None, "Config.Volumes": None, "ContainerConfig.Labels": "",
    "HostConfig.PortBindings": None, "HostConfig.LogConfig.Config": "", "HostConfig.Tmpfs": "",
    "HostConfig.Sysctls": "", "HostConfig.StorageOpt": "", "HostConfig.Annotations": "",
    "NetworkSettings.Ports": None, "NetworkSettings.Networks": None, "NetworkSettings.Networks.*.DriverOpts": "",
    "GraphDriver.Data": "",
}
IMAGE_MAPS = {"Config.Labels": "", "Config.ExposedPorts": None, "Config.Volumes": None,
              "ContainerConfig.Labels": "", "ContainerConfig.ExposedPorts": None, "ContainerConfig.Volumes": None,
              "GraphDriver.Data": ""}
NETWORK_MAPS = {"Labels": "", "Options": "", "Containers": None, "IPAM.Options": "",
                "IPAM.Config.AuxiliaryAddresses": "", "Services": None}
VOLUME_MAPS = {"Labels": "", "Options": "", "Status": None}


def natural_less(a: str, b: str) -> bool:
    """``sortorder.NaturalLess``, the order of ``docker network ls`` and ``volume ls``: numbers by value."""
    i = j = 0
    while i < len(a) and j < len(b):
        da, db = a[i].isdigit() and a[i].isascii(), b[j].isdigit() and b[j].isascii()
        if da != db:
            return da
        if not da:
            if a[i] != b[j]:
                return a[i].encode() < b[j].encode()
            i += 1
            j += 1
            continue
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        nz_a, nz_b = i, j
        while i < len(a) and a[i].isdigit() and a[i].isascii():
            i += 1
        while j < len(b) and b[j].isdigit() and b[j].isascii():
            j += 1
        if i - nz_a != j - nz_b:
            return i - nz_a < j - nz_b
        if a[nz_a:i] != b[nz_b:j]:
            return a[nz_a:i] < b[nz_b:j]
        if nz_a != nz_b:
            return nz_a < nz_b
    return len(a) < len(b)


def natural_sorted(items, key=lambda x: x):
    """``items`` in ``natural_less`` order of ``key(item)``."""
    from functools import cmp_to_key

    def cmp(x, y):
        kx, ky = key(x), key(y)
        return -1 if natural_less(kx, ky) else 1 if natural_less(ky, kx) else 0

    return sorted(items, key=cmp_to_key(cmp))
