"""Go's ``text/tabwriter`` (Docker's copy, which measures East Asian wide characters as two columns).

Docker's tables are ``tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)``: a cell ends at a tab, a column
is as wide as its widest cell plus 3 spaces of padding and at least 10, and the last cell of a line
(the text after its last tab) is not padded::

    w = TabWriter()
    w.write("CONTAINER ID\\tNAMES\\nabc\\tweb\\n")
    w.flush()  ->  "CONTAINER ID   NAMES\\nabc            web\\n"

Columns are the elastic tabstops of Go's tabwriter: a column is a run of consecutive lines that have
a cell at that index, so a line with fewer cells starts new blocks below it, as in Go.
"""

from __future__ import annotations


def text_width(s: str) -> int:
    """Display columns of ``s`` as go-runewidth counts them: wide and full-width characters are 2,
    combining marks and control characters 0."""
    if s.isascii():
        return len(s) - sum(1 for c in s if c < " " or c == "\x7f") if not s.isprintable() else len(s)
    import unicodedata

    width = 0
    for ch in s:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o < 0xA0:
            continue
        if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


class TabWriter:
    """Collects text; ``flush()`` returns it aligned. Cells are separated by tabs, lines by newlines."""

    def __init__(self, minwidth: int = 10, tabwidth: int = 1, padding: int = 3, padchar: str = " "):
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.buffer: list[str] = []

    def write(self, text: str) -> None:
        self.buffer.append(text)

    def flush(self) -> str:
        text = "".join(self.buffer)
        self.buffer = []
        lines = text.split("\n")
        # each line is a list of cells; all but the last cell of a line are tab-terminated
        cells = [line.split("\t") for line in lines]
        out: list[str] = []
        self._format(cells, 0, len(cells), [], out)
        return "\n".join(out)

    def _format(self, cells: list[list[str]], line0: int, line1: int, widths: list[int], out: list[str]) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(cells[this]) - 1:
                this += 1
                continue
            # a column block starts here: print the lines above it, measure the block
            self._write_lines(cells, line0, this, widths, out)
            line0 = this
            width = self.minwidth
            while this < line1 and column < len(cells[this]) - 1:
                w = text_width(cells[this][column]) + self.padding
                if w > width:
                    width = w
                this += 1
            self._format(cells, line0, this, widths + [width], out)
            line0 = this
        self._write_lines(cells, line0, line1, widths, out)

    def _write_lines(self, cells: list[list[str]], line0: int, line1: int, widths: list[int],
                     out: list[str]) -> None:
        for i in range(line0, line1):
            parts = []
            line = cells[i]
            for j, cell in enumerate(line):
                if j < len(line) - 1 and j < len(widths):
                    parts.append(cell + self.padchar * (widths[j] - text_width(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))
