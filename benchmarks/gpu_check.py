"""GPU check: a few training steps of the default student in fp16 with the GradScaler and 8-bit AdamW (bitsandbytes,
when installed; torch's fused AdamW otherwise), and one encoded shard, each compared with the CPU fp32 path.

Tolerances (stated, checked, exit status 1 when missed):
- first step's loss within 2% (relative) of the CPU's: same weights and batch, only fp16 rounding differs;
- later steps' losses within 15%: the 8-bit optimizer's quantised states move the weights a little differently;
- encoded passages: cosine(GPU fp16, CPU fp32) >= 0.999 for every passage.

Without CUDA it runs the CPU half (the reference losses and embeddings, with throughput), says so, and exits 0.

    python benchmarks/gpu_check.py --steps 5 --docs 512
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import arguments, scifact, student, train_config, training_data

FIRST_STEP_TOLERANCE, LATER_STEPS_TOLERANCE, MIN_COSINE = 0.02, 0.15, 0.999


def train_losses(model: Path, data, device: str, precision: str, steps: int, work: Path) -> tuple[list[float], float,
                                                                                                 str]:
    """Losses of ``steps`` steps of our Trainer, triples/s, and the optimizer's class name."""
    from margin_retrieval.training.trainer import Trainer

    # The paper's 8-bit AdamW on CUDA where bitsandbytes is installed (training.optimizer adamw8bit needs it there).
    optimizer = "adamw8bit" if device == "cuda" and importlib.util.find_spec("bitsandbytes") else "adamw"
    config = train_config(objective="margin_mse", precision=precision, device=device, batch_size=32, seed=0,
                          optimizer=optimizer)
    trainer = Trainer(model, data, config, work / f"{device}-{precision}")
    trainer._resume()  # creates the work directory, as fit() does
    trainer._clock_start = time.perf_counter()
    trainer._train_step()  # warm-up step, counted in the losses but not in the throughput
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps - 1):
        trainer._train_step()
    if device == "cuda":
        torch.cuda.synchronize()
    rate = 32 * (steps - 1) / (time.perf_counter() - start)
    losses = [e["loss"] for e in map(json.loads, trainer.log_path.read_text().splitlines()) if e["event"] == "train"]
    return losses, rate, type(trainer.optimizer).__name__


def encode(model: Path, texts: list[str], device: str, precision: str) -> tuple[np.ndarray, float]:
    from margin_retrieval.models.encoders import Encoder

    encoder = Encoder.load(model, device=torch.device(device))
    encoder.encode(texts[:32], 128, 32, precision)  # warm-up
    start = time.perf_counter()
    embeddings = encoder.encode(texts, 128, 32, precision)
    return embeddings, len(texts) / (time.perf_counter() - start)


def main() -> int:
    parser = arguments(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--docs", type=int, default=512, help="passages of the encoded shard")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = student(args.model)
    docs, queries, qrels = scifact(args.mirror)
    data = training_data(docs, queries, qrels, 32 * args.steps)
    texts = [docs[d] for d in sorted(docs)[: args.docs]]
    with tempfile.TemporaryDirectory() as work:
        cpu_losses, cpu_rate, cpu_optimizer = train_losses(model, data, "cpu", "fp32", args.steps, Path(work))
        cpu_emb, cpu_encode_rate = encode(model, texts, "cpu", "fp32")
        print(f"CPU fp32 ({cpu_optimizer}): losses {[round(x, 5) for x in cpu_losses]}, {cpu_rate:.1f} triples/s; "
              f"encoding {cpu_encode_rate:.0f} passages/s")
        if not torch.cuda.is_available():
            print("no CUDA device here (torch.cuda.is_available() is False, torch " + torch.__version__ + "): "
                  "ran the CPU half only; run this script on a CUDA machine for the fp16 / 8-bit AdamW comparison")
            return 0
        print(f"CUDA device: {torch.cuda.get_device_name(0)}")
        gpu_losses, gpu_rate, gpu_optimizer = train_losses(model, data, "cuda", "fp16", args.steps, Path(work))
        gpu_emb, gpu_encode_rate = encode(model, texts, "cuda", "fp16")
    relative = [abs(g - c) / abs(c) for g, c in zip(gpu_losses, cpu_losses)]
    cosine = np.sum(gpu_emb * cpu_emb, axis=1)
    print(f"CUDA fp16 + GradScaler ({gpu_optimizer}): losses {[round(x, 5) for x in gpu_losses]}, "
          f"{gpu_rate:.1f} triples/s ({gpu_rate / cpu_rate:.1f}x the CPU); encoding {gpu_encode_rate:.0f} passages/s "
          f"({gpu_encode_rate / cpu_encode_rate:.1f}x)")
    checks = {
        f"first-step loss within {FIRST_STEP_TOLERANCE:.0%} (got {relative[0]:.2%})": relative[0] <= FIRST_STEP_TOLERANCE,
        f"later losses within {LATER_STEPS_TOLERANCE:.0%} (worst {max(relative[1:], default=0):.2%})":
            max(relative[1:], default=0) <= LATER_STEPS_TOLERANCE,
        f"embedding cosine >= {MIN_COSINE} (lowest {cosine.min():.5f})": bool(cosine.min() >= MIN_COSINE),
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}: {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
