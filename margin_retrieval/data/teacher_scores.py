"""Published teacher scores (``train_data.teacher_scores_file``): reading the file, the pairs it scores, and the scores
of given training triples. Without torch, so that the training-data jobs (envs/data.yaml) can read them."""

from __future__ import annotations

from typing import Iterable, Iterator


class MissingTeacherScores(ValueError):
    """Training triples without a teacher score: Margin-MSE without its target would silently train on a subset."""


def read_scores(path) -> Iterator[tuple[tuple[str, str, str], tuple[float, float]]]:
    """``((qid, pos_id, neg_id), (score_pos, score_neg))`` per line of a published scores file, e.g. Hofstaetter et
    al.'s ensemble scores for MS MARCO (Zenodo 4068216, the source of ``msmarco-passage/train/kd-docpairs``): lines
    ``score_pos score_neg qid pos_id neg_id``, streamed."""
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            yield _score_line(path, number, line)


class ScoredPairs:
    """The ``(qid, pos_id, neg_id)`` pairs of a scores file in file order, re-iterable: each iteration streams the
    file again (``group_docpairs`` reads its pairs twice, counting and then emitting)."""

    def __init__(self, path):
        self.path = path

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        return (key for key, _ in read_scores(self.path))


def scores_from_file(path, triples: Iterable[tuple[str, str, str]]) -> list[tuple[str, str, str, float, float]]:
    """The published teacher scores of ``triples``, in their order: streams the file once and keeps only the wanted
    triples. A triple without a score raises ``MissingTeacherScores``."""
    triples = [tuple(t) for t in triples]
    wanted = set(triples)
    found = {key: scores for key, scores in read_scores(path) if key in wanted}
    missing = [t for t in triples if t not in found]
    if missing:
        raise MissingTeacherScores(f"{path} has no teacher score for {len(missing)} of {len(triples)} training "
                                   f"triples of the Margin-MSE runs, e.g. qid {missing[0][0]} pos_id {missing[0][1]} "
                                   f"neg_id {missing[0][2]}")
    return [(*t, *found[t]) for t in triples]


def _score_line(path, number: int, line: str) -> tuple[tuple[str, str, str], tuple[float, float]]:
    """One ``score_pos score_neg qid pos_id neg_id`` line; a malformed one names the file, the line and the shape."""
    fields = line.split()
    try:
        if len(fields) == 5:
            return (fields[2], fields[3], fields[4]), (float(fields[0]), float(fields[1]))
    except ValueError:
        pass
    raise ValueError(f"{path}:{number}: expected 'score_pos score_neg qid pos_id neg_id' (5 whitespace-separated "
                     f"columns, numeric scores), got {line[:80]!r}")
