"""HTML pages of the result tables, for the Snakemake report.

The report shows images, PDFs and HTML in the browser but offers every other file (``.md``, ``.tsv``) only as a
download, so a reader who opens "Tables" sees no table. These pages render the committed tables as HTML: the main
table from its Markdown (headings, pipe tables with their column alignment, paragraphs), the TSV tables with numbers
rounded to four decimals. Only the subset of Markdown that ``margin_retrieval.analysis.tables`` writes is supported.
"""

from __future__ import annotations

import html
import os
import re

import pandas as pd

from margin_retrieval.jobs.io import atomic_path

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.8em; }
th, td { border: 1px solid #ccc; padding: 0.15em 0.3em; }
td:first-child { white-space: nowrap; }
th { background: #f0f0f0; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
p { max-width: 60em; line-height: 1.4; }
"""
_ALIGN = {":---": "", "---:": "r", ":---:": ""}


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table(lines: list[str]) -> str:
    header, rule, *rows = lines
    classes = [_ALIGN.get(cell.replace(" ", ""), "") for cell in _cells(rule)]

    def row(cells: list[str], tag: str) -> str:
        return "<tr>" + "".join(f'<{tag} class="{c}">{html.escape(cell)}</{tag}>'
                                for cell, c in zip(cells, classes)) + "</tr>"

    body = "\n".join(row(_cells(line), "td") for line in rows)
    return f"<table>\n<thead>{row(_cells(header), 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def markdown_to_html(text: str) -> str:
    """Headings, pipe tables and paragraphs of ``text`` as HTML (everything escaped)."""
    blocks = [block.strip("\n") for block in re.split(r"\n\s*\n", text) if block.strip()]
    parts = []
    for block in blocks:
        lines = block.splitlines()
        heading = re.fullmatch(r"(#{1,6})\s+(.*)", lines[0])
        if heading and len(lines) == 1:
            level = len(heading[1])
            parts.append(f"<h{level}>{html.escape(heading[2])}</h{level}>")
        elif len(lines) >= 2 and all(line.lstrip().startswith("|") for line in lines):
            parts.append(_table(lines))
        else:
            parts.append(f"<p>{html.escape(' '.join(lines))}</p>")
    return "\n".join(parts)


def tsv_to_html(path: str | os.PathLike) -> str:
    """A TSV file as an HTML table: empty cells stay empty, floats get four decimals, numbers align right."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    numeric = {column for column in frame if frame[column].str.fullmatch(r"-?[\d.]+(e-?\d+)?|").all()
               and (frame[column] != "").any()}

    def cell(value: str, column: str) -> str:
        if column in numeric and value and not value.isdigit():
            value = f"{float(value):.4f}"
        return f'<td class="{"r" if column in numeric else ""}">{html.escape(value)}</td>'

    header = "".join(f'<th class="{"r" if c in numeric else ""}">{html.escape(c)}</th>' for c in frame.columns)
    rows = "\n".join("<tr>" + "".join(cell(value, column) for column, value in row.items()) + "</tr>"
                     for _, row in frame.iterrows())
    return f"<table>\n<thead><tr>{header}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def write_table_page(source: str | os.PathLike, out: str | os.PathLike, title: str) -> None:
    """The page of one table file (``.md`` or ``.tsv``), written atomically."""
    source = str(source)
    body = markdown_to_html(open(source).read()) if source.endswith(".md") else tsv_to_html(source)
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n<h2>{html.escape(title)}</h2>\n{body}\n"
            f"<p>Source file: <code>{html.escape(source)}</code></p>\n</body></html>\n")
    with atomic_path(out) as tmp:
        tmp.write_text(page)
