"""Loading collections through ir_datasets (local files and ids), the offline mirror fallback, the SciFact rebuild."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from margin_retrieval.data import collections
from margin_retrieval.data import scifact_mirror as scifact_mirror_module
from margin_retrieval.data.cranfield_mirror import rebuild_cran_tar
from margin_retrieval.data.scifact_mirror import EXPECTED, parse_numpy_strings, rebuild_beir_zip
from tests.msmarco_shaped import OFFLINE_ENV, write_msmarco_passage
from tests.tiny_collection import write_collection

REPO = Path(__file__).resolve().parents[1]
SCIFACT_MIRROR = Path("/work/shared/data/scifact")
# A tiny mirror in the layout of scifact_claimverifier.zip: 3 abstracts, 2 train claims (one repeats a citation,
# which BEIR deduplicates) and 1 validation claim (BEIR's test split).
TINY_MIRROR_COUNTS = {"docs": 3, "train_queries": 2, "train_qrels": 3, "test_queries": 1, "test_qrels": 1}


def write_tiny_mirror(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    corpus = [["doc_id", "title", "abstract", "structured"], ["11", "Cells", "['Cells divide.' 'They grow.']", "False"],
              ["12", "Genes", "['Genes code.']", "False"], ["13", "Blood", "[\"Blood's flow.\"]", "False"]]
    train = [["id", "claim", "cited_doc_ids"], ["1", "cells divide", "[11, 12]"], ["1", "cells divide", "[11]"],
             ["2", "genes code", "[12]"]]
    validation = [["id", "claim", "cited_doc_ids"], ["3", "blood flows", "[13]"]]
    with zipfile.ZipFile(directory / "scifact_claimverifier.zip", "w") as archive:
        for name, rows in (("corpus_train.csv", corpus), ("claims_train.csv", train),
                           ("claims_validation.csv", validation), ("claims_test.csv", validation[:1])):
            text = io.StringIO()
            csv.writer(text).writerows(rows)
            archive.writestr(name, text.getvalue())
    return directory


@pytest.fixture(params=["tiny", "shared"])
def scifact_mirror(request, tmp_path, monkeypatch):
    """(mirror directory, expected counts): a tiny copy always; the real mirror where this machine has it."""
    if request.param == "shared":
        if not (SCIFACT_MIRROR / "scifact_claimverifier.zip").is_file():
            pytest.skip("the offline SciFact mirror is not on this machine (the tiny copy still runs)")
        return SCIFACT_MIRROR, dict(EXPECTED)
    monkeypatch.setattr(scifact_mirror_module, "EXPECTED", TINY_MIRROR_COUNTS)
    return write_tiny_mirror(tmp_path / "tiny-mirror"), dict(TINY_MIRROR_COUNTS)


@pytest.fixture()
def home(tmp_path, monkeypatch):
    path = tmp_path / "home"
    monkeypatch.setenv("IR_DATASETS_HOME", str(path))
    return path


@pytest.fixture()
def tiny(tmp_path, home):
    return write_collection(tmp_path / "data", "tiny", n_queries=12, seed=0)


def test_local_tsv_collection_serves_every_accessor(tiny, tmp_path):
    dataset = collections.load(tiny, "tiny")
    assert collections.load(tiny, "tiny") is not None  # registration is idempotent
    assert collections.doc_count(dataset) == 48
    queries = collections.queries(dataset)
    assert len(queries) == 12 and all(queries.values())
    qrels = collections.qrels(dataset)
    assert len(qrels) == 12 and all(len(docs) == 2 for docs in qrels.values())
    assert {rel for docs in qrels.values() for rel in docs.values()} == {1, 2}
    all_docs = list(collections.docs_slice(dataset, 0, 48))
    assert len(all_docs) == 48 and len({doc_id for doc_id, _ in all_docs}) == 48
    assert list(collections.docs_slice(dataset, 5, 9)) == all_docs[5:9]
    lines = (tmp_path / "data/docs.tsv").read_text().splitlines()
    assert all_docs[0] == tuple(lines[0].split("\t"))  # corpus order
    picked = [all_docs[7][0], all_docs[3][0]]
    assert collections.doc_lookup(dataset, picked) == {all_docs[7][0]: all_docs[7][1], all_docs[3][0]: all_docs[3][1]}
    with pytest.raises(KeyError):
        collections.doc_lookup(dataset, ["no-such-doc"])
    # ir_datasets keeps its docstore in its home, never next to the user's files.
    assert not list((tmp_path / "data").glob("*.pklz4"))


def test_changed_files_get_a_fresh_registration(tiny, tmp_path):
    first = collections.load(tiny, "tiny")
    assert collections.doc_count(first) == 48
    docs = Path(tiny["docs"])
    docs.write_text(docs.read_text() + "extra-doc\tsome new text\n")
    second = collections.load(tiny, "tiny")
    assert collections.doc_count(second) == 49


def test_jsonl_and_trec_docs_with_beir_files(tmp_path, home):
    data = tmp_path / "beir"
    data.mkdir()
    (data / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "title": "Title one", "text": "text one"}) + "\n"
        + json.dumps({"_id": "d2", "text": "text two"}) + "\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "query one"}) + "\n")
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    spec = {"docs": str(data / "corpus.jsonl"), "queries": str(data / "queries.jsonl"),
            "qrels": str(data / "qrels.tsv"), "docs_format": "jsonl"}
    dataset = collections.load(spec, "beirlike")
    assert collections.doc_lookup(dataset, ["d1", "d2"]) == {"d1": "Title one text one", "d2": "text two"}
    assert collections.queries(dataset) == {"q1": "query one"}
    assert collections.qrels(dataset) == {"q1": {"d2": 1}}

    (data / "docs.trec").write_text("<DOC>\n<DOCNO> t1 </DOCNO>\n<TEXT>\nfirst doc\n</TEXT>\n</DOC>\n"
                                    "<DOC>\n<DOCNO> t2 </DOCNO>\n<TEXT>\nsecond doc\n</TEXT>\n</DOC>\n")
    (data / "queries.tsv").write_text("q1\tdoc\n")
    (data / "qrels.txt").write_text("q1 0 t2 1\n")
    trec = {"docs": str(data / "docs.trec"), "queries": str(data / "queries.tsv"), "qrels": str(data / "qrels.txt"),
            "docs_format": "trec"}
    dataset = collections.load(trec, "treclike")
    assert [doc_id for doc_id, _ in collections.docs_slice(dataset, 0, 2)] == ["t1", "t2"]
    assert collections.doc_lookup(dataset, ["t2"])["t2"].strip() == "second doc"
    assert not list(data.glob("*.pklz4"))


def test_unknown_dataset_id_fails_fast_naming_it(home):
    start = time.perf_counter()
    with pytest.raises(ValueError, match="no-such/collection"):
        collections.load({"dataset": "no-such/collection"}, "x")
    with pytest.raises(ValueError, match="no-such/collection"):
        collections.prepare({"dataset": "no-such/collection"}, "x", {}, None)
    assert time.perf_counter() - start < 5


def test_missing_local_file_names_the_config_key(tiny):
    spec = dict(tiny, queries=str(Path(tiny["queries"]).with_name("absent.tsv")))
    with pytest.raises(FileNotFoundError, match=r"'queries'.*absent\.tsv"):
        collections.load(spec, "tiny")
    with pytest.raises(FileNotFoundError, match="'queries'"):
        collections.prepare(spec, "tiny")


def test_prepare_local_collection_counts(tiny, home):
    manifest = collections.prepare(tiny, "tiny", {}, str(home))
    assert (manifest["docs"], manifest["queries"], manifest["qrels"]) == (48, 12, 24)
    assert manifest["source"] == "local" and manifest["name"] == "tiny"
    assert manifest["files"]["docs"] == str(Path(tiny["docs"]).resolve())


def test_prepare_rejects_qrels_that_match_nothing(tiny, home):
    Path(tiny["qrels"]).write_text("other-q 0 other-d 1\n")
    with pytest.raises(ValueError, match="no qrels query id"):
        collections.prepare(tiny, "tiny")


def test_mirror_key_matching():
    mirrors = {"beir/scifact": "a", "beir": "b"}
    assert collections.matching_mirror("beir/scifact/train", mirrors) == "beir/scifact"
    assert collections.matching_mirror("beir/scifact", mirrors) == "beir/scifact"
    assert collections.matching_mirror("beir/scifactx", mirrors) == "beir"
    assert collections.matching_mirror("msmarco-passage/train", mirrors) is None


def _failing_download(monkeypatch):
    def fail(dataset, parts=()):
        raise RuntimeError("All download sources failed")

    monkeypatch.setattr(collections, "materialize", fail)


def test_failed_download_without_mirror_says_what_to_provide(home, monkeypatch):
    _failing_download(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(collections.DataUnavailable, match="beir/scifact/test.*no offline mirror") as error:
        collections.prepare({"dataset": "beir/scifact/test"}, "scifact-test", {}, None)
    assert "offline_mirrors" in str(error.value)
    with pytest.raises(collections.DataUnavailable) as error:
        collections.prepare({"dataset": "beir/scifact/test"}, "scifact-test",
                            {"beir/scifact": "does/not/exist"}, None)
    message = str(error.value)
    assert "beir/scifact/test" in message and "'beir/scifact'" in message
    assert str((Path.cwd() / "does/not/exist").resolve()) in message
    assert time.perf_counter() - start < 5


def test_numpy_repr_sentences():
    assert parse_numpy_strings("['It is.' \"Don't\"\n 'a b']") == ["It is.", "Don't", "a b"]


def test_scifact_rebuild_has_the_expected_counts(tmp_path, scifact_mirror):
    mirror, expected = scifact_mirror
    out = tmp_path / "source.zip"
    assert rebuild_beir_zip(mirror, out) == expected
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        assert {"scifact/corpus.jsonl", "scifact/queries.jsonl", "scifact/qrels/train.tsv",
                "scifact/qrels/test.tsv"} <= names
        docs = [json.loads(line) for line in archive.read("scifact/corpus.jsonl").decode().splitlines()]
        queries = archive.read("scifact/queries.jsonl").decode().splitlines()
        test_qrels = archive.read("scifact/qrels/test.tsv").decode().splitlines()
    assert len(docs) == expected["docs"] and all(doc["text"] for doc in docs)
    assert len(queries) == expected["train_queries"] + expected["test_queries"]
    assert test_qrels[0] == "query-id\tcorpus-id\tscore" and len(test_qrels) == 1 + expected["test_qrels"]
    if mirror != SCIFACT_MIRROR:  # the tiny copy: the exact conversion is known
        assert docs[0] == {"_id": "11", "title": "Cells", "text": "Cells divide. They grow.", "metadata": {}}
        assert docs[2]["text"] == "Blood's flow."
        assert test_qrels[1:] == ["3\t13\t1"]


def test_scifact_rebuild_refuses_other_counts(tmp_path, monkeypatch):
    monkeypatch.setattr(scifact_mirror_module, "EXPECTED", {**TINY_MIRROR_COUNTS, "docs": 4})
    with pytest.raises(ValueError, match="differ from the official"):
        rebuild_beir_zip(write_tiny_mirror(tmp_path / "mirror"), tmp_path / "source.zip")
    assert not (tmp_path / "source.zip").exists()


def prepare_after_a_failed_download(home: Path, cwd: Path, body: str) -> dict:
    """Run ``body`` in a fresh process (ir_datasets fixes its datasets' paths at import) with ``json`` and
    ``collections`` imported, the ir_datasets home at ``home`` and the first download attempt made to fail (so the
    offline mirror is used and the test does not depend on the network); returns what its last line prints as JSON."""
    script = textwrap.dedent(f"""
        import json
        from margin_retrieval.data import collections
        collections.configure_home({str(home)!r})
        real, calls = collections.materialize, []
        def flaky(dataset, parts=()):
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("All download sources failed")
            return real(dataset, parts)
        collections.materialize = flaky
    """) + textwrap.dedent(body)
    env = {**os.environ, "PYTHONPATH": str(REPO), "IR_DATASETS_HOME": str(home)}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=cwd,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_prepare_falls_back_to_the_mirror_and_ir_datasets_serves_scifact(tmp_path, scifact_mirror):
    """In a fresh process (ir_datasets fixes BEIR's paths at import); the first download attempt is made to fail, so
    the test does not depend on the network."""
    home = tmp_path / "irds"
    work = tmp_path / "work"
    work.mkdir()
    mirror, expected = scifact_mirror
    relative_mirror = os.path.relpath(mirror, work)
    out = prepare_after_a_failed_download(home, work, f"""
        from margin_retrieval.data import scifact_mirror
        scifact_mirror.EXPECTED.clear()
        scifact_mirror.EXPECTED.update({expected!r})
        manifest = collections.prepare({{"dataset": "beir/scifact/test"}}, "scifact-test",
                                       {{"beir/scifact": {relative_mirror!r}}}, {str(home)!r})
        import ir_datasets
        test = ir_datasets.load("beir/scifact/test")
        served = [len(list(test.queries_iter())), len(list(test.qrels_iter())), test.docs_count()]
        train = ir_datasets.load("beir/scifact/train")
        served += [len(list(train.queries_iter())), len(list(train.qrels_iter()))]
        print(json.dumps({{"manifest": manifest, "served": served}}))
    """)
    assert out["served"] == [expected["test_queries"], expected["test_qrels"], expected["docs"],
                             expected["train_queries"], expected["train_qrels"]]
    manifest = out["manifest"]
    assert (manifest["docs"], manifest["queries"], manifest["qrels"]) == (
        expected["docs"], expected["test_queries"], expected["test_qrels"])
    assert manifest["source"].startswith("offline_mirror:")
    assert (home / "beir/scifact/source.zip").is_file()


@pytest.mark.parametrize(
    "part, content, line, shape",
    [
        ("qrels", "{q} 0 {d} 1\nq1 0 d1\n", 2, "4 whitespace-separated columns"),
        ("qrels", "{q} 0 {d} yes\n", 1, "integer relevance"),
        ("docs", "{d}\tsome text\n\nd-without-tab\n", 3, "'doc_id<TAB>text'"),
        ("queries", "{q}\ta query\twith a tab\n", 1, "'query_id<TAB>text'"),
    ],
)
def test_malformed_local_file_names_the_file_line_and_shape(tiny, home, part, content, line, shape):
    first_query, _, first_doc, _ = Path(tiny["qrels"]).read_text().split("\n", 1)[0].split()
    path = Path(tiny[part])
    path.write_text(content.format(q=first_query, d=first_doc) + path.read_text())
    with pytest.raises(ValueError) as error:
        collections.prepare(tiny, "tiny", {}, str(home))
    message = str(error.value)
    assert f"{path.resolve()}:{line}:" in message and shape in message and "'tiny'" in message


def test_malformed_beir_qrels_and_jsonl_name_the_line(tmp_path, home):
    data = tmp_path / "beir"
    data.mkdir()
    (data / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "t"}) + "\n{not json\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "query one"}) + "\n")
    (data / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td1\n")
    spec = {"docs": str(data / "corpus.jsonl"), "queries": str(data / "queries.jsonl"),
            "qrels": str(data / "qrels.tsv"), "docs_format": "jsonl"}
    with pytest.raises(ValueError, match=r"corpus\.jsonl:2: expected a JSON object with '_id'"):
        collections.prepare(spec, "beirlike", {}, str(home))
    (data / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "text": "t"}) + "\n")
    with pytest.raises(ValueError, match=r"qrels\.tsv:3: expected 'query-id<TAB>corpus-id<TAB>score'"):
        collections.prepare(spec, "beirlike", {}, str(home))


CRANFIELD_MIRROR = Path("/work/shared/data/cranfield")
CRANFIELD_GRADES = {4: 128, 3: 387, 2: 734, 1: 363, 0: 225}  # Cleverdon's codes 1, 2, 3, 4, -1 after the map


def test_cranfield_mirror_with_other_counts_is_refused(tmp_path):
    mirror = tmp_path / "cran"
    mirror.mkdir()
    (mirror / "cran.all.1400").write_text(".I 1\n.T\ntitle\n.W\ntext\n")
    (mirror / "cran.qry").write_text(".I 001\n.W\nquery\n")
    with pytest.raises(FileNotFoundError, match="missing cranqrel"):
        rebuild_cran_tar(mirror, tmp_path / "cran.tar.gz")
    (mirror / "cranqrel").write_text("1 1 2\n")
    with pytest.raises(ValueError, match=r"'docs': 1, 'queries': 1, 'qrels': 1.*official"):
        rebuild_cran_tar(mirror, tmp_path / "cran.tar.gz")
    assert not (tmp_path / "cran.tar.gz").exists()


def test_relevance_map_grades_labels_and_refuses_unmapped_ones(tiny):
    dataset = collections.load(tiny, "tiny")
    raw = collections.qrels(dataset)
    labels = {label for docs in raw.values() for label in docs.values()}
    graded = collections.qrels(dataset, {label: label + 10 for label in labels})
    assert graded == {q: {d: label + 10 for d, label in docs.items()} for q, docs in raw.items()}
    with pytest.raises(ValueError, match=r"relevance label \d+ .*not in the collection's relevance_map \{99: 1\}"):
        collections.qrels(dataset, {99: 1})


@pytest.mark.skipif(not CRANFIELD_MIRROR.is_dir(), reason="the offline Cranfield mirror is not on this machine")
def test_prepare_falls_back_to_the_cranfield_mirror_and_ir_datasets_serves_cranfield(tmp_path):
    """ir_datasets' own ``cranfield`` id from the offline copy, in a fresh process (ir_datasets fixes its paths at
    import); the first download attempt is made to fail, so the test does not depend on the network."""
    home = tmp_path / "irds"
    out = prepare_after_a_failed_download(home, tmp_path, f"""
        from collections import Counter
        from margin_retrieval.data.cranfield_mirror import RELEVANCE_MAP
        manifest = collections.prepare({{"dataset": "cranfield"}}, "cranfield",
                                       {{"cranfield": {str(CRANFIELD_MIRROR)!r}}}, {str(home)!r})
        dataset = collections.load_id("cranfield")
        grades = Counter(g for docs in collections.qrels(dataset, RELEVANCE_MAP).values() for g in docs.values())
        print(json.dumps({{"manifest": manifest, "grades": grades, "queries": sorted(collections.queries(dataset))}}))
    """)
    manifest = out["manifest"]
    assert (manifest["docs"], manifest["queries"], manifest["qrels"]) == (1400, 225, 1837)
    assert manifest["source"] == f"offline_mirror:{CRANFIELD_MIRROR}"
    assert {int(grade): n for grade, n in out["grades"].items()} == CRANFIELD_GRADES
    assert sorted(out["queries"], key=int) == [str(i) for i in range(1, 226)]  # renumbered 1..225, as cranqrel uses


def test_relevance_map_config_takes_integer_labels_and_names_the_key_otherwise():
    from margin_retrieval.workflow.checks import ConfigError, relevance_map

    assert relevance_map({"1": 4, -1: 0}, "collections.c.relevance_map") == {1: 4, -1: 0}
    assert relevance_map(None, "collections.c.relevance_map") is None
    with pytest.raises(ConfigError, match=r"config collections\.c\.relevance_map: keys must be integer"):
        relevance_map({"high": 4}, "collections.c.relevance_map")


def test_download_fetches_only_the_parts_that_later_jobs_read(tmp_path):
    """MS MARCO's train and dev top-1000 runs (11.5 GB and 0.7 GB) are scoreddocs of msmarco-passage/train and
    dev/small that nothing reads: a home without them (as tests/msmarco_shaped.py writes it) prepares offline, with
    the training docpairs and the TREC DL candidates fetched where asked for. A fresh process: ir_datasets fixes its
    MS MARCO paths at import."""
    home = tmp_path / "irds"
    write_msmarco_passage(home)
    script = textwrap.dedent(f"""
        import json
        from margin_retrieval.data import collections
        home = {str(home)!r}
        counts = {{name: collections.prepare({{"dataset": dataset}}, name, {{}}, home, parts)["queries"]
                  for name, dataset, parts in [("train", "msmarco-passage/train", ["docpairs"]),
                                               ("dev", "msmarco-passage/dev/small", []),
                                               ("validation", "msmarco-passage/trec-dl-2019/judged", ["scoreddocs"])]}}
        try:
            collections.prepare({{"dataset": "msmarco-passage/dev/small"}}, "dev", {{}}, home, ["docpairs"])
        except ValueError as error:
            counts["error"] = str(error)
        print(json.dumps(counts))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO), **OFFLINE_ENV}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert (out["train"], out["dev"], out["validation"]) == (18, 10, 8)
    assert out["error"] == "collection 'dev': 'msmarco-passage/dev/small' provides no docpairs"
    assert not (home / "msmarco-passage/train/ms.run").exists() and not (home / "msmarco-passage/dev/ms.run").exists()
