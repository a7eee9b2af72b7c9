"""Screenshots of a Snakemake report in headless Chromium: the landing page, one figure page and one table page.

    python tools/report_screenshots.py report.html out_dir [figure_path] [table_path]

The report is a single-page app without URLs per page, so for each view this writes a copy of the report with a
script that opens the view (through the app's own ``setView``) and lets Chromium take the screenshot. Needs a
``chromium`` on PATH (Debian: ``apt-get install chromium``). docs/report.md shows the screenshots.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=5000"]


def screenshot(page: str, out: Path, size: str = "1400,1000") -> Path:
    with tempfile.TemporaryDirectory() as profile, tempfile.NamedTemporaryFile("w", suffix=".html") as html:
        html.write(page)
        html.flush()
        subprocess.run(["chromium", *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                        f"--window-size={size}", f"file://{html.name}"], check=True, capture_output=True)
    return out


def _inject(page: str, script: str) -> str:
    """``script`` run 300 ms after load, before the last ``</body>`` (the embedded libraries hold such strings)."""
    head, tag, tail = page.rpartition("</body>")
    delayed = f"<script>window.addEventListener('load', () => setTimeout(() => {{ {script} }}, 300));</script>"
    return f"{head}{delayed}\n{tag}{tail}"


def with_category(page: str, category: str) -> str:
    return _inject(page, f"app.showCategory({json.dumps(category)});")


def with_view(page: str, path: str, category: str, content: str) -> str:
    path = json.dumps(path)
    return _inject(page, f"app.showCategory({json.dumps(category)}); app.setView({{navbarMode: 'resultinfo', "
                         f"resultPath: {path}, content: {json.dumps(content)}, contentPath: results[{path}].data_uri}});")


def main(report: Path, out_dir: Path, figure: str, table: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    page = report.read_text()
    screenshot(page, out_dir / "report_landing.png")
    screenshot(with_category(page, "Figures"), out_dir / "report_figures_list.png")
    screenshot(with_view(page, figure, "Figures", "img"), out_dir / "report_figure.png")
    screenshot(with_view(page, table, "Tables", "html"), out_dir / "report_table.png")


if __name__ == "__main__":
    args = sys.argv[1:]
    main(Path(args[0]), Path(args[1]), args[2] if len(args) > 2 else "figures/speedup.png",
         args[3] if len(args) > 3 else "figures/report/main_table.html")
