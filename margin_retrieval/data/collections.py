"""The one place that knows ``ir_datasets``: load a collection, read its texts, make its data available offline.

A collection spec (``train_data`` or an entry of ``collections`` in the config) is either

- ``{"dataset": "<ir_datasets id>"}``, e.g. ``beir/scifact/test``, or
- local files ``{"docs": path, "queries": path, "qrels": path, "docs_format": "tsv" | "trec" | "jsonl"}``:

  ==========  =====================================================================================================
  docs        ``tsv``: ``doc_id<TAB>text`` lines, no header; ``trec``: ``<DOC><DOCNO>..</DOCNO>..</DOC>`` SGML (a
              file, ``.gz`` or a directory of them; text = the content tags); ``jsonl``: BEIR ``corpus.jsonl``
              lines ``{"_id", "title", "text"}`` (title optional)
  queries     ``qid<TAB>text`` lines, no header; a ``.jsonl`` file is read as BEIR ``queries.jsonl`` ``{"_id", "text"}``
  qrels       TREC ``qid 0 doc_id rel``; a file whose first line is BEIR's ``query-id<TAB>corpus-id<TAB>score`` header
              is read as BEIR qrels
  ==========  =====================================================================================================

  Local collections are registered in-process as ``local/<name>/<key>`` (``key`` hashes the paths, sizes and
  modification times), idempotently. The files are never written next to: each is linked into
  ``$IR_DATASETS_HOME/local/<name>/<key>/`` and ``ir_datasets`` keeps its docstore there.

Document text is ``title + " " + text`` when the document has a non-empty title (BEIR), else ``text``; query text
is ``.text``. Other keys of a spec (``binarize_at``, ``measures``, ``docpairs``...) are ignored here; an evaluation
collection's ``relevance_map`` is passed to ``qrels`` by the evaluation job.

``configure_home`` must run before anything imports ``ir_datasets``: its built-in datasets fix their cache paths
when the package is imported.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from margin_retrieval.data.home import configure_home, home_lock, home_path  # noqa: F401 (part of this API)
from margin_retrieval.data.local_collections import LOCAL_KEYS, load_local, local_paths  # noqa: F401 (API)
from margin_retrieval.data.local_formats import MalformedFileError, check_local_files
from margin_retrieval.jobs.errors import ConfigError, UserError
from margin_retrieval.jobs.io import write_json

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------------------------------------
# loading


def is_local(spec: dict) -> bool:
    return "dataset" not in spec or not spec.get("dataset")


def load(spec: dict, name: str):
    """The ``ir_datasets`` dataset of a spec (an ir_datasets id, or local files registered under ``local/...``)."""
    if not is_local(spec):
        return load_id(spec["dataset"])
    return load_local(spec, name)


def load_id(dataset_id: str):
    import ir_datasets

    try:
        return ir_datasets.load(dataset_id)
    except KeyError:
        raise ValueError(f"unknown ir_datasets id {dataset_id!r} (see https://ir-datasets.com for the ids)") from None


def doc_text(doc) -> str:
    title = getattr(doc, "title", None)
    text = getattr(doc, "text", None) or ""
    if isinstance(title, str) and title.strip():
        return f"{title} {text}"
    return text


def queries(dataset) -> dict[str, str]:
    return {query.query_id: query.text for query in dataset.queries_iter()}


def qrels(dataset, relevance_map: Mapping[int, int] | None = None) -> dict[str, dict[str, int]]:
    """``{qid: {doc_id: label}}``; ``relevance_map`` (raw label -> grade, e.g. Cranfield's inverted codes) applies
    to every label, and a label it does not name is an error rather than a silent grade."""
    result: dict[str, dict[str, int]] = {}
    for qrel in dataset.qrels_iter():
        label = int(qrel.relevance)
        if relevance_map is not None:
            if label not in relevance_map:
                raise ConfigError(f"relevance label {label} (query {qrel.query_id}, doc {qrel.doc_id}) is not in the "
                                  f"collection's relevance_map {dict(relevance_map)}")
            label = relevance_map[label]
        result.setdefault(qrel.query_id, {})[qrel.doc_id] = label
    return result


def doc_count(dataset) -> int:
    count = dataset.docs_count()
    if count is None:
        count = dataset.docs_store().count()
    return int(count)


def docs_slice(dataset, start: int, stop: int) -> Iterator[tuple[str, str]]:
    """(doc_id, text) of the documents [start, stop) in corpus order."""
    for doc in dataset.docs_iter()[start:stop]:
        yield doc.doc_id, doc_text(doc)


def doc_lookup(dataset, ids: Iterable[str]) -> dict[str, str]:
    """{doc_id: text} of ``ids``; an id missing from the corpus raises KeyError."""
    ids = list(ids)
    found = dataset.docs_store().get_many(ids)
    missing = [doc_id for doc_id in ids if doc_id not in found]
    if missing:
        raise KeyError(f"{len(missing)} doc ids are not in the corpus, e.g. {missing[:5]}")
    return {doc_id: doc_text(doc) for doc_id, doc in found.items()}


# --------------------------------------------------------------------------------------------------------------------
# making the data available (the download rule)


class DataUnavailable(UserError, RuntimeError):
    """A dataset could not be downloaded and no usable offline mirror was configured."""


def _mirror_builders():
    from margin_retrieval.data.cranfield_mirror import rebuild_cran_tar
    from margin_retrieval.data.scifact_mirror import rebuild_beir_zip

    # mirror key -> (cache file it fills, relative to the ir_datasets home; builder(mirror_dir, out_file))
    return {"beir/scifact": ("beir/scifact/source.zip", rebuild_beir_zip),
            "cranfield": ("cranfield/cran.tar.gz", rebuild_cran_tar)}


def matching_mirror(dataset_id: str, mirrors: dict[str, str] | None) -> str | None:
    """The longest configured mirror key that is ``dataset_id`` or a '/'-prefix of it."""
    keys = [key for key in (mirrors or {}) if dataset_id == key or dataset_id.startswith(key.rstrip("/") + "/")]
    return max(keys, key=len) if keys else None


# Parts beyond docs, queries and qrels that a collection provides and a later job may read.
PARTS = ("docpairs", "scoreddocs")


def materialize(dataset, parts: Iterable[str] = ()) -> dict[str, int]:
    """Touch every part the workflow reads (this downloads it) and build the docstore; return the counts.

    Of ``PARTS`` only those named in ``parts`` are touched: the training pairs (MS MARCO docpairs) and the candidate
    lists that validation re-ranks (TREC DL scoreddocs) are read by later jobs on offline compute nodes, but MS
    MARCO's train and dev top-1000 runs, which nothing reads, are 12 GB of downloads.

    The docstore is built here, once, because ``ir_datasets`` does not guard against two processes building the same
    docstore at the same time (parallel encode/train jobs would).
    """
    n_queries = sum(1 for _ in dataset.queries_iter())
    n_qrels = sum(1 for _ in dataset.qrels_iter())
    store = dataset.docs_store()
    if hasattr(store, "build"):
        store.build()
    for part in parts:
        next(iter(getattr(dataset, f"{part}_iter")()), None)
    return {"docs": doc_count(dataset), "queries": n_queries, "qrels": n_qrels}


def prepare(spec: dict, name: str, mirrors: dict[str, str] | None = None,
            home: str | os.PathLike | None = None, parts: Iterable[str] = ()) -> dict:
    """Make a collection usable offline and return its manifest (counts, source).

    An ir_datasets id is downloaded by ``ir_datasets``; when that fails and an ``offline_mirrors`` key is a prefix of
    the id, the mirror (a path relative to the working directory) is rebuilt into the ``ir_datasets`` cache and the
    data read again. Local files are checked (existence, non-empty, qrels pointing at known queries and docs).
    ``parts`` (of ``PARTS``) are made available too; a local collection provides none.
    """
    configure_home(home)
    start = time.perf_counter()
    # One prepare at a time per home: collections that share a docstore (beir/scifact/train and /test) would
    # otherwise build it twice into the same files.
    with home_lock():
        if is_local(spec):
            if parts:
                raise ValueError(f"collection {name!r}: local files provide no {', '.join(parts)}; "
                                 "give an ir_datasets id that has them")
            manifest = _prepare_local(spec, name)
        else:
            manifest = _prepare_id(spec["dataset"], name, mirrors, list(parts))
    manifest |= {"name": name, "ir_datasets_home": str(home_path().resolve()),
                 "seconds": round(time.perf_counter() - start, 2)}
    log.info("prepared %s: %s", name, manifest)
    return manifest


def _prepare_id(dataset_id: str, name: str, mirrors: dict[str, str] | None, parts: list[str]) -> dict:
    dataset = load_id(dataset_id)  # unknown ids fail here, before any download
    lacking = [part for part in parts if not getattr(dataset, f"has_{part}")()]
    if lacking:
        raise ValueError(f"collection {name!r}: {dataset_id!r} provides no {', '.join(lacking)}")
    try:
        counts = materialize(dataset, parts)
        key = matching_mirror(dataset_id, _mirror_builders())
        marker = home_path() / f"{_mirror_builders()[key][0]}.mirror.json" if key else None
        if marker is not None and marker.is_file():  # served from a cache file that an earlier mirror rebuild wrote
            return {"dataset_id": dataset_id, "source": json.loads(marker.read_text())["source"], **counts}
        return {"dataset_id": dataset_id, "source": "ir_datasets", **counts}
    except Exception as error:  # noqa: BLE001 (any download failure: network, HTTP, checksum)
        first_error = error
    log.warning("ir_datasets could not provide %s: %r", dataset_id, first_error)
    key = matching_mirror(dataset_id, mirrors)
    if key is None:
        raise DataUnavailable(
            f"collection {name!r}: ir_datasets could not download {dataset_id!r} ({first_error!r}) and no offline "
            f"mirror is configured for it. Run the download rule on a machine with internet access, or place the "
            f"files in the ir_datasets home {home_path().resolve()}, or add an 'offline_mirrors' entry whose key is "
            f"a prefix of {dataset_id!r} (supported: {sorted(_mirror_builders())})."
        ) from first_error
    builders = _mirror_builders()
    if key not in builders:
        raise DataUnavailable(f"collection {name!r}: offline mirror key {key!r} has no rebuilder "
                              f"(supported: {sorted(builders)})") from first_error
    mirror_dir = Path(mirrors[key]).expanduser()
    mirror_abs = mirror_dir if mirror_dir.is_absolute() else Path.cwd() / mirror_dir
    if not mirror_abs.is_dir():
        raise DataUnavailable(
            f"collection {name!r}: ir_datasets could not download {dataset_id!r} ({first_error!r}), and the offline "
            f"mirror of key {key!r} (offline_mirrors: {{{key!r}: {str(mirrors[key])!r}}}) is missing: expected the "
            f"directory {mirror_abs.resolve()} holding the mirror files. Provide it, fix the path, or run on a "
            f"machine with internet access."
        ) from first_error
    cache_file, builder = builders[key]
    out = home_path() / cache_file
    log.info("rebuilding %s from the offline mirror %s into %s", key, mirror_abs, out)
    builder(mirror_abs, out)
    source = f"offline_mirror:{mirrors[key]}"
    write_json(f"{out}.mirror.json", {"source": source, "mirror_dir": str(mirror_abs.resolve())})
    counts = materialize(load_id(dataset_id), parts)
    return {"dataset_id": dataset_id, "source": source, **counts}


def _prepare_local(spec: dict, name: str) -> dict:
    paths = local_paths(spec, name)
    check_local_files(paths, spec.get("docs_format", "tsv"), name)  # file:line errors before ir_datasets parses
    dataset = load(spec, name)
    counts = materialize(dataset)
    for key in LOCAL_KEYS:
        if counts[key] == 0:
            raise MalformedFileError(f"collection {name!r}: {key} file {paths[key]} holds no entries")
    query_ids = set(queries(dataset))
    judged = qrels(dataset)
    unknown_queries = sorted(set(judged) - query_ids)
    if len(unknown_queries) == len(judged):
        raise MalformedFileError(f"collection {name!r}: no qrels query id is in {paths['queries']} "
                         f"(e.g. {unknown_queries[:3]})")
    if unknown_queries:
        log.warning("collection %s: %d qrels queries are not in the queries file, e.g. %s", name,
                    len(unknown_queries), unknown_queries[:3])
    judged_docs = sorted({doc for docs in judged.values() for doc in docs})
    found = dataset.docs_store().get_many(judged_docs)
    unknown_docs = [doc for doc in judged_docs if doc not in found]
    if len(unknown_docs) == len(judged_docs):
        raise MalformedFileError(f"collection {name!r}: no judged doc id is in {paths['docs']} "
                                 f"(e.g. {unknown_docs[:3]})")
    if unknown_docs:
        log.warning("collection %s: %d judged docs are not in the corpus, e.g. %s", name, len(unknown_docs),
                    unknown_docs[:3])
    return {"dataset_id": None, "source": "local", "files": {k: str(v) for k, v in paths.items()},
            "docs_format": spec.get("docs_format", "tsv"), **counts,
            "judged_queries_missing": len(unknown_queries), "judged_docs_missing": len(unknown_docs)}
