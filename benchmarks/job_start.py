"""Job start: the seconds a fresh train or encode process spends before its first batch, with the bytecode that
``tools/setup_venv.sh`` compiles once and without it (every module compiled from source, as a job pays where
PYTHONDONTWRITEBYTECODE is set and nothing compiled the environment).

Each rep starts fresh processes: a train job's and an encode job's (each imports what its script imports, loads
the student and encodes one batch of 32 SciFact passages), each as it runs (``light_bert``: no transformers) and as
it ran before (``Encoder.load(light=False)``: transformers' BERT), and one that
imports Snakemake's command line (every local job of the DAG runs in its own Snakemake process before its script
starts). "from source" points PYTHONPYCACHEPREFIX at an empty folder, so Python finds no bytecode and, with
PYTHONDONTWRITEBYTECODE=1, writes none.

    python benchmarks/job_start.py --out benchmarks/results/job_start.txt
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from common import REPO, Report, arguments, scifact, student

JOB = """
import json, sys, time
start = time.perf_counter()
import torch
torch.set_num_threads({threads})
imported_torch = time.perf_counter()
from margin_retrieval.models.encoders import Encoder
{imports}
imported = time.perf_counter()
encoder = Encoder.load(sys.argv[1], light={light})
loaded = time.perf_counter()
encoder.encode(json.loads(sys.argv[2]), 128, batch_size=32, precision="fp32")
done = time.perf_counter()
print(json.dumps({{"import torch": imported_torch - start, "import ours": imported - imported_torch,
                  "load the student": loaded - imported, "first batch (32 passages)": done - loaded,
                  "total": done - start}}))
"""
# What each job's script imports before it loads the model (workflow_scripts/train.py, encode.py).
TRAIN_IMPORTS = "from margin_retrieval.data import collections; from margin_retrieval.training.trainer import Trainer"
ENCODE_IMPORTS = "from margin_retrieval.data import collections; from margin_retrieval.retrieval import encoding"
JOBS = {
    "train job (light_bert)": (TRAIN_IMPORTS, True),
    "train job (transformers)": (TRAIN_IMPORTS, False),
    "encode job (light_bert)": (ENCODE_IMPORTS, True),
    "encode job (transformers)": (ENCODE_IMPORTS, False),
}
SNAKEMAKE = """
import json, time
start = time.perf_counter()
import snakemake.cli
print(json.dumps({"import snakemake": time.perf_counter() - start}))
"""


def run_child(code: str, args: list[str], environment: dict[str, str]) -> dict[str, float]:
    output = subprocess.run([sys.executable, "-c", code, *args], env=environment, cwd=REPO, check=True,
                            capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = arguments(__doc__.splitlines()[0])
    args = parser.parse_args()
    model = student(args.model)
    docs, _, _ = scifact(args.mirror)
    passages = json.dumps([docs[key] for key in sorted(docs)[:32]])
    report = Report("Job start: fresh processes, imports to the first encoded batch", args)
    base = dict(os.environ, PYTHONPATH=str(REPO), PYTHONDONTWRITEBYTECODE="1")
    phases: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as empty:
        environments = {"bytecode compiled once": base, "from source": dict(base, PYTHONPYCACHEPREFIX=empty)}
        for _ in range(args.reps):
            for name, environment in environments.items():  # interleaved, rep by rep
                for job, (imports, light) in JOBS.items():
                    code = JOB.format(threads=args.threads, imports=imports, light=light)
                    for phase, seconds in run_child(code, [str(model), passages], environment).items():
                        phases.setdefault((f"{job}: {phase}", name), []).append(seconds)
                for phase, seconds in run_child(SNAKEMAKE, [], environment).items():
                    phases.setdefault((phase, name), []).append(seconds)
    names = list(environments)
    rows = []
    for phase in dict.fromkeys(phase for phase, _ in phases):
        medians = [statistics.median(phases[phase, name]) for name in names]
        rows.append([phase, *medians, medians[1] / medians[0]])
    report.table(["phase", *(f"{name} (s)" for name in names), "from source / compiled"], rows)
    for job in ("train job", "encode job"):
        light, full = (statistics.median(phases[f"{job} ({path}): total", names[0]])
                       for path in ("light_bert", "transformers"))
        report.add(f"{job} start to its first batch, compiled: transformers / light_bert = {full / light:.2f}x")
    report.close()


if __name__ == "__main__":
    main()
