"""Fast dropout masks (``training.dropout_masks: fast``): the rate, the scaling, the gradient, and a model that is the
same as before outside of its masks (eval mode, all-keep masks, saving)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from margin_retrieval.models.dropout import (ATTENTION, FastDropout, fast_dropout, fast_dropout_attention, keep_mask,
                                             rounded_rate, use_fast_dropout)
from margin_retrieval.models.encoders import Encoder

TEXTS = ["cell protein gene study", "virus", "the effect of sleep on memory in patients", "heart blood"]


def test_rounded_rate_is_within_two_to_the_minus_sixteen_of_the_rate():
    for p in (0.1, 0.2, 0.37, 0.5):
        assert abs(rounded_rate(p) - p) <= 2 ** -16
        assert rounded_rate(p) * 2 ** 15 == int(rounded_rate(p) * 2 ** 15)


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_keep_mask_keeps_each_lane_at_one_minus_p(p):
    generator = torch.Generator().manual_seed(0)
    count = 400_000
    mask = keep_mask(torch.Size([count]), p, torch.device("cpu"), generator).float()
    # Each of the four lanes of a 64-bit word (the last one has a constant sign bit) keeps at the rate;
    # 5 standard errors of a binomial proportion over count / 4 draws.
    tolerance = 5 * math.sqrt(p * (1 - p) / (count / 4))
    for lane in range(4):
        assert abs(mask.view(-1, 4)[:, lane].mean().item() - (1 - p)) < tolerance
    # Neighbouring lanes are independent: both kept at (1 - p)^2.
    pairs = (mask.view(-1, 4)[:, 0] * mask.view(-1, 4)[:, 1]).mean().item()
    assert abs(pairs - (1 - p) ** 2) < tolerance


def test_keep_mask_is_reproducible_from_the_seed_and_shaped_like_the_input():
    shape = torch.Size([3, 5, 7])  # 105 elements: not a multiple of 4
    first = keep_mask(shape, 0.3, torch.device("cpu"), torch.Generator().manual_seed(1))
    again = keep_mask(shape, 0.3, torch.device("cpu"), torch.Generator().manual_seed(1))
    assert first.shape == shape and first.dtype == torch.bool
    assert torch.equal(first, again)


def test_fast_dropout_zeroes_or_scales_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.full((200_000,), 2.0, requires_grad=True)
    y = fast_dropout(x, 0.1)
    scale = 1 / (1 - rounded_rate(0.1))
    values = torch.unique(y.detach()).tolist()
    assert values == [0.0, pytest.approx(2.0 * scale)]
    assert y.detach().mean().item() == pytest.approx(2.0, abs=0.01)
    y.sum().backward()  # the gradient is the mask times the scale
    assert torch.equal(x.grad, (y.detach() != 0).float() * scale)


def test_fast_dropout_is_the_identity_in_eval_mode_and_at_rate_zero():
    x = torch.randn(10)
    assert fast_dropout(x, 0.1, training=False) is x
    assert fast_dropout(x, 0.0) is x
    module = FastDropout(0.1).eval()
    assert torch.equal(module(x), x)
    with pytest.raises(ValueError, match="dropout rate"):
        fast_dropout(x, 1.0)


@pytest.mark.parametrize("light", [False, True])
def test_use_fast_dropout_swaps_every_dropout_module_and_the_attention(tiny_bert, light):
    """transformers' BERT: its dropout modules and its attention function; light_bert's attention dropout is one of
    its modules."""
    model = use_fast_dropout(Encoder.load(tiny_bert, light=light).model)
    dropouts = [module for module in model.modules() if isinstance(module, torch.nn.Dropout)]
    assert dropouts and all(type(module) is FastDropout for module in dropouts)
    if light:
        assert type(model.encoder.layer[0].attention.self.dropout) is FastDropout
    else:
        assert model.config._attn_implementation == ATTENTION


def test_fast_dropout_model_encodes_exactly_as_before_in_eval_mode(tiny_bert):
    plain = Encoder.load(tiny_bert)
    fast = Encoder.load(tiny_bert)
    use_fast_dropout(fast.model)
    assert torch.equal(torch.from_numpy(fast.encode(TEXTS, 32, precision="fp32")),
                       torch.from_numpy(plain.encode(TEXTS, 32, precision="fp32")))


@pytest.mark.parametrize("mask_kind", ["bool", "additive"])
def test_fast_dropout_attention_with_all_kept_masks_equals_sdpa_attention_on_padded_input(tiny_bert, mask_kind):
    """The training path (eager attention, masks applied) against SDPA: the same output when nothing is dropped,
    with SDPA's bool mask and with an additive one (models that build their own)."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    torch.manual_seed(0)
    module = Encoder.load(tiny_bert, light=False).model.encoder.layer[0].attention.self
    query, key, value = (torch.randn(2, 2, 5, 16) for _ in range(3))
    attend = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool)[:, None, None, :].expand(2, 1, 5, 5)
    mask = attend if mask_kind == "bool" else torch.zeros(attend.shape).masked_fill(~attend, -1e9)
    tiny_rate = 1e-9  # rounds to 0: every element kept, scale 1, but the dropout path is taken
    ours, _ = fast_dropout_attention(module, query, key, value, mask, scaling=0.25, dropout=tiny_rate)
    theirs, _ = sdpa_attention_forward(module, query, key, value, attend, scaling=0.25, dropout=0.0)
    assert torch.allclose(ours, theirs, atol=1e-6)


@pytest.mark.parametrize("light", [False, True])
def test_fast_dropout_model_trains_and_saves_a_model_that_loads_without_it(tiny_bert, tmp_path, light):
    encoder = Encoder.load(tiny_bert, light=light)
    use_fast_dropout(encoder.model)
    encoder.model.train()
    torch.manual_seed(0)
    first = encoder.embed(TEXTS, 32)
    torch.manual_seed(0)
    again = encoder.embed(TEXTS, 32)
    assert torch.equal(first, again)  # masks follow the seed
    torch.manual_seed(1)
    assert not torch.equal(first, encoder.embed(TEXTS, 32))  # and are masks
    first.sum().backward()
    assert all(parameter.grad is not None for name, parameter in encoder.model.named_parameters()
               if "pooler" not in name)
    encoder.save(tmp_path / "saved")
    assert "margin" not in json.dumps(json.loads((tmp_path / "saved" / "config.json").read_text()))
    reloaded = Encoder.load(tmp_path / "saved", light=light)
    if light:
        assert not any(isinstance(module, FastDropout) for module in reloaded.model.modules())
    else:
        assert reloaded.model.config._attn_implementation != ATTENTION
