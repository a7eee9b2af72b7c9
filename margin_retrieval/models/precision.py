"""What ``precision: auto`` means on a CPU: bf16 autocast where this CPU measures it clearly faster than fp32, fp32
otherwise (CUDA: fp16).

The CPU flags alone do not tell. With AVX512-BF16, our training step of the default student ran 2x faster in bf16
than in fp32 on a 2-core AMD EPYC, but 1.18x slower on a 2-core Intel Xeon whose VM shows AVX512-BF16 and no AMX, and
1.6x faster on a Xeon with AMX. So the workflow times both once (rule ``cpu_precision``) and every job on the CPU reads
the choice from ``results/precision.json``: it cannot change between the jobs of one results folder, so a grid's runs
share it.
Without native bf16 (AVX2 only) bf16 is emulated and several times slower: fp32, unmeasured.
"""

from __future__ import annotations

import functools
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from margin_retrieval.jobs.io import read_json, write_json
from margin_retrieval.models.device import cpu_description, cpu_has_native_bf16

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# bf16 changes the numbers, so it has to buy a clear speed-up: at least this ratio of fp32 to bf16 time.
BF16_MIN_SPEEDUP = 1.1
# The probe: one BERT layer shaped like the default student (MiniLM: 384 hidden, 12 heads, 1536 FFN) on a training
# batch of 32 passages of 128 tokens, forward + backward in train mode and an inference forward.
PROBE_BATCH, PROBE_TOKENS = 32, 128
PROBE_REPS = 3


def _probe_model() -> torch.nn.Module:
    from types import SimpleNamespace

    from margin_retrieval.models.light_bert import BertModel

    torch.manual_seed(0)
    config = SimpleNamespace(hidden_size=384, num_attention_heads=12, intermediate_size=1536, num_hidden_layers=1,
                             vocab_size=30522, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12,
                             hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, pad_token_id=0)
    return BertModel(config, pooler=False, source=None)


def _seconds(model: torch.nn.Module, ids: torch.Tensor, precision: str) -> float:
    """One training forward + backward and one inference forward of ``ids``, in ``precision``."""
    mask = torch.ones_like(ids)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    start = time.perf_counter()
    model.train()
    with autocast:
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    hidden.float().square().mean().backward()
    model.eval()
    with torch.inference_mode(), autocast:
        model(input_ids=ids, attention_mask=mask)
    return time.perf_counter() - start


def measure() -> dict[str, float]:
    """Median seconds of the probe in fp32 and in bf16 autocast, the two interleaved rep by rep after a warm-up."""
    with torch.inference_mode(False), torch.enable_grad():  # also when first asked from inside an inference
        return _measure()


def _measure() -> dict[str, float]:
    model = _probe_model()
    ids = torch.randint(1000, 30000, (PROBE_BATCH, PROBE_TOKENS), generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for rep in range(PROBE_REPS + 1):
        for precision, seconds in times.items():
            elapsed = _seconds(model, ids, precision)
            if rep:
                seconds.append(elapsed)
    return {precision: statistics.median(seconds) for precision, seconds in times.items()}


def choose(seconds: dict[str, float]) -> str:
    return "bf16" if seconds["fp32"] >= BF16_MIN_SPEEDUP * seconds["bf16"] else "fp32"


def decide() -> dict:
    """This CPU's meaning of ``auto``, with the measurement behind it (the content of ``results/precision.json``)."""
    record = {"cpu": cpu_description(), "threads": torch.get_num_threads(), "min_bf16_speedup": BF16_MIN_SPEEDUP}
    if not cpu_has_native_bf16():
        return record | {"precision": "fp32", "reason": "no native bf16 (AVX512-BF16 or AMX): bf16 is emulated"}
    seconds = measure()
    return record | {"precision": choose(seconds), "seconds": seconds, "bf16_speedup": seconds["fp32"] / seconds["bf16"],
                     "reason": "measured: one BERT layer, forward + backward and inference, 32 x 128 tokens"}


@functools.cache
def cpu_auto_precision() -> str:
    """``auto`` on this CPU for code run outside the workflow (measured once per process)."""
    return decide()["precision"]


def write_decision(path: str | Path) -> dict:
    record = decide()
    write_json(path, record)
    return record


def resolve(setting: str, device: torch.device, decision_file: str | Path | None = None) -> str:
    """The precision a job computes in: the configured one, or for ``auto`` fp16 on CUDA and on a CPU the
    workflow's measured decision (``decision_file``; measured here when there is none)."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "fp16"
    return read_json(decision_file)["precision"] if decision_file else cpu_auto_precision()


def autocast_context(device: torch.device, precision: str):
    """Mixed precision for ``precision`` (``auto`` as ``resolve`` without a decision file: measured once per
    process)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    precision = resolve(precision, device)
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(device.type, dtype={"bf16": torch.bfloat16, "fp16": torch.float16}[precision])
