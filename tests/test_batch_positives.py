"""In-batch positive masking (``training.mask_batch_positives``): the mask of a batch, the losses against
hand-computed values with a mask, and the mask reaching the loss in a training run."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from margin_retrieval.jobs.io import write_json, write_tsv
from margin_retrieval.training.data import load_training_data
from margin_retrieval.training.triples import Triples
from margin_retrieval.training.losses import build_loss
from margin_retrieval.training.positives import batch_positives
from margin_retrieval.training.trainer import Trainer
from tests.test_losses import HAND_ERRORS, B, N, P, Q, cos, r, tensors
from tests.test_training import config, tiny_data

T, F_ = True, False
# Triples 0 and 1 share a query: p_0 and p_1 are positives of both rows, and n_2 is a judged positive of that query
# as well (negatives are sampled to exclude the own query's positives only). Columns p_0, p_1, p_2, n_0, n_1, n_2.
MASK = [[T, T, F_, F_, F_, T],
        [T, T, F_, F_, F_, T],
        [F_, F_, T, F_, F_, F_]]
MASKED_NEGATIVES = {(0, 2), (1, 2)}  # (i, j): n_j is a judged positive of q_i


def mask(rows=MASK) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


def test_the_mask_marks_every_judged_positive_among_the_batchs_documents():
    batch = [("qa", "d1", "d7"), ("qb", "d2", "d1"), ("qa", "d3", "d8"), ("qc", "d4", "d5")]
    positives = {"qa": {"d1", "d3", "d9"}, "qb": {"d2"}}  # qc: no judged positive known
    got = batch_positives(batch, positives)
    # columns: p = d1 d2 d3 d4, n = d7 d1 d8 d5
    assert got.dtype == torch.bool and got.tolist() == [
        [T, F_, T, F_, F_, T, F_, F_],  # qa: its two triples' positives and triple 1's negative d1
        [F_, T, F_, F_, F_, F_, F_, F_],
        [T, F_, T, F_, F_, T, F_, F_],
        [F_] * 8,
    ]


def hand_infonce(temperature: float, masked: set[tuple[int, int]]) -> float:
    """masked: (i, column) pairs out of the softmax; columns 0..B-1 are p_j, B..2B-1 are n_j."""
    total = 0.0
    for i in range(B):
        logits = [cos(Q[i], d) / temperature for d in P + N]
        kept = [x for column, x in enumerate(logits) if (i, column) not in masked]
        top = max(kept)
        total += -(logits[i] - (top + math.log(sum(math.exp(x - top) for x in kept))))
    return total / B


def test_infonce_leaves_the_other_positives_out_of_the_softmax_but_never_the_label():
    out = build_loss("infonce", temperature=0.05)(*tensors(), positive_mask=mask())
    expected = hand_infonce(0.05, {(0, 1), (1, 0), (0, B + 2), (1, B + 2)})
    assert out.loss.item() == pytest.approx(expected, rel=1e-10)
    assert abs(expected - hand_infonce(0.05, set())) > 1e-3  # the mask matters for these vectors


def hand_in_batch(target: str, in_batch, error: str, tau: float | None) -> tuple[float, list[float]]:
    e, terms, targets = HAND_ERRORS[error], [], []
    for i in range(B):
        for j in range(B):
            if (i, j) in MASKED_NEGATIVES:
                continue
            positive = cos(Q[j], P[j]) if in_batch is True else cos(Q[i], P[i])
            t = tau if target == "static" else r(P[i], N[j])
            terms.append(e(positive - cos(Q[i], N[j]) - t))
            targets.append(t)
    return sum(terms) / len(terms), targets


@pytest.mark.parametrize("error", ["l1", "l2", "soft"])
@pytest.mark.parametrize("in_batch", [True, "textbook"])
@pytest.mark.parametrize("target", ["static", "adaptive"])
def test_in_batch_margins_average_over_the_unmasked_elements(target, in_batch, error):
    tau = 0.3 if target == "static" else None
    out = build_loss(target, tau=tau, in_batch=in_batch, error=error)(*tensors(), positive_mask=mask())
    loss, targets = hand_in_batch(target, in_batch, error, tau)
    assert out.loss.item() == pytest.approx(loss, rel=1e-10)
    assert out.targets.tolist() == pytest.approx(targets, rel=1e-10)  # the 7 unmasked T_ij, row-major


@pytest.mark.parametrize("objective, in_batch", [("infonce", False), ("static", True), ("adaptive", True),
                                                 ("adaptive", "textbook")])
def test_a_mask_without_other_positives_changes_nothing_bit_for_bit(objective, in_batch):
    loss = build_loss(objective, tau=0.3, in_batch=in_batch)
    own_positives_only = torch.eye(B, 2 * B, dtype=torch.bool)
    q, p, n = tensors()
    assert torch.equal(loss(q, p, n, positive_mask=own_positives_only).loss, loss(q, p, n).loss)


def test_per_triple_losses_take_no_mask_and_a_mask_has_one_shape():
    q, p, n = tensors()
    for loss in (build_loss("adaptive"), build_loss("distributed")):
        assert not loss.uses_batch_negatives
        with pytest.raises(ValueError, match="in-batch margins only"):
            loss(q, p, n, positive_mask=mask())
    assert not build_loss("margin_mse", similarity="dot").uses_batch_negatives
    assert build_loss("infonce").uses_batch_negatives
    assert build_loss("static", tau=0.1, in_batch=True).uses_batch_negatives
    for loss in (build_loss("infonce"), build_loss("adaptive", in_batch=True)):
        with pytest.raises(ValueError, match=r"positive_mask must be a bool tensor of shape \(3, 6\)"):
            loss(q, p, n, positive_mask=mask()[:, :B])
        with pytest.raises(ValueError, match="positive_mask must be a bool tensor"):
            loss(q, p, n, positive_mask=mask().float())


def test_load_training_data_keeps_the_judged_positives_of_the_training_queries(tmp_path):
    write_tsv(tmp_path / "triples.tsv", ["qid", "pos_id", "neg_id"], [("qa", "d1", "d5"), ("qb", "d2", "d6")])
    write_json(tmp_path / "splits.json", {"train_order": ["qa", "qb"], "validation": ["qv"]})
    write_tsv(tmp_path / "candidates.tsv", ["qid", "doc_id"], [("qv", "d3")])
    qrels = {"qa": {"d1": 1, "d4": 2, "d5": 0}, "qb": {"d2": 1}, "qv": {"d3": 1}}
    data = load_training_data(tmp_path / "triples.tsv", tmp_path / "splits.json", tmp_path / "candidates.tsv", 1.0,
                              query_text={"qa": "a", "qb": "b", "qv": "v"}, qrels=qrels,
                              doc_lookup=lambda ids: {i: i for i in ids})
    assert data.positives == {"qa": {"d1", "d4"}, "qb": {"d2"}}  # relevance 0 is not a positive; qv validates


def shared_query_data():
    """The tiny data plus a second triple of q0, whose positive d1 is also q1's: one batch of all nine triples
    holds in-batch positives of q0 (and the negatives d0, d1 of triples 5 and 6 are judged positives of q0)."""
    data = tiny_data()
    data.triples = Triples.from_tuples([*data.triples, ("q0", "d1", "d7")])
    data.positives = {f"q{i}": {f"d{i}"} for i in range(8)} | {"q0": {"d0", "d1"}}
    return data


@pytest.mark.parametrize("objective, in_batch, masked", [("infonce", "false", True), ("adaptive", "textbook", True),
                                                         ("static", "true", True), ("adaptive", "false", False)])
@pytest.mark.parametrize("enabled", [True, False])
def test_the_batch_mask_reaches_the_loss(tiny_bert, tmp_path, objective, in_batch, masked, enabled):
    data = shared_query_data()
    tau = 0.2 if objective == "static" else None
    settings = dataclasses.replace(config(objective=objective, in_batch=in_batch, tau=tau), batch_size=9,
                                   max_steps=2, mask_batch_positives=enabled)
    trainer = Trainer(tiny_bert, data, settings, tmp_path / "work")
    calls = []
    forward = trainer.loss.forward

    def spy(q, p, n, **kwargs):
        calls.append(kwargs.get("positive_mask"))
        return forward(q, p, n, **kwargs)

    trainer.loss.forward = spy
    trainer.fit()
    assert len(calls) == 2
    if not (masked and enabled):
        assert calls == [None, None]
        return
    for step, got in enumerate(calls):
        batch = [data.triples[i] for i in trainer.batches(step)]
        rows = [i for i, (qid, _, _) in enumerate(batch) if qid == "q0"]
        assert len(rows) == 2 and got.device == trainer.device
        for i in rows:  # each q0 row marks both q0 positives and q1's (d1) in the p half
            assert {batch[j][1] for j in range(9) if got[i, j]} == {"d0", "d1"}
            assert got[i, :9].sum() == 3 and got[i, 9:].sum() == 2  # n = d0 (triple 5) and d1 (triple 6)
        assert torch.equal(got.cpu(), batch_positives(batch, data.positives))
