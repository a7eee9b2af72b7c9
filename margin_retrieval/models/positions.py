"""How many tokens a local model source takes, read without loading the model (for the config check).

The limit is ``max_position_embeddings`` of the model's ``config.json`` (a directory or a ``package:`` source) or the
rows of the position embedding of an ``onnx:`` export; models that number their positions after the padding index
(RoBERTa, MPNet) take ``pad_token_id + 1`` fewer. It is ``None`` where it cannot be known before the model is
prepared: a hub id (the check downloads nothing), a package or ``onnx`` missing from this environment (the jobs may
run in a conda environment of their own that has them), a config without the key.
"""

from __future__ import annotations

import json
from pathlib import Path

from margin_retrieval.models.packages import ONNX_PREFIX, MissingPackageError, package_model_path, package_onnx_path
from margin_retrieval.models.source_kind import model_source_kind

# transformers' model types whose position ids start after the padding index (create_position_ids_from_input_ids).
OFFSET_MODEL_TYPES = {"roberta", "xlm-roberta", "camembert", "mpnet"}
ONNX_POSITIONS = ONNX_PREFIX + "embeddings.position_embeddings.weight"


def position_limit(source: str) -> int | None:
    """The most tokens (special tokens included) a ``models.<name>.source`` can encode, or ``None`` if unknown."""
    kind = model_source_kind(source)
    if kind == "hub":
        return None
    try:
        if kind == "onnx":
            return _onnx_positions(package_onnx_path(source[len("onnx:"):]))
        directory = package_model_path(source[len("package:"):]) if kind == "package" else Path(source).expanduser()
    except (MissingPackageError, FileNotFoundError, ValueError):
        return None  # not usable here; the model preparation job reports it in its own environment
    return _config_positions(directory / "config.json")


def _config_positions(path: Path) -> int | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int):
        return None
    if config.get("model_type") in OFFSET_MODEL_TYPES:
        positions -= config.get("pad_token_id", 1) + 1
    return positions


def _onnx_positions(path: Path) -> int | None:
    """Rows of the export's position embedding (its weights are read but not converted)."""
    try:
        import onnx
    except ImportError:
        return None
    graph = onnx.load(str(path), load_external_data=False).graph
    dims = [list(init.dims) for init in graph.initializer if init.name == ONNX_POSITIONS]
    return int(dims[0][0]) if dims else None
