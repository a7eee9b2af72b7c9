"""Local collection files registered with ``ir_datasets`` in-process as ``local/<name>/<key>`` (see
``margin_retrieval.data.collections`` for the formats): ``key`` hashes the paths, sizes and modification times, so
registration is idempotent; the files are linked into ``$IR_DATASETS_HOME/local/<name>/<key>/``, never written next to.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from margin_retrieval.data.home import home_path
from margin_retrieval.data.local_formats import BEIR_QRELS_HEADER, first_line

LOCAL_KEYS = ("docs", "queries", "qrels")
DOCS_FORMATS = ("tsv", "trec", "jsonl")


def local_paths(spec: dict, name: str) -> dict[str, Path]:
    """The local files of a spec, checked to exist (FileNotFoundError names the config key)."""
    missing = [key for key in LOCAL_KEYS if not spec.get(key)]
    if missing:
        raise ValueError(f"collection {name!r}: a local collection needs {', '.join(LOCAL_KEYS)}; missing {missing}")
    paths = {}
    for key in LOCAL_KEYS:
        path = Path(spec[key]).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"collection {name!r}: the file of config key {key!r} does not exist: {path} "
                                    f"(relative paths are relative to {Path.cwd()})")
        paths[key] = path.resolve()
    return paths


def _fingerprint(paths: dict[str, Path], docs_format: str) -> str:
    digest = hashlib.sha256(docs_format.encode())
    for key in LOCAL_KEYS:
        stat = paths[key].stat()
        digest.update(f"\0{key}\0{paths[key]}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _link(target: Path, link: Path) -> Path:
    """A symlink ``link`` -> ``target`` (created atomically; an existing one is kept)."""
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def load_local(spec: dict, name: str):
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecDocs, TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    docs_format = spec.get("docs_format", "tsv")
    if docs_format not in DOCS_FORMATS:
        raise ValueError(f"collection {name!r}: docs_format must be one of {DOCS_FORMATS}, not {docs_format!r}")
    paths = local_paths(spec, name)
    key = _fingerprint(paths, docs_format)
    registry_name = f"local/{name}/{key}"
    if registry_name in set(ir_datasets.registry):
        return ir_datasets.load(registry_name)

    work = home_path() / "local" / name / key
    suffix = "".join(paths["docs"].suffixes[-1:]) if docs_format == "trec" else f".{docs_format}"
    docs_link = _link(paths["docs"], work / f"docs{suffix}")
    (work / "source.json").write_text(json.dumps({k: str(v) for k, v in paths.items()} | {"docs_format": docs_format},
                                                 indent=2) + "\n")
    if docs_format == "tsv":
        docs = TsvDocs(LocalDownload(docs_link))  # docstore: <docs_link>.pklz4, inside the home
    elif docs_format == "trec":
        docs = TrecDocs(LocalDownload(docs_link), docstore_path=f"{work / 'docs'}.pklz4")
    else:
        docs = _BeirJsonlDocs(LocalDownload(docs_link), docstore_path=f"{docs_link}.pklz4")

    if paths["queries"].suffix.lower() == ".jsonl":
        queries = _BeirJsonlQueries(LocalDownload(paths["queries"]))
    else:
        queries = TsvQueries(LocalDownload(paths["queries"]))

    if first_line(paths["qrels"]).strip() == BEIR_QRELS_HEADER:
        from ir_datasets.datasets.beir import BeirQrels

        qrels = BeirQrels(LocalDownload(paths["qrels"]), qrels_defs={})
    else:
        qrels = TrecQrels(LocalDownload(paths["qrels"]), {})

    dataset = Dataset(docs, queries, qrels)
    if registry_name not in set(ir_datasets.registry):
        ir_datasets.registry.register(registry_name, dataset)
    return ir_datasets.load(registry_name)


def _beir_jsonl_classes():
    """JSONL readers that tolerate a missing title (BEIR's own reader needs every field)."""
    from ir_datasets.datasets.beir import BeirTitleDoc
    from ir_datasets.formats import GenericQuery
    from ir_datasets.formats.jsonl import JsonlDocs, JsonlQueries

    class BeirJsonlDocs(JsonlDocs):
        def __init__(self, dlc, docstore_path):
            super().__init__(dlc, doc_cls=BeirTitleDoc, docstore_path=docstore_path)

        def _iter(self):
            with self._dlcs[0].stream() as handle:
                for line in handle:
                    if line.strip():
                        data = json.loads(line)
                        yield BeirTitleDoc(str(data["_id"]), data.get("text") or "", data.get("title") or "")

    class BeirJsonlQueries(JsonlQueries):
        def __init__(self, dlc):
            super().__init__(dlc, query_cls=GenericQuery)

        def _iter(self):
            with self._dlcs[0].stream() as handle:
                for line in handle:
                    if line.strip():
                        data = json.loads(line)
                        yield GenericQuery(str(data["_id"]), data["text"])

    return BeirJsonlDocs, BeirJsonlQueries


def _BeirJsonlDocs(dlc, docstore_path):  # noqa: N802 (a class factory, imported lazily)
    return _beir_jsonl_classes()[0](dlc, docstore_path)


def _BeirJsonlQueries(dlc):  # noqa: N802
    return _beir_jsonl_classes()[1](dlc)


# --------------------------------------------------------------------------------------------------------------------
# accessors
