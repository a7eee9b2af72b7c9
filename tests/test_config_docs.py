"""config/README.md is what tools/config_docs.py generates from the config schema, and it documents every key."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tools" / "config_docs.py"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
REFERENCE = REPO / "config" / "README.md"


def _config_docs():
    spec = importlib.util.spec_from_file_location("config_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))


def test_committed_reference_equals_the_generated_text(tmp_path):
    out = tmp_path / "README.md"
    subprocess.run([sys.executable, str(SCRIPT), str(SCHEMA), str(out)], check=True, cwd=REPO)
    assert REFERENCE.read_text(encoding="utf-8") == out.read_text(encoding="utf-8"), (
        "config/README.md is out of date: rerun python tools/config_docs.py schemas/config.schema.yaml "
        "config/README.md")


def test_every_top_level_property_has_its_section():
    text = REFERENCE.read_text(encoding="utf-8")
    missing = [key for key in _schema()["properties"] if f"\n## `{key}`\n" not in text]
    assert not missing, f"config/README.md has no section for {missing}"


def test_every_nested_key_has_its_line():
    text = REFERENCE.read_text(encoding="utf-8")
    children = _config_docs()._children
    paths = [path for key, node in _schema()["properties"].items() for path, _, _ in children(key, node)]
    assert "training.batch_size" in paths and "models.<name>.pooling" in paths  # the walk reaches nested keys
    assert [path for path in paths if f"- `{path}` (" not in text] == []


def test_every_key_has_a_description():
    assert _config_docs().undescribed(_schema()) == []


def test_check_exits_1_with_one_line_when_the_reference_is_stale(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(REFERENCE.read_text(encoding="utf-8") + "A line edited by hand.\n", encoding="utf-8")
    result = subprocess.run([sys.executable, str(SCRIPT), str(SCHEMA), str(stale), "--check"], capture_output=True,
                            text=True, cwd=REPO)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "out of date" in result.stderr
    fresh = subprocess.run([sys.executable, str(SCRIPT), str(SCHEMA), str(REFERENCE), "--check"], cwd=REPO)
    assert fresh.returncode == 0


def test_rendering_names_type_enum_bounds_default_and_required():
    schema = {"required": ["mode"], "properties": {
        "mode": {"type": "string", "enum": ["a", "b"], "description": "which mode"},
        "section": {"type": "object", "default": {}, "description": "a section", "properties": {
            "size": {"type": "integer", "minimum": 1, "default": 64, "description": "how many"}}}}}
    text = _config_docs().render(schema)
    assert "`mode` (one of `a`, `b`; required): which mode." in text
    assert "- `section.size` (integer >= 1; default `64`): how many." in text
