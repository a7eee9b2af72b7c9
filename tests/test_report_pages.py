"""HTML pages of the result tables: every row and cell of the source is in the page, numbers right-aligned."""

from __future__ import annotations

import html
from pathlib import Path

from margin_retrieval.analysis.report_pages import markdown_to_html, write_table_page

REPO = Path(__file__).resolve().parents[1]


def test_markdown_tables_keep_every_cell_and_the_alignment():
    text = "### c\n\n| System | nDCG@10 |\n|:---|---:|\n| a <b> | 0.5† |\n| c | 0.4 |\n\nNote: † = significant.\n"
    page = markdown_to_html(text)
    assert "<h3>c</h3>" in page and "<p>Note: † = significant.</p>" in page
    assert '<td class="">a &lt;b&gt;</td><td class="r">0.5†</td>' in page
    assert page.count("<tr>") == 3


def test_committed_main_table_page_holds_every_row(tmp_path):
    source = REPO / "figures/main_table.md"
    write_table_page(source, tmp_path / "main.html", "Main results")
    page = (tmp_path / "main.html").read_text()
    rows = [line for line in source.read_text().splitlines() if line.startswith("| ") and "---" not in line]
    for line in rows:
        for cell in line.strip("| ").split(" | "):
            assert html.escape(cell.strip()) in page, cell
    assert page.count("<tr>") == len(rows)


def test_tsv_page_rounds_floats_keeps_integers_text_and_empty_cells(tmp_path):
    source = tmp_path / "speedup.tsv"
    source.write_text("method\tsteps\tspeedup\tnote\n"
                      "adaptive margin\t27\t1\t\n"
                      "Margin-MSE\t14\t0.518519\tcap <reached>\n")
    write_table_page(source, tmp_path / "speedup.html", "Speed-up")
    page = (tmp_path / "speedup.html").read_text()
    assert page.count("<tr>") == 3
    assert '<td class="">adaptive margin</td><td class="r">27</td><td class="r">1</td><td class=""></td>' in page
    assert '<td class="r">0.5185</td><td class="">cap &lt;reached&gt;</td>' in page
