"""Whether two model directories encode alike, so that the embeddings of one are the embeddings of the other.

A trained run that never rose above its untrained model by more than the validation noise exports the base model's
weights unchanged; encoding a corpus with them again would repeat the zero-shot encoding to the bit.
"""

from __future__ import annotations

import json
from pathlib import Path

ENCODING_KEYS = ("pooling", "similarity")  # of margin_retrieval.json: how token states become a score
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def encodes_alike(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` hold equal weights (every tensor, in safetensors files), the same pooling and
    similarity and the same tokenizer files; False when anything differs or cannot be compared (no safetensors)."""
    return _encoding_settings(a) == _encoding_settings(b) and _tokenizer(a) == _tokenizer(b) and _equal_weights(a, b)


def _encoding_settings(directory: Path) -> dict:
    settings = json.loads((directory / "margin_retrieval.json").read_text())
    return {key: settings.get(key) for key in ENCODING_KEYS}


def _tokenizer(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in TOKENIZER_FILES if (directory / name).is_file()}


def _equal_weights(a: Path, b: Path) -> bool:
    from safetensors import safe_open

    files = sorted(p.name for p in a.glob("*.safetensors"))
    if not files or files != sorted(p.name for p in b.glob("*.safetensors")):
        return False
    for name in files:
        with safe_open(str(a / name), "pt") as left, safe_open(str(b / name), "pt") as right:
            if set(left.keys()) != set(right.keys()):
                return False
            for key in left.keys():
                x, y = left.get_tensor(key), right.get_tensor(key)
                if x.dtype != y.dtype or x.shape != y.shape or not bool((x == y).all()):
                    return False
    return True
