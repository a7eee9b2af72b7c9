"""The committed `.test/` data are what tools/make_test_data.py writes, and its config names only committed files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
TEST_DIR = REPO / ".test"


def test_committed_test_data_match_the_generator(tmp_path):
    subprocess.run([sys.executable, str(REPO / "tools/make_test_data.py"), str(tmp_path)], check=True,
                   capture_output=True)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated
    for relative in generated:
        committed = TEST_DIR / relative
        assert committed.is_file(), f"{committed} missing: rerun tools/make_test_data.py"
        if relative.suffix == ".safetensors":
            ours, theirs = load_file(committed), load_file(tmp_path / relative)
            assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours), relative
        else:
            assert committed.read_bytes() == (tmp_path / relative).read_bytes(), relative


def test_test_config_points_at_committed_files():
    config = yaml.safe_load((TEST_DIR / "config.yaml").read_text())
    paths = [model["source"] for model in config["models"].values()]
    paths += [config["train_data"][key] for key in ("docs", "queries", "qrels")]
    paths += [spec[key] for spec in config["collections"].values() for key in ("docs", "queries", "qrels")]
    for path in paths:
        assert not Path(path).is_absolute() and (TEST_DIR / path).exists(), path
