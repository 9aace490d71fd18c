"""Tables as data, and their renderings: Markdown, HTML (the seed's side-by-side layout),
LaTeX (booktabs) and plain aligned text for the terminal.

Cells hold plain Unicode text ("0.3%", "76.7 ± 0.2", "–"); each renderer escapes it for its
format. Headers carry one form per format (``<var>N</var>``, ``$N$``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

from lcrp_core import schema
from lcrp_core.report.fmt import label


@dataclass(frozen=True)
class Header:
    """A column header: plain text (Markdown, terminal), HTML markup and LaTeX markup."""

    text: str
    html: str
    latex: str

    @classmethod
    def plain(cls, text: str) -> Header:
        return cls(text, html.escape(text, quote=False), latex_escape(text))


#: Headers of parameters and scores, as the seed writes them.
HEADERS: dict[str, Header] = {
    "N": Header("N", "<var>N</var>", "$N$"),
    "K": Header("K", "<var>K</var>", "$K$"),
    "H": Header("H", "<var>H</var>", "$H$"),
    "delta": Header("δ", "&delta;", r"$\delta$"),
    "lam": Header("λ", "&lambda;", r"$\lambda$"),
    "w_text": Header("w_text", "<var>w</var><sub>text</sub>", r"$w_\mathrm{text}$"),
    "w_quality": Header("w_quality", "<var>w</var><sub>quality</sub>", r"$w_\mathrm{quality}$"),
    schema.J: Header("J", "J", r"$\mathcal{J}$"),
    schema.F: Header("F", "F", r"$\mathcal{F}$"),
    schema.JF: Header("J&F", "J &amp; F", r"$\mathcal{J}\&\mathcal{F}$"),
}


def header(name: str) -> Header:
    """The header of a parameter or score name; a plain header for any other name."""
    return HEADERS.get(name) or Header.plain(label(name))


@dataclass(frozen=True)
class Table:
    """Rows of text cells under headers; ``bold`` rows are printed in bold (the best ones).

    ``align`` has one of "l", "c", "r" per column ("c" for all when empty); ``caption`` says
    what the panel shows (dataset, protocol, base configuration, videos/expressions).
    """

    headers: tuple[Header, ...]
    rows: tuple[tuple[str, ...], ...]
    bold: frozenset[int] = frozenset()
    align: tuple[str, ...] = ()
    caption: str = ""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"row {row} has {len(row)} cells for {len(self.headers)} headers")

    @property
    def alignment(self) -> tuple[str, ...]:
        return self.align or ("c",) * len(self.headers)


@dataclass(frozen=True)
class TableBlock:
    """One table of a report: panels shown side by side, a title, a footnote and warnings.

    ``warnings`` name missing or incomplete studies and are shown with the table in every format;
    ``notes`` explain its statistics (CIs, Δ, p-values, the † marks), before the footnote.
    """

    id: str
    title: str
    panels: tuple[Table, ...]
    footnote: str = ""
    warnings: tuple[str, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------- Markdown

def _md_cell(text: str, bold: bool) -> str:
    text = text.replace("|", r"\|")
    return f"**{text}**" if bold and text else text


_MD_RULE = {"l": ":--", "c": ":-:", "r": "--:"}


def table_markdown(table: Table) -> str:
    lines = [f"*{table.caption}*", ""] if table.caption else []
    lines += ["| " + " | ".join(_md_cell(h.text, False) for h in table.headers) + " |",
             "|" + "|".join(_MD_RULE[a] for a in table.alignment) + "|"]
    for i, row in enumerate(table.rows):
        lines.append("| " + " | ".join(_md_cell(c, i in table.bold) for c in row) + " |")
    return "\n".join(lines) + "\n"


def _md_notes(block: TableBlock) -> str:
    out = "".join(f"\n> **Warning:** {w}\n" for w in block.warnings)
    out += "".join(f"\n> {n}\n" for n in block.notes)
    if block.footnote:
        out += f"\n> **Note:** {block.footnote}\n"
    return out


def to_markdown(block: TableBlock, *, level: int = 3) -> str:
    """``### Title``, the panels one after another, then warnings and the footnote."""
    parts = [f"{'#' * level} {block.title}\n"] + [table_markdown(t) for t in block.panels]
    return "\n".join(parts) + _md_notes(block)


# ---------------------------------------------------------------- HTML

def _html_table(table: Table, indent: int) -> list[str]:
    p = " " * indent
    lines = [f'{p}<table border="1" cellspacing="0" cellpadding="6">']
    if table.caption:
        lines.append(f"{p}  <caption>{html.escape(table.caption, quote=False)}</caption>")
    lines += [f"{p}  <thead>", f"{p}    <tr>"]
    lines += [f"{p}      <th>{h.html}</th>" for h in table.headers]
    lines += [f"{p}    </tr>", f"{p}  </thead>", f"{p}  <tbody>"]
    for i, row in enumerate(table.rows):
        cells = []
        for c in row:
            text = html.escape(c, quote=False)
            cells.append(f"<td><strong>{text}</strong></td>" if i in table.bold else f"<td>{text}</td>")
        lines.append(f"{p}    <tr>{''.join(cells)}</tr>")
    lines += [f"{p}  </tbody>", f"{p}</table>"]
    return lines


def tables_html(panels: Sequence[Table]) -> str:
    """One panel as a bordered table; several side by side in the seed's outer layout table."""
    if len(panels) == 1:
        return "\n".join(_html_table(panels[0], 0)) + "\n"
    lines = ['<table cellspacing="16" cellpadding="0" border="0">', "  <tr>"]
    for table in panels:
        lines += ['    <td valign="top">', *_html_table(table, 6), "    </td>"]
    lines += ["  </tr>", "</table>"]
    return "\n".join(lines) + "\n"


def _html_notes(block: TableBlock) -> str:
    out = "".join(f'<p class="lcrp-warning"><strong>Warning:</strong> {html.escape(w, quote=False)}</p>\n'
                  for w in block.warnings)
    out += "".join(f'<p class="lcrp-note">{html.escape(n, quote=False)}</p>\n' for n in block.notes)
    if block.footnote:
        out += f'<p class="lcrp-note"><strong>Note:</strong> {html.escape(block.footnote, quote=False)}</p>\n'
    return out


def to_html(block: TableBlock) -> str:
    """An HTML fragment (for a README or index.html): the tables, then warnings and footnote."""
    return tables_html(block.panels) + _html_notes(block)


# ---------------------------------------------------------------- LaTeX

_LATEX = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"$\sim$", "^": r"\textasciicircum{}", "±": r"$\pm$",
    "–": "--", "δ": r"$\delta$", "λ": r"$\lambda$", "†": r"\textsuperscript{\dag}",
    "Δ": r"$\Delta$", "α": r"$\alpha$", "−": "$-$", "×": r"$\times$", "≥": r"$\geq$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX.get(ch, ch) for ch in text)


def _latex_tabular(table: Table, indent: str) -> list[str]:
    def row_tex(cells: Sequence[str], bold: bool) -> str:
        cells = [latex_escape(c) for c in cells]
        if bold:
            cells = [rf"\textbf{{{c}}}" for c in cells]
        return f"{indent}  " + " & ".join(cells) + r" \\"

    lines = [f"{indent}% {table.caption}"] if table.caption else []
    lines += [f"{indent}\\begin{{tabular}}{{{''.join(table.alignment)}}}", f"{indent}  \\toprule",
             f"{indent}  " + " & ".join(h.latex for h in table.headers) + r" \\", f"{indent}  \\midrule"]
    lines += [row_tex(row, i in table.bold) for i, row in enumerate(table.rows)]
    lines += [f"{indent}  \\bottomrule", f"{indent}\\end{{tabular}}"]
    return lines


def to_latex(block: TableBlock) -> str:
    """A ``table`` float with one booktabs ``tabular`` per panel, side by side."""
    lines = [r"% Generated by `lcrp report`; needs \usepackage{booktabs}.",
             r"\begin{table}[t]", r"  \centering",
             rf"  \caption{{{latex_escape(block.title)}}}", rf"  \label{{tab:{block.id}}}"]
    for i, table in enumerate(block.panels):
        if i:
            lines.append(r"  \hspace{2em}")
        lines += _latex_tabular(table, "  ")
    for w in block.warnings:
        lines.append(rf"  \par\smallskip{{\footnotesize\textbf{{Warning:}} {latex_escape(w)}}}")
    captions = [f"({chr(97 + i)}) {t.caption}" for i, t in enumerate(block.panels) if t.caption]
    for n in [*captions, *block.notes]:
        lines.append(rf"  \par\smallskip{{\footnotesize {latex_escape(n)}}}")
    if block.footnote:
        lines.append(rf"  \par\smallskip{{\footnotesize\textbf{{Note:}} {latex_escape(block.footnote)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- terminal

def to_text(table: Table) -> str:
    """Plain aligned columns for a terminal: text left-aligned ("l"), numbers right-aligned."""
    grid = [[h.text for h in table.headers], *[list(r) for r in table.rows]]
    widths = [max(len(row[j]) for row in grid) for j in range(len(table.headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w)
                         for c, w, a in zip(cells, widths, table.alignment, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(grid[0]), rule, *(line(r) for r in grid[1:])]) + "\n"


#: Panels wider than this together are printed one under the other in a terminal.
TERMINAL_WIDTH = 120


def block_text(block: TableBlock) -> str:
    """A table block for a terminal: its title, then its panels side by side (one under the other
    when they would not fit in TERMINAL_WIDTH); the best row of each panel is marked with ``*``."""
    columns = []
    for panel in block.panels:
        lines = to_text(panel).splitlines()
        marks = ["  ", "  ", *("* " if i in panel.bold else "  " for i in range(len(panel.rows)))]
        columns.append([m + line for m, line in zip(marks, lines, strict=True)])
    height = max(len(c) for c in columns)
    widths = [max(len(line) for line in c) for c in columns]
    if sum(widths) + 4 * (len(widths) - 1) > TERMINAL_WIDTH:
        rows = [line for i, c in enumerate(columns) for line in ([""] if i else []) + c]
    else:
        rows = ["    ".join((c[i] if i < len(c) else "").ljust(w)
                           for c, w in zip(columns, widths, strict=True)).rstrip()
                for i in range(height)]
    notes = [f"! {w}" for w in block.warnings] + [f"  {n}" for n in block.notes]
    return "\n".join([block.title, *rows, *notes]) + "\n"
