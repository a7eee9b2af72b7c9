"""Line-by-line checks of a local collection's files, run by the download job before ``ir_datasets`` parses them.

``ir_datasets`` reports a malformed line as "expected 4 columns, got 3" or a bare ``int()`` ValueError, without the
file or the line; these checks name the file, the line number and the expected shape. The shapes are the ones the
readers in ``collections.py`` accept (blank lines are skipped, as ``ir_datasets`` does).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Callable, Iterator

from margin_retrieval.jobs.errors import UserError

BEIR_QRELS_HEADER = "query-id\tcorpus-id\tscore"
TSV_DOCS = "'doc_id<TAB>text' (exactly one tab)"
TSV_QUERIES = "'query_id<TAB>text' (exactly one tab)"
TREC_QRELS = "'query_id 0 doc_id relevance' (4 whitespace-separated columns, integer relevance)"
BEIR_QRELS = "'query-id<TAB>corpus-id<TAB>score' (3 columns, integer score)"


class MalformedFileError(UserError, ValueError):
    """Local collection files the workflow cannot use: a line without the expected shape, a file without entries,
    qrels whose ids match no query or no document."""


def check_local_files(paths: dict[str, Path], docs_format: str, name: str, max_lines: int | None = None) -> None:
    """Check the docs (tsv and jsonl; trec SGML is left to its parser), queries and qrels files of collection
    ``name``; raise MalformedFileError naming the file, the line and the expected shape. ``max_lines`` checks only
    each file's first lines (the config check, which must take well under a second)."""
    if docs_format == "tsv":
        _check_lines(paths["docs"], name, "docs", TSV_DOCS, _tab_fields(2), max_lines)
    elif docs_format == "jsonl":
        _check_lines(paths["docs"], name, "docs", "a JSON object with '_id' (BEIR corpus.jsonl)", _json_with("_id"),
                     max_lines)
    if paths["queries"].suffix.lower() == ".jsonl":
        _check_lines(paths["queries"], name, "queries", "a JSON object with '_id' and 'text' (BEIR queries.jsonl)",
                     _json_with("_id", "text"), max_lines)
    else:
        _check_lines(paths["queries"], name, "queries", TSV_QUERIES, _tab_fields(2), max_lines)
    if first_line(paths["qrels"]).strip() == BEIR_QRELS_HEADER:
        _check_lines(paths["qrels"], name, "qrels", BEIR_QRELS, _qrels_columns(3), max_lines, skip_first=True)
    else:
        _check_lines(paths["qrels"], name, "qrels", TREC_QRELS, _qrels_columns(4), max_lines)


def judged_query_count(path: Path) -> int:
    """How many queries have a judged positive (relevance > 0) in a TREC or BEIR qrels file. Lines that do not
    parse (BEIR's header, a malformed line) are skipped: ``check_local_files`` reports the malformed ones."""
    queries = set()
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            columns = line.split()
            if len(columns) in (3, 4) and columns[-1].lstrip("-").isdigit() and int(columns[-1]) > 0:
                queries.add(columns[0])
    return len(queries)


def first_line(path: Path) -> str:
    """The first line of a text file (BEIR qrels start with a header)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def _numbered_lines(path: Path, skip_first: bool, max_lines: int | None) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(itertools.islice(handle, max_lines), start=1):
            if (skip_first and number == 1) or line == "\n":
                continue
            yield number, line


def _check_lines(path: Path, name: str, key: str, shape: str, is_valid: Callable[[str], bool],
                 max_lines: int | None, skip_first: bool = False) -> None:
    try:
        for number, line in _numbered_lines(path, skip_first, max_lines):
            if not is_valid(line):
                shown = line.rstrip("\n")
                shown = shown if len(shown) <= 80 else shown[:77] + "..."
                raise MalformedFileError(f"collection {name!r} ({key}): {path}:{number}: expected {shape}, "
                                         f"got {shown!r}")
    except UnicodeDecodeError as error:
        raise MalformedFileError(f"collection {name!r} ({key}): {path} is not UTF-8 text ({error})") from None


def _tab_fields(count: int) -> Callable[[str], bool]:
    return lambda line: len(line.rstrip("\n").split("\t")) == count


def _qrels_columns(count: int) -> Callable[[str], bool]:
    def valid(line: str) -> bool:
        columns = line.split()
        if len(columns) != count:
            return False
        try:
            int(columns[-1])
        except ValueError:
            return False
        return True

    return valid


def _json_with(*keys: str) -> Callable[[str], bool]:
    def valid(line: str) -> bool:
        if not line.strip():
            return True
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return False
        return isinstance(record, dict) and all(key in record for key in keys)

    return valid
