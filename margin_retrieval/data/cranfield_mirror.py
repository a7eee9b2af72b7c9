"""Rebuild ``ir_datasets``' own ``cranfield`` download from an offline copy of its three files.

``ir_datasets`` downloads ``cran.tar.gz`` (``cran.all.1400``, ``cran.qry``, ``cranqrel`` at the archive's top level)
into ``$IR_DATASETS_HOME/cranfield/`` and uses a file already in that slot as is. The offline copy holds the same three
files; this module packs them into that archive after checking the counts ``ir_datasets`` reports for the official
collection, so that a different copy fails here instead of evaluating on other data.

The collection's relevance codes run the wrong way for graded measures (1 = complete answer ... 4 = minimum interest,
-1 = no interest; ``ir_datasets`` passes them through): ``RELEVANCE_MAP`` turns them into grades where higher is more
relevant. The config applies it per collection (``collections.<name>.relevance_map``).
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

from margin_retrieval.jobs.io import atomic_path

FILES = ("cran.all.1400", "cran.qry", "cranqrel")
EXPECTED = {"docs": 1400, "queries": 225, "qrels": 1837}
# Cleverdon's codes -> grades: 1 complete answer -> 4, 2 high relevance -> 3, 3 useful background -> 2,
# 4 minimum interest -> 1, -1 no interest -> 0.
RELEVANCE_MAP = {1: 4, 2: 3, 3: 2, 4: 1, -1: 0}


def counts(mirror_dir: Path) -> dict[str, int]:
    """Documents and queries (``.I`` records) and qrels lines of the three files."""
    text = {name: (Path(mirror_dir) / name).read_text(encoding="utf-8", errors="replace") for name in FILES}
    return {
        "docs": len(re.findall(r"^\.I ", text["cran.all.1400"], flags=re.MULTILINE)),
        "queries": len(re.findall(r"^\.I ", text["cran.qry"], flags=re.MULTILINE)),
        "qrels": sum(1 for line in text["cranqrel"].splitlines() if line.strip()),
    }


def rebuild_cran_tar(mirror_dir: Path, out_tar: Path) -> dict[str, int]:
    """Write ``cran.tar.gz`` from the files in ``mirror_dir`` to ``out_tar`` (atomically); returns the counts, and
    raises when a file is missing or the counts differ from the official collection's."""
    mirror_dir = Path(mirror_dir)
    missing = [name for name in FILES if not (mirror_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"Cranfield offline mirror {mirror_dir}: missing {', '.join(missing)} "
                                f"(expected {', '.join(FILES)})")
    found = counts(mirror_dir)
    if found != EXPECTED:
        raise ValueError(f"Cranfield offline mirror {mirror_dir}: counts {found} differ from the official "
                         f"collection's {EXPECTED}")
    with atomic_path(out_tar) as tmp, tarfile.open(tmp, "w:gz") as archive:
        for name in FILES:
            data = (mirror_dir / name).read_bytes()
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o644  # mtime 0: the same archive from the same files
            archive.addfile(member, io.BytesIO(data))
    return found
