"""What a config ``models.<name>.source`` names (standard library only: the config check and the model
preparation job both use it)."""

from __future__ import annotations

import re
from pathlib import Path

# A Hugging Face hub id: ``name`` or ``owner/name``.
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")


def model_source_kind(source: str) -> str:
    """``onnx``, ``package``, ``directory`` or ``hub`` for a ``models.<name>.source``.

    An existing directory wins (a relative one needs no ``./``). Something that looks like a path (absolute, ``~``,
    ``.``, two or more ``/``, or a first component that is an existing directory here) but does not exist raises
    FileNotFoundError at once, instead of being tried as a hub id (which fails after many seconds of retries).
    """
    if source.startswith(("onnx:", "package:")):
        return source.split(":", 1)[0]
    path = Path(source).expanduser()
    if path.is_dir():
        return "directory"
    first = Path(source.split("/", 1)[0]).expanduser()
    looks_like_path = (source.startswith(("/", "~", ".")) or source.count("/") > 1 or "\\" in source
                       or path.exists() or ("/" in source and first.is_dir()))
    if looks_like_path:
        state = "is not a directory" if path.exists() else "no such directory"
        raise FileNotFoundError(f"{source!r}: {state} ({path.resolve()}); a local model source must be a model "
                                "directory (relative paths are relative to the working directory)")
    if HUB_ID.fullmatch(source):
        return "hub"
    raise ValueError(f"model source {source!r} is neither onnx:<package>, package:<package>, an existing directory "
                     "nor a Hugging Face hub id ([owner/]name)")
