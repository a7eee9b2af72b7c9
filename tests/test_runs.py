"""TREC runs: fixed format, strictly decreasing scores in trec_eval's tie order, every query present."""

from __future__ import annotations

import numpy as np
import pytest

from margin_retrieval.retrieval.runs import PAD_ID, SCORE_DECIMALS, read_run, trec_order, write_run


def write(tmp_path, query_ids, doc_ids, scores, all_query_ids=None, tag="sys"):
    path = tmp_path / "run.trec"
    write_run(path, np.array(query_ids), np.array(doc_ids), np.array(scores, dtype=np.float32), tag,
              all_query_ids if all_query_ids is not None else query_ids)
    return path


def test_format_is_six_columns_with_ranks_from_one_and_fixed_decimals(tmp_path):
    path = write(tmp_path, ["q1", "q2"], [["a", "b"], ["c", "d"]], [[0.5, 0.25], [-0.125, -0.5]])
    lines = path.read_text().splitlines()
    assert lines == [
        "q1 Q0 a 1 0.500000000 sys",
        "q1 Q0 b 2 0.250000000 sys",
        "q2 Q0 c 1 -0.125000000 sys",
        "q2 Q0 d 2 -0.500000000 sys",
    ]
    assert all(len(line.split(".")[-1].split()[0]) == SCORE_DECIMALS for line in lines)


def test_unsorted_input_is_written_in_trec_order(tmp_path):
    path = write(tmp_path, ["q1"], [["a", "b", "c"]], [[0.1, 0.9, 0.5]])
    assert read_run(path)["doc_id"].tolist() == ["b", "c", "a"]


def test_ties_keep_doc_id_descending_order_with_strictly_decreasing_scores(tmp_path):
    path = write(tmp_path, ["q1"], [["a", "b", "c", "d", "e"]], [[0.7, 0.7, 0.9, 0.7, 0.1]])
    run = read_run(path)
    assert run["doc_id"].tolist() == ["c", "d", "b", "a", "e"]
    assert (np.diff(run["score"]) < 0).all()
    unit, tied = 10**-SCORE_DECIMALS, round(float(np.float32(0.7)), SCORE_DECIMALS)
    assert run["score"].tolist()[1:4] == pytest.approx([tied, tied - unit, tied - 2 * unit], abs=unit / 10)
    assert run["score"].tolist()[4] == pytest.approx(float(np.float32(0.1)), abs=unit)  # untied: not moved
    # trec_eval re-sorts by score, then doc id descending: the re-read run keeps its rank order.
    resorted = run.sort_values(["score", "doc_id"], ascending=[False, False])
    assert resorted["rank"].tolist() == [1, 2, 3, 4, 5]


def test_distinct_scores_that_print_equal_are_separated(tmp_path):
    low = np.float32(1e-3)
    high = np.nextafter(low, np.float32(1))  # 1.2e-10 apart: equal at SCORE_DECIMALS decimals
    path = write(tmp_path, ["q1"], [["a", "b"]], [[low, high]])
    run = read_run(path)
    assert run["doc_id"].tolist() == ["b", "a"] and run["score"].iloc[0] > run["score"].iloc[1]


def test_a_long_run_of_ties_cascades_without_reordering(tmp_path):
    ids = [f"d{i:03d}" for i in range(200)]
    path = write(tmp_path, ["q"], [ids], [[0.5] * 200])
    run = read_run(path)
    assert run["doc_id"].tolist() == sorted(ids, reverse=True)
    assert (np.diff(run["score"]) < 0).all()


def test_trec_order_sorts_score_then_doc_id_descending():
    doc_ids = np.array([["b", "a", "c"], ["x", "z", "y"]])
    scores = np.array([[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    order = trec_order(doc_ids, scores)
    assert np.take_along_axis(doc_ids, order, 1).tolist() == [["c", "b", "a"], ["z", "y", "x"]]


def test_trec_order_equals_the_lexsort_on_rows_with_and_without_ties():
    rng = np.random.default_rng(0)
    doc_ids = np.array([[f"d{i}" for i in rng.permutation(50)] for _ in range(40)])
    scores = rng.random((40, 50)).astype(np.float32)
    scores[::3] = np.round(scores[::3], 1)  # every third row full of ties
    scores[5, :4] = -np.inf
    expected = np.lexsort((doc_ids, scores), axis=-1)[..., ::-1]
    order = trec_order(doc_ids, scores)
    np.testing.assert_array_equal(np.take_along_axis(doc_ids, order, 1), np.take_along_axis(doc_ids, expected, 1))
    np.testing.assert_array_equal(np.take_along_axis(scores, order, 1), np.take_along_axis(scores, expected, 1))
    assert trec_order(doc_ids[0], scores[0]).tolist() == expected[0].tolist()


def test_queries_are_written_in_the_given_order(tmp_path):
    path = write(tmp_path, ["q2", "q1"], [["a"], ["b"]], [[0.1], [0.2]], all_query_ids=["q1", "q2"])
    assert read_run(path)["query_id"].tolist() == ["q1", "q2"]


def test_every_query_must_be_present_and_known(tmp_path):
    with pytest.raises(ValueError, match="no search results"):
        write(tmp_path, ["q1"], [["a"]], [[0.1]], all_query_ids=["q1", "q2"])
    with pytest.raises(ValueError, match="not in the query set"):
        write(tmp_path, ["q1", "q3"], [["a"], ["b"]], [[0.1], [0.2]], all_query_ids=["q1"])
    with pytest.raises(ValueError, match="retrieved no document"):
        write(tmp_path, ["q1", "q2"], [["a"], [PAD_ID]], [[0.1], [-np.inf]])
    assert not (tmp_path / "run.trec").exists()


def test_padding_is_dropped(tmp_path):
    path = write(tmp_path, ["q1"], [["a", PAD_ID, "b"]], [[0.1, -np.inf, 0.2]])
    assert read_run(path)["doc_id"].tolist() == ["b", "a"]


@pytest.mark.parametrize("kwargs", [{"tag": "two words"}, {"doc_ids": [["a b"]]}, {"query_ids": ["q 1"]}])
def test_whitespace_in_ids_or_tag_is_refused(tmp_path, kwargs):
    args = {"query_ids": ["q1"], "doc_ids": [["a"]], "scores": [[0.1]]} | kwargs
    with pytest.raises(ValueError, match="whitespace"):
        write(tmp_path, **args)


def test_non_finite_scores_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-finite"):
        write(tmp_path, ["q1"], [["a", "b"]], [[0.1, np.nan]])


def test_read_run_keeps_ids_as_written(tmp_path):
    path = tmp_path / "run.trec"
    path.write_text("007 Q0 NA 1 0.5 t\n007 Q0 0012 2 0.25 t\n")
    run = read_run(path)
    assert run["query_id"].tolist() == ["007", "007"] and run["doc_id"].tolist() == ["NA", "0012"]
    assert run["rank"].tolist() == [1, 2] and run["score"].tolist() == [0.5, 0.25]
    path.write_text("1 Q0 a 1 0.5\n")
    with pytest.raises(ValueError, match="6 columns"):
        read_run(path)
