"""Where a job computes: device selection and what the CPU offers, shared by training, teacher scoring and encoding
(so encoding jobs need not import the training code); ``precision`` says in which precision."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path

import torch

from margin_retrieval.jobs.errors import UserError


class NoCudaDevice(UserError, RuntimeError):
    """A job must compute on CUDA and torch sees none: a setting or an allocation to fix, not a bug."""


def resolve_device(setting: str, gpu_requested: bool) -> torch.device:
    """CUDA when asked for (by config or by the job's gpu resource), and then it must exist; else CPU."""
    cuda = torch.cuda.is_available()
    if gpu_requested and not cuda:
        raise NoCudaDevice(
            "this job was given the 'gpu' resource but torch sees no CUDA device "
            "(check the cluster's GPU allocation and that the CUDA build of torch is installed)"
        )
    if setting == "cuda" and not cuda:
        raise NoCudaDevice("config training.device is 'cuda' but torch sees no CUDA device")
    if setting == "cuda" or gpu_requested or (setting == "auto" and cuda):
        return torch.device("cuda")
    return torch.device("cpu")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether the CPU has bf16 instructions (AVX512-BF16 or AMX); without them bf16 autocast is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_description() -> str:
    """The CPU in one line (model, cores, native bf16 or not), for benchmark reports and archived runs."""
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    native = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]
    return (f"{fields.get('Model name', '?').strip()}, {fields.get('CPU(s)', '?').strip()} CPUs, "
            f"bf16: {'native (' + ', '.join(native) + ')' if native else 'emulated'}")
