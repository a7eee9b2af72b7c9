"""Losses against hand-computed values: explicit loops over i, j with plain math on small fixed vectors."""

import math

import pytest
import torch

from margin_retrieval.training.losses import (
    AdaptiveMarginLoss,
    DistributedMarginLoss,
    InfoNCELoss,
    LossOutput,
    MarginMSELoss,
    StaticMarginLoss,
    build_loss,
)

# B = 3 triples of 3-d vectors, unnormalised, chosen so that every similarity differs.
Q = [[1.0, 0.2, 0.0], [0.1, 1.5, 0.3], [0.4, -0.3, 2.0]]
P = [[0.9, 0.5, 0.1], [0.0, 1.0, 1.0], [1.0, 0.0, 1.5]]
N = [[0.2, 1.0, -0.4], [1.2, 0.3, 0.0], [-0.5, 0.8, 0.6]]
B = 3

HAND_ERRORS = {
    "l1": abs,
    "l2": lambda x: x * x,
    "soft": lambda x: math.log(1 + math.exp(-x)),
}


def cos(x, y):
    dot = sum(a * b for a, b in zip(x, y))
    return dot / (math.sqrt(sum(a * a for a in x)) * math.sqrt(sum(b * b for b in y)))


def dot(x, y):
    return sum(a * b for a, b in zip(x, y))


def r(x, y):
    return cos(x, y) / 2 + 0.5


def tensors(requires_grad=False):
    return [torch.tensor(v, dtype=torch.float64, requires_grad=requires_grad) for v in (Q, P, N)]


def hand_margin_loss(target, error, in_batch, tau=None):
    """The expected loss, one element at a time."""
    e = HAND_ERRORS[error]
    terms = []
    if in_batch is False and target in ("static", "adaptive"):
        for i in range(B):
            m = cos(Q[i], P[i]) - cos(Q[i], N[i])
            t = tau if target == "static" else r(P[i], N[i])
            terms.append(e(m - t))
    elif target == "distributed":
        for i in range(B):
            for j in range(B):
                m_j = cos(Q[j], P[j]) - cos(Q[j], N[j])
                terms.append(e(m_j - r(P[i], N[j])))
    else:
        for i in range(B):
            for j in range(B):
                if in_batch is True:  # original broadcasting: positive term indexed by the column
                    m = cos(Q[j], P[j]) - cos(Q[i], N[j])
                else:  # textbook
                    m = cos(Q[i], P[i]) - cos(Q[i], N[j])
                t = tau if target == "static" else r(P[i], N[j])
                terms.append(e(m - t))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("error", ["l1", "l2", "soft"])
@pytest.mark.parametrize("in_batch", [False, True, "textbook"])
@pytest.mark.parametrize("target", ["static", "adaptive"])
def test_static_and_adaptive_match_hand_computation(target, in_batch, error):
    tau = 0.3 if target == "static" else None
    loss = build_loss(target, tau=tau, in_batch=in_batch, error=error)
    out = loss(*tensors())
    assert isinstance(out, LossOutput)
    assert out.loss.dim() == 0
    assert out.loss.item() == pytest.approx(hand_margin_loss(target, error, in_batch, tau), rel=1e-10)
    assert out.targets.shape == ((B,) if in_batch is False else (B, B))


@pytest.mark.parametrize("error", ["l1", "l2", "soft"])
def test_distributed_matches_hand_computation(error):
    out = build_loss("distributed", error=error)(*tensors())
    assert out.loss.item() == pytest.approx(hand_margin_loss("distributed", error, False), rel=1e-10)
    expected_targets = [r(P[i], N[j]) for i in range(B) for j in range(B)]  # row-major T_ij = r(p_i, n_j)
    assert out.targets.flatten().tolist() == pytest.approx(expected_targets, rel=1e-10)


def test_targets_returned():
    q, p, n = tensors()
    static = build_loss("static", tau=0.4, in_batch=True)(q, p, n)
    assert static.targets.shape == (B, B) and torch.all(static.targets == 0.4)
    adaptive = build_loss("adaptive")(q, p, n)
    assert adaptive.targets.tolist() == pytest.approx([r(P[i], N[i]) for i in range(B)], rel=1e-10)
    in_batch = build_loss("adaptive", in_batch=True)(q, p, n)
    expected = [r(P[i], N[j]) for i in range(B) for j in range(B)]
    assert in_batch.targets.flatten().tolist() == pytest.approx(expected, rel=1e-10)


def test_in_batch_true_uses_column_indexed_positive_and_differs_from_textbook():
    q, p, n = tensors()
    original = StaticMarginLoss(tau=0.0, error="l1", in_batch=True)
    textbook = StaticMarginLoss(tau=0.0, error="l1", in_batch="textbook")
    # with tau = 0 the margins themselves are visible through the margins() method
    m_true, m_text = original.margins(q, p, n), textbook.margins(q, p, n)
    for i in range(B):
        for j in range(B):
            assert m_true[i, j].item() == pytest.approx(cos(Q[j], P[j]) - cos(Q[i], N[j]), rel=1e-10)
            assert m_text[i, j].item() == pytest.approx(cos(Q[i], P[i]) - cos(Q[i], N[j]), rel=1e-10)
    assert not torch.allclose(m_true, m_text)
    for target in ("static", "adaptive"):
        a = build_loss(target, tau=0.2, in_batch=True)(q, p, n).loss
        b = build_loss(target, tau=0.2, in_batch="textbook")(q, p, n).loss
        assert abs(a.item() - b.item()) > 1e-4
    # the diagonals agree: both forms reduce to the per-triple margin there
    assert torch.allclose(m_true.diagonal(), m_text.diagonal())


def test_tau_int_equals_float():
    q, p, n = tensors()
    for in_batch in (False, True):
        as_int = build_loss("static", tau=1, in_batch=in_batch)(q, p, n)
        as_float = build_loss("static", tau=1.0, in_batch=in_batch)(q, p, n)
        assert as_int.loss.item() == as_float.loss.item()
        assert as_int.targets.dtype == torch.float64


@pytest.mark.parametrize("objective,in_batch", [("adaptive", False), ("adaptive", True), ("distributed", False)])
def test_gradient_flows_through_targets(objective, in_batch):
    """p and n get gradient from the doc-doc target term as well, so detaching the targets changes the gradient."""
    q, p, n = tensors(requires_grad=True)
    build_loss(objective, in_batch=in_batch)(q, p, n).loss.backward()
    grads = [t.grad.clone() for t in (p, n)]

    class Detached(type(build_loss(objective, in_batch=in_batch))):
        def targets(self, p_, n_, margins):
            return super().targets(p_, n_, margins).detach()

    q2, p2, n2 = tensors(requires_grad=True)
    Detached(in_batch=in_batch)(q2, p2, n2).loss.backward()
    for g, t in zip(grads, (p2, n2)):
        assert not torch.allclose(g, t.grad)

    # with the query detached, p and n still receive gradient from the target alone
    q3, p3, n3 = tensors(requires_grad=True)
    loss = build_loss(objective, in_batch=in_batch)
    targets = loss.targets(p3, n3, loss.margins(q3.detach(), p3.detach(), n3.detach()))
    targets.sum().backward()
    assert p3.grad.abs().sum() > 0 and n3.grad.abs().sum() > 0


@pytest.mark.parametrize("in_batch", [False, True, "textbook"])
def test_static_targets_carry_no_gradient_but_margins_do(in_batch):
    q, p, n = tensors(requires_grad=True)
    loss = build_loss("static", tau=0.5, in_batch=in_batch)
    out = loss(q, p, n)
    # the target is the constant tau, outside the autograd graph
    assert out.targets.grad_fn is None and not out.targets.requires_grad
    assert torch.all(out.targets == 0.5)
    out.loss.backward()
    assert all(t.grad.abs().sum() > 0 for t in (q, p, n))
    # the whole gradient is the margins': the same as E(margin - 0.5) with a plain number
    q2, p2, n2 = tensors(requires_grad=True)
    loss.error(loss.margins(q2, p2, n2) - 0.5).mean().backward()
    for got, expected in zip((q, p, n), (q2, p2, n2)):
        torch.testing.assert_close(got.grad, expected.grad)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_margin_mse_matches_hand_computation(similarity):
    teacher_pos, teacher_neg = [5.0, 3.5, -1.0], [2.0, 4.0, -3.0]
    score = dot if similarity == "dot" else cos
    expected = sum(
        ((score(Q[i], P[i]) - score(Q[i], N[i])) - (teacher_pos[i] - teacher_neg[i])) ** 2 for i in range(B)
    ) / B
    loss = build_loss("margin_mse", similarity=similarity)
    assert loss.needs_teacher is True
    out = loss(*tensors(), teacher_pos=torch.tensor(teacher_pos, dtype=torch.float64),
               teacher_neg=torch.tensor(teacher_neg, dtype=torch.float64))
    assert out.targets is None
    assert out.loss.item() == pytest.approx(expected, rel=1e-10)


def test_margin_mse_needs_an_explicit_similarity():
    """No code default to disagree with the schema's training.margin_mse_similarity."""
    with pytest.raises(TypeError):
        MarginMSELoss()
    with pytest.raises(ValueError, match="margin_mse_similarity"):
        build_loss("margin_mse")
    assert build_loss("margin_mse", similarity="dot").similarity == "dot"


def test_infonce_matches_hand_log_softmax():
    temperature = 0.05
    total = 0.0
    for i in range(B):
        logits = [cos(Q[i], P[j]) / temperature for j in range(B)] + [cos(Q[i], N[j]) / temperature for j in range(B)]
        top = max(logits)
        log_sum_exp = top + math.log(sum(math.exp(x - top) for x in logits))
        total += -(logits[i] - log_sum_exp)
    out = build_loss("infonce", temperature=temperature)(*tensors())
    assert out.targets is None
    assert out.loss.item() == pytest.approx(total / B, rel=1e-10)


def test_needs_teacher_only_for_margin_mse():
    assert not build_loss("static", tau=0.1).needs_teacher
    assert not build_loss("adaptive").needs_teacher
    assert not build_loss("distributed").needs_teacher
    assert not build_loss("infonce").needs_teacher
    assert build_loss("margin_mse", similarity="dot").needs_teacher


def test_non_teacher_losses_ignore_teacher_scores():
    q, p, n = tensors()
    scores = torch.ones(B, dtype=torch.float64)
    for loss in (build_loss("adaptive"), build_loss("infonce")):
        assert loss(q, p, n, teacher_pos=scores, teacher_neg=scores).loss.item() == loss(q, p, n).loss.item()


def test_classes_built_by_factory():
    assert isinstance(build_loss("static", tau=0.1), StaticMarginLoss)
    assert isinstance(build_loss("adaptive", in_batch="textbook"), AdaptiveMarginLoss)
    assert isinstance(build_loss("distributed"), DistributedMarginLoss)
    assert isinstance(build_loss("margin_mse", similarity="dot"), MarginMSELoss)
    assert isinstance(build_loss("infonce"), InfoNCELoss)


@pytest.mark.parametrize("in_batch", [True, "textbook"])
def test_distributed_rejects_in_batch(in_batch):
    with pytest.raises(ValueError, match="distributed"):
        build_loss("distributed", in_batch=in_batch)


def test_errors():
    with pytest.raises(ValueError, match="'hinge'"):
        build_loss("hinge")
    with pytest.raises(ValueError, match="'l3'"):
        build_loss("adaptive", error="l3")
    with pytest.raises(ValueError, match="tau"):
        build_loss("static")
    with pytest.raises(ValueError, match="in_batch"):
        build_loss("adaptive", in_batch="yes")
    for objective in ("margin_mse", "infonce"):
        with pytest.raises(ValueError, match="in_batch"):
            build_loss(objective, in_batch=True)
    with pytest.raises(ValueError, match="similarity"):
        build_loss("margin_mse", similarity="l2")
    q, p, n = tensors()
    with pytest.raises(ValueError, match="teacher"):
        build_loss("margin_mse", similarity="dot")(q, p, n)
    with pytest.raises(ValueError, match="teacher_neg"):
        build_loss("margin_mse", similarity="dot")(q, p, n, teacher_pos=torch.ones(B), teacher_neg=torch.ones(B, 1))
