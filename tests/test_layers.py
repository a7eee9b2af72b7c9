"""The package's layers import downwards only: a stage reads the stages before it in the DAG, never one after."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "margin_retrieval"
# What every stage may use: the job utilities and the typed workflow configuration.
FOUNDATION = {"jobs", "workflow.config", "workflow.experiments"}
# Each stage sub-package and the stages it may import, in DAG order.
STAGES = {
    "data": set(),
    "models": set(),
    "training": {"data", "models"},
    "retrieval": {"data", "models"},
    "evaluation": {"data", "models", "retrieval"},
    "analysis": {"data", "models", "training", "retrieval", "evaluation"},
}
# The workflow's own modules that rules/common.smk calls around the jobs: they read the stages' formats.
ON_TOP = {"workflow.checks", "workflow.archive"}


def layer(module: str) -> str:
    """``margin_retrieval.workflow.config.X`` -> ``workflow.config``, ``margin_retrieval.jobs.io`` -> ``jobs``,
    ``margin_retrieval.data.triples`` -> ``data``."""
    parts = module.split(".")[1:]
    return ".".join(parts[:2]) if parts[0] == "workflow" else parts[0]


def imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]  # `from pkg import module` too
        else:
            continue
        layers |= {layer(name) for name in names if name.startswith("margin_retrieval.")}
    return layers


def offending(paths, allowed: set[str]) -> dict[str, list[str]]:
    return {str(path.relative_to(PACKAGE)): sorted(imported_layers(path) - allowed)
            for path in paths if imported_layers(path) - allowed}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_imports_only_the_foundation_itself_and_earlier_stages(stage):
    assert not offending((PACKAGE / stage).rglob("*.py"), FOUNDATION | STAGES[stage] | {stage})


def test_the_foundation_imports_no_stage():
    paths = [*(PACKAGE / "jobs").rglob("*.py"), PACKAGE / "workflow/config.py", PACKAGE / "workflow/experiments.py"]
    assert not offending(paths, FOUNDATION)


def test_every_module_of_the_package_is_in_a_layer():
    assert {path.stem for path in PACKAGE.glob("*.py")} == {"__init__"}
    assert {f"workflow.{path.stem}" for path in (PACKAGE / "workflow").glob("*.py")} - {"workflow.__init__"} == (
        {name for name in FOUNDATION if name.startswith("workflow.")} | ON_TOP)
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    assert packages == set(STAGES) | {"jobs", "workflow"}
