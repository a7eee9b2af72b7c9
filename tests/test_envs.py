"""Every conda env in envs/ provides what the scripts of its rules import (a static scan, no conda needed): a job
under ``--sdm conda`` must not fail on a missing module after hours of upstream work."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "margin_retrieval"  # installed in every env by `-e ..`
# Import names whose distribution is not found by importlib.metadata here (not installed in the test venv).
KNOWN_DISTRIBUTIONS = {"faiss": "faiss-cpu", "yaml": "pyyaml", "sklearn": "scikit-learn", "bitsandbytes": "bitsandbytes"}
RULE = re.compile(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", re.M)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def rule_envs_and_scripts() -> list[tuple[str, str, str]]:
    """(rule, env file, script) of every rule with a conda env and a script."""
    found = []
    for path in sorted((REPO / "rules").glob("*.smk")):
        for name, body in RULE.findall(path.read_text()):
            env = re.search(r'conda:\s*\n\s*"\.\./(envs/[^"]+)"', body)
            script = re.search(r'script:\s*\n\s*"\.\./(workflow_scripts/[^"]+)"', body)
            if env and script:
                found.append((name, env[1], script[1]))
    return found


def imported_names(path: Path) -> set[str]:
    """Module names imported anywhere in a file (function-level imports run too, on some path)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return names


def module_file(name: str) -> Path | None:
    parts = name.split(".")
    candidate = REPO.joinpath(*parts)
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def third_party_imports(script: str) -> frozenset[str]:
    """Top-level third-party modules a script imports, following the package's own modules transitively."""
    seen, todo, external = set(), [REPO / script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imported_names(path):
            top = name.split(".")[0]
            if top == PACKAGE or top == "tests":
                own = module_file(name)
                if own is not None:
                    todo.append(own)
            elif top not in sys.stdlib_module_names:
                external.add(top)
    return frozenset(external)


def distribution_of(module: str) -> str:
    known = importlib.metadata.packages_distributions().get(module)
    if known:
        return normalize(known[0])
    assert module in KNOWN_DISTRIBUTIONS, f"no pip name known for the import {module!r}: add it to KNOWN_DISTRIBUTIONS"
    return normalize(KNOWN_DISTRIBUTIONS[module])


def env_distributions(env_file: str) -> set[str]:
    env = yaml.safe_load((REPO / env_file).read_text())
    pip = [line for dep in env["dependencies"] if isinstance(dep, dict) for line in dep.get("pip", [])]
    assert "-e .." in pip, f"{env_file}: the workflow's package is not installed (-e ..)"
    return {normalize(re.split(r"[=<>~!\[; ]", line, maxsplit=1)[0]) for line in pip if not line.startswith("-")}


RULES = rule_envs_and_scripts()


def test_the_scan_sees_every_rule_and_known_imports():
    rules = {rule for rule, _, _ in RULES}
    assert {"download", "train", "search", "write_run", "evaluate", "tables"} <= rules
    assert "faiss" in third_party_imports("workflow_scripts/search.py")  # through retrieval/search.py
    assert "pandas" in third_party_imports("workflow_scripts/write_run.py")  # through retrieval/runs.py
    assert "torch" in third_party_imports("workflow_scripts/train.py")


@pytest.mark.parametrize("rule, env_file, script", RULES, ids=[rule for rule, _, _ in RULES])
def test_env_provides_every_import_of_its_rule(rule, env_file, script):
    provided = env_distributions(env_file)
    missing = sorted({module: distribution_of(module) for module in third_party_imports(script)
                      if distribution_of(module) not in provided}.items())
    assert not missing, f"rule {rule}: {env_file} lacks {missing} (import -> pip name) that {script} imports"
