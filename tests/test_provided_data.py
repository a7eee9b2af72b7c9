from margin_retrieval.data.provided_data import candidates_from_scoreddocs, group_docpairs

PAIRS = [("a", "p1", "n1"), ("b", "p2", "n2"), ("a", "p1", "n3"), ("c", "p3", "n4"), ("a", "p1", "n5"),
         ("b", "p2", "n6"), ("c", "p3", "n7"), ("c", "p3", "n8")]


def test_first_k_per_query_in_file_order_and_incomplete_queries_dropped():
    grouped = list(group_docpairs(PAIRS, per_query=2))
    assert grouped == [
        ("a", "p1", "n1"), ("b", "p2", "n2"), ("a", "p1", "n3"), ("c", "p3", "n4"), ("b", "p2", "n6"),
        ("c", "p3", "n7")]
    assert list(group_docpairs(PAIRS, per_query=3)) == [
        ("a", "p1", "n1"), ("a", "p1", "n3"), ("c", "p3", "n4"), ("a", "p1", "n5"), ("c", "p3", "n7"),
        ("c", "p3", "n8")]


def test_incomplete_queries_kept_on_request_and_max_queries_takes_the_first():
    assert {q for q, _, _ in group_docpairs(PAIRS, per_query=3, drop_incomplete=False)} == {"a", "b", "c"}
    assert {q for q, _, _ in group_docpairs(PAIRS, per_query=2, max_queries=2)} == {"a", "b"}


def test_scoreddocs_candidates_are_the_top_depth_with_deterministic_ties():
    scored = [("q", "d1", 1.0), ("q", "d3", 2.0), ("q", "d2", 2.0), ("r", "d9", 0.5)]
    assert candidates_from_scoreddocs(scored, depth=2) == [("q", "d2"), ("q", "d3"), ("r", "d9")]
