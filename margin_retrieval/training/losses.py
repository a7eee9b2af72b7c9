"""Training objectives on pooled bi-encoder embeddings q, p, n of shape [B, d] (not normalised).

Notation (docs/method.md, "The losses"): s(x, y) is the cosine similarity, r(p, n) = s(p, n) / 2 + 0.5 lies in [0, 1],
E is the error function applied to x = margin - target, and every loss is the mean over all its elements.
The margin losses reproduce the original ``MarginLoss`` of webis-de/adaptive-relevance-margin-loss, including its
in-batch broadcasting; the textbook in-batch form is a separate, explicitly named option.

Losses that take the other triples of a batch as negatives (in-batch margins, InfoNCE) accept a ``positive_mask``:
a bool tensor [B, 2B] whose columns are the batch's documents in the order p_1..p_B, n_1..n_B (InfoNCE's logit
columns) and whose (i, j) is True where that document is a judged positive of q_i (``batch_positives``), so the
p half's diagonal is always True. With a mask, a judged positive of q_i (e.g. the positive of another triple of the
same query) is no longer a negative of q_i: a deviation from the original code and from sentence-transformers,
named ``training.mask_batch_positives``. None (the default) computes the original losses bit for bit, and so does a
mask that holds no such pair.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from margin_retrieval.workflow.config import ErrorFunction, InBatch, Objective, Similarity

ERRORS: dict[ErrorFunction, Callable[[Tensor], Tensor]] = {
    ErrorFunction.L1: torch.abs,
    ErrorFunction.L2: torch.square,
    ErrorFunction.SOFT: lambda x: F.softplus(-x),  # log(1 + exp(-x)), numerically stable
}


class LossOutput(NamedTuple):
    loss: Tensor  # scalar
    targets: Tensor | None  # the margin targets used (logged during training); None for target-free objectives


def pair_cosine(x: Tensor, y: Tensor) -> Tensor:
    """s(x_i, y_i), shape [B]."""
    return (F.normalize(x, dim=-1) * F.normalize(y, dim=-1)).sum(-1)


def matrix_cosine(x: Tensor, y: Tensor) -> Tensor:
    """S_ij = s(x_i, y_j), shape [B, B]."""
    return F.normalize(x, dim=-1) @ F.normalize(y, dim=-1).T


def _checked(positive_mask: Tensor, batch_size: int) -> Tensor:
    if positive_mask.dtype != torch.bool or positive_mask.shape != (batch_size, 2 * batch_size):
        raise ValueError(f"positive_mask must be a bool tensor of shape ({batch_size}, {2 * batch_size}) (columns "
                         f"p_1..p_B, n_1..n_B), got {positive_mask.dtype} {tuple(positive_mask.shape)}")
    return positive_mask


class MarginLoss(nn.Module):
    """mean E(margin - target); subclasses define the target.

    InBatch.OFF:      m_i  = s(q_i, p_i) - s(q_i, n_i)                          shape [B]
    InBatch.ORIGINAL: M_ij = s(q_j, p_j) - s(q_i, n_j)                          shape [B, B]
        (the original ``pos.diag() - neg`` broadcasts the positive term along the column index j)
    InBatch.TEXTBOOK: M_ij = s(q_i, p_i) - s(q_i, n_j)                          shape [B, B]
        (deviation from the original code: every query compared with its own positive)

    In-batch, a ``positive_mask`` (module docstring) leaves the elements (i, j) whose negative n_j is a judged
    positive of q_i out of the mean, margin and target alike: the loss is the mean over the other elements, and the
    returned targets are those elements' (1-d). The diagonal is masked only where a triple's own negative is a judged
    positive of its query (a data error the samplers exclude). InBatch.OFF takes no mask: its negatives are the
    triples' own.

    ``error`` and ``in_batch`` also accept their config strings (and in_batch the YAML booleans).
    """

    needs_teacher = False

    def __init__(self, error: ErrorFunction | str = ErrorFunction.L2, in_batch: InBatch | bool | str = InBatch.OFF):
        super().__init__()
        try:
            error = ErrorFunction(error)
        except ValueError:
            raise ValueError(f"unknown error function {error!r}; allowed: {[e.value for e in ErrorFunction]}") from None
        self.error_name, self.error, self.in_batch = error, ERRORS[error], InBatch.parse(in_batch)

    @property
    def uses_batch_negatives(self) -> bool:
        """Whether other triples' documents are negatives of a query (what ``positive_mask`` acts on)."""
        return self.in_batch != InBatch.OFF

    def margins(self, q: Tensor, p: Tensor, n: Tensor) -> Tensor:
        if self.in_batch == InBatch.OFF:
            return pair_cosine(q, p) - pair_cosine(q, n)
        s_qn = matrix_cosine(q, n)  # [i, j] = s(q_i, n_j)
        s_qp = pair_cosine(q, p)
        return s_qp - s_qn if self.in_batch == InBatch.ORIGINAL else s_qp[:, None] - s_qn

    def targets(self, p: Tensor, n: Tensor, margins: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, q: Tensor, p: Tensor, n: Tensor, teacher_pos: Tensor | None = None,
                teacher_neg: Tensor | None = None, positive_mask: Tensor | None = None) -> LossOutput:
        margins = self.margins(q, p, n)
        targets = self.targets(p, n, margins)  # not detached: the original lets gradients flow through r(p, n)
        errors = self.error(margins - targets)
        if positive_mask is None:
            return LossOutput(errors.mean(), targets)
        if not self.uses_batch_negatives:
            raise ValueError("positive_mask applies to in-batch margins only: without in_batch, each query's "
                             "negative is its own triple's")
        masked = _checked(positive_mask, q.shape[0])[:, q.shape[0]:]  # [i, j]: n_j is a judged positive of q_i
        if not masked.any():
            return LossOutput(errors.mean(), targets)
        kept = ~masked
        return LossOutput(errors[kept].mean(), targets[kept])


class StaticMarginLoss(MarginLoss):
    """Parametrized baseline: mean E(m - tau) with a constant margin tau (in-batch: mean_ij E(M_ij - tau))."""

    def __init__(self, tau: float, error: ErrorFunction | str = ErrorFunction.L2,
                 in_batch: InBatch | bool | str = InBatch.OFF):
        super().__init__(error, in_batch)
        if tau is None:
            raise ValueError("the static margin objective needs a margin tau")
        self.tau = float(tau)  # the original configs write `target: 1` (an int)

    def targets(self, p: Tensor, n: Tensor, margins: Tensor) -> Tensor:
        return torch.full_like(margins, self.tau)


class AdaptiveMarginLoss(MarginLoss):
    """Self-distilled target t_i = r(p_i, n_i): mean_i E(m_i - t_i); in-batch T_ij = r(p_i, n_j), mean_ij E(M_ij - T_ij)."""

    def targets(self, p: Tensor, n: Tensor, margins: Tensor) -> Tensor:
        s_pn = pair_cosine(p, n) if self.in_batch == InBatch.OFF else matrix_cosine(p, n)
        return s_pn / 2 + 0.5


class DistributedMarginLoss(MarginLoss):
    """T_ij = r(p_i, n_j) (B x B): mean_ij E(m_j - T_ij), the per-triple margin m broadcast along the column j."""

    def __init__(self, error: ErrorFunction | str = ErrorFunction.L2, in_batch: InBatch | bool | str = InBatch.OFF):
        super().__init__(error, in_batch)
        if self.in_batch != InBatch.OFF:
            raise ValueError("the distributed margin objective cannot be combined with in-batch margins")

    def targets(self, p: Tensor, n: Tensor, margins: Tensor) -> Tensor:
        return matrix_cosine(p, n) / 2 + 0.5


class MarginMSELoss(nn.Module):
    """Teacher distillation (Hofstaetter et al. 2020): mean_i [(S(q_i,p_i) - S(q_i,n_i)) - (T_pos_i - T_neg_i)]^2.

    The student score S is the dot product of the raw embeddings (the original Margin-MSE) or the cosine; no default,
    because the right one depends on the teacher's scores (``training.margin_mse_similarity``).
    """

    needs_teacher = True
    uses_batch_negatives = False

    def __init__(self, similarity: Similarity | str):
        super().__init__()
        try:
            self.similarity = Similarity(similarity)
        except ValueError:
            raise ValueError(f"unknown similarity {similarity!r}; allowed: {[s.value for s in Similarity]}") from None

    def score(self, x: Tensor, y: Tensor) -> Tensor:
        return (x * y).sum(-1) if self.similarity == Similarity.DOT else pair_cosine(x, y)

    def forward(self, q: Tensor, p: Tensor, n: Tensor, teacher_pos: Tensor | None = None,
                teacher_neg: Tensor | None = None) -> LossOutput:
        if teacher_pos is None or teacher_neg is None:
            raise ValueError("margin_mse needs teacher scores: pass teacher_pos and teacher_neg")
        for name, t in (("teacher_pos", teacher_pos), ("teacher_neg", teacher_neg)):
            if t.shape != (q.shape[0],):  # a [B, 1] tensor would silently broadcast to [B, B]
                raise ValueError(f"{name} must have shape ({q.shape[0]},), got {tuple(t.shape)}")
        student = self.score(q, p) - self.score(q, n)
        teacher = (teacher_pos - teacher_neg).to(student.dtype)
        return LossOutput(F.mse_loss(student, teacher), None)


class InfoNCELoss(nn.Module):
    """In-batch cross-entropy (sentence-transformers MultipleNegativesRankingLoss).

    logits_i = [s(q_i, p_j) for all j] ++ [s(q_i, n_j) for all j], divided by the temperature; label i;
    loss = mean_i -log softmax(logits_i)_i.

    With a ``positive_mask`` (module docstring), the logit of every judged positive of q_i but its label p_i (the
    s(q_i, p_j), j != i, and s(q_i, n_j) the mask marks) is -inf: it leaves the softmax instead of being a negative.
    """

    needs_teacher = False
    uses_batch_negatives = True

    def __init__(self, temperature: float = 0.05):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.temperature = float(temperature)

    def forward(self, q: Tensor, p: Tensor, n: Tensor, teacher_pos: Tensor | None = None,
                teacher_neg: Tensor | None = None, positive_mask: Tensor | None = None) -> LossOutput:
        batch_size = q.shape[0]
        logits = torch.cat([matrix_cosine(q, p), matrix_cosine(q, n)], dim=1) / self.temperature
        if positive_mask is not None:
            label = torch.eye(batch_size, 2 * batch_size, dtype=torch.bool, device=q.device)  # column i of row i
            logits = logits.masked_fill(_checked(positive_mask, batch_size) & ~label, -math.inf)
        labels = torch.arange(batch_size, device=q.device)
        return LossOutput(F.cross_entropy(logits, labels), None)


def build_loss(objective: Objective | str, tau: float | None = None, in_batch: InBatch | bool | str = InBatch.OFF,
               error: ErrorFunction | str = ErrorFunction.L2, temperature: float = 0.05,
               similarity: Similarity | str | None = None) -> nn.Module:
    """The loss module for one objective; arguments that do not apply to it are ignored (in_batch must be off).

    ``similarity`` is required for margin_mse. The defaults equal the schema's (``tests/test_config.py``).
    """
    try:
        objective = Objective(objective)
    except ValueError:
        raise ValueError(f"unknown objective {objective!r}; allowed: {[o.value for o in Objective]}") from None
    if objective == Objective.STATIC:
        return StaticMarginLoss(tau, error=error, in_batch=in_batch)
    if objective == Objective.ADAPTIVE:
        return AdaptiveMarginLoss(error=error, in_batch=in_batch)
    if objective == Objective.DISTRIBUTED:
        return DistributedMarginLoss(error=error, in_batch=in_batch)
    if InBatch.parse(in_batch) != InBatch.OFF:
        raise ValueError(f"in_batch={in_batch!r} applies to the margin objectives only, not to {objective.value!r}")
    if objective == Objective.MARGIN_MSE:
        if similarity is None:
            raise ValueError("margin_mse needs a student similarity (training.margin_mse_similarity: cosine | dot)")
        return MarginMSELoss(similarity=similarity)
    return InfoNCELoss(temperature=temperature)
