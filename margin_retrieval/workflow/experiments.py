"""Expand the config's named experiment groups into one row per training run (the `Paramspace` table).

A group is a list of grids; a grid maps a column to a value or a list of values, and lists are crossed.
Rows repeated across groups (the full-data adaptive run belongs to several) become one training job.
A column a grid leaves out takes its default from :class:`GridDefaults` (for ``seed``, ``negatives``, ``batching``
and ``lr``: the config's ``training.seed``, ``train_data.negatives.source``, ``training.batching`` and the
objective's ``training.learning_rates`` entry, else ``training.learning_rate``). A group may also train its runs under
its own stopping and export settings (``group_training``), which are not columns: a run is one name, so two groups
that name it must agree on them.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping

import pandas as pd

from margin_retrieval.workflow.config import Batching, Export, FirstStage, InBatch, Negatives, Objective, Settings
from margin_retrieval.jobs.errors import ConfigError

# The order of the run name's segments. New columns go last, so that the names of archived runs, which lack them,
# stay prefixes of the new names (``run_description`` fills the missing columns from the defaults).
COLUMNS = ("model", "objective", "in_batch", "tau", "fraction", "negatives", "batching", "seed", "lr")
# The training keys a group may set for its runs (``group_training``): how a run validates, stops and which model it
# exports. Not the budget (``max_steps``, ``max_epochs``), which the data-efficiency figure states for the whole grid.
GROUP_TRAINING_KEYS = ("early_stopping", "validate_every", "patience", "patience_steps", "min_steps", "min_delta",
                       "export")


@dataclass(frozen=True)
class Run:
    """One training run of the grid, typed; its fields are the columns of its name, in ``COLUMNS`` order."""

    model: str
    objective: Objective
    in_batch: InBatch
    tau: float | None
    fraction: float
    negatives: Negatives
    batching: Batching
    seed: int
    lr: float

    def columns(self) -> dict[str, str]:
        """The run's columns as the strings of its name (and of the Paramspace table)."""
        return {
            "model": self.model, "objective": self.objective.value, "in_batch": self.in_batch.value,
            "tau": "none" if self.tau is None else f"{self.tau:g}", "fraction": f"{self.fraction:g}",
            "negatives": self.negatives.value, "batching": self.batching.value, "seed": str(self.seed),
            "lr": lr_name(self.lr),
        }

    @property
    def name(self) -> str:
        """``model~…/objective~…/…``: the run's folder under results/train/ and its Paramspace pattern."""
        return run_name(self.columns())

    def description(self) -> dict[str, Any]:
        """The typed columns as a flat dict, for training (``TrainConfig.from_config``), cards and analysis."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Grid:
    """The expanded experiment groups: ``table`` (one row per distinct run, its name's strings and the groups that
    name it, for Snakemake's Paramspace), ``runs`` (the same runs, typed, keyed by name) and ``training`` (per run
    name, the training settings its groups set, ``group_training``; empty for most), parsed once."""

    table: pd.DataFrame
    runs: dict[str, Run]
    training: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class GridDefaults:
    """Values of the columns a grid does not name."""

    seed: int
    negatives: Negatives
    batching: Batching
    learning_rate: float
    learning_rates: tuple[tuple[Objective, float], ...] = ()  # per objective, overriding learning_rate
    docpairs: bool = False  # train_data.docpairs set: the docpairs are the only negatives

    @classmethod
    def from_settings(cls, settings: Settings) -> "GridDefaults":
        """``training.seed``, ``train_data.negatives.source`` (docpairs when given), ``training.batching`` and the
        learning rates (``training.learning_rates`` per objective, else ``training.learning_rate``)."""
        docpairs = settings.train_data.docpairs is not None
        source = Negatives.DOCPAIRS if docpairs else Negatives(settings.train_data.negatives.source.value)
        rates = tuple(sorted((Objective(k), float(v)) for k, v in settings.training.learning_rates.items()))
        return cls(seed=settings.training.seed, negatives=source, batching=settings.training.batching,
                   learning_rate=float(settings.training.learning_rate), learning_rates=rates, docpairs=docpairs)

    def lr(self, objective: Objective | str) -> float:
        """The learning rate of a run of ``objective`` whose grid names none."""
        return dict(self.learning_rates).get(Objective(objective), self.learning_rate)

    def as_row(self, objective: Objective | str | None = None) -> dict[str, str]:
        """The default columns as name strings; ``lr`` only given the objective (its default depends on it)."""
        row = {"seed": str(self.seed), "negatives": self.negatives.value, "batching": self.batching.value}
        return row if objective is None else row | {"lr": lr_name(self.lr(objective))}


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _enum(kind, value, where: str, column: str):
    try:
        return kind(value)
    except ValueError:
        raise ConfigError(f"config experiments.{where}: {column} must be one of {[m.value for m in kind]}, "
                          f"got {value!r}") from None


def _tau(objective: Objective, tau, where: str) -> float | None:
    if objective == Objective.STATIC:
        if tau is None or isinstance(tau, bool) or not isinstance(tau, (int, float)):
            raise ConfigError(f"config experiments.{where}: a static margin needs a numeric tau, got {tau!r}")
        # The loss pulls each margin s(q, p) - s(q, n) towards tau: a negative tau would train the model to rank the
        # negative above the positive.
        if tau < 0:
            raise ConfigError(f"config experiments.{where}: the static margin tau must be >= 0, got {tau!r}")
        return float(tau)
    if tau is not None:
        raise ConfigError(f"config experiments.{where}: tau is only meaningful for the static objective, "
                          f"not {objective!r}")
    return None


def _in_batch(objective: Objective, value, where: str) -> InBatch:
    try:
        in_batch = InBatch.parse(value)
    except ValueError as error:
        raise ConfigError(f"config experiments.{where}: {error}") from None
    if in_batch != InBatch.OFF and not objective.is_margin:
        raise ConfigError(f"config experiments.{where}: in_batch applies to margin objectives only, "
                          f"not {objective.value!r}")
    if objective == Objective.DISTRIBUTED and in_batch != InBatch.OFF:
        raise ConfigError(f"config experiments.{where}: the distributed target cannot be combined with in_batch")
    return in_batch


def _negatives(values: dict, defaults: GridDefaults, where: str) -> Negatives:
    if "negatives" not in values:
        return defaults.negatives
    if defaults.docpairs:
        raise ConfigError(f"config experiments.{where}: negatives is not a column when train_data.docpairs gives "
                          "the triples (the docpairs are their only negatives)")
    return Negatives(_enum(FirstStage, values["negatives"], where, "negatives").value)


def _seed(values: dict, defaults: GridDefaults, where: str) -> int:
    seed = values.get("seed", defaults.seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"config experiments.{where}: seed must be an integer, got {seed!r}")
    return seed


def lr_name(lr: float) -> str:
    """A learning rate as its run-name segment, e.g. 5e-05."""
    return f"{float(lr):g}"


def _lr(values: dict, objective: Objective, defaults: GridDefaults, where: str) -> float:
    lr = values.get("lr", defaults.lr(objective))
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError(f"config experiments.{where}: lr must be a positive number, got {lr!r}")
    return float(lr)


def _run(where: str, values: dict, defaults: GridDefaults) -> Run:
    """One run of a grid; every value is checked here, once."""
    objective = _enum(Objective, values["objective"], where, "objective")
    fraction = values.get("fraction", 1.0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ConfigError(f"config experiments.{where}: fraction must be in (0, 1], got {fraction!r}")
    return Run(
        model=values["model"],
        objective=objective,
        in_batch=_in_batch(objective, values.get("in_batch", False), where),
        tau=_tau(objective, values.get("tau"), where),
        fraction=float(fraction),
        negatives=_negatives(values, defaults, where),
        batching=_enum(Batching, values.get("batching", defaults.batching), where, "batching"),
        seed=_seed(values, defaults, where),
        lr=_lr(values, objective, defaults, where),
    )


def _grid_runs(group: str, index: int, grid: dict, students: list[str], defaults: GridDefaults) -> list[Run]:
    """The runs of entry ``index`` of experiment group ``group``; an error names both (``static_sweep[0]``)."""
    where = f"{group}[{index}]"
    unknown = set(grid) - set(COLUMNS)
    if unknown:
        raise ConfigError(f"config experiments.{where}: unknown column(s) {sorted(unknown)}; allowed: {COLUMNS}")
    if "objective" not in grid:
        raise ConfigError(f"config experiments.{where}: every grid needs an objective")
    grid = {"model": students, **grid}
    keys = list(grid)
    runs = []
    for values in itertools.product(*(_as_list(grid[key]) for key in keys)):
        run = _run(where, dict(zip(keys, values)), defaults)
        if run.model not in students:
            raise ConfigError(f"config experiments.{where}: model {run.model!r} is not a configured student "
                              f"{students}")
        runs.append(run)
    return runs


def _group_training(group_training: Mapping[str, Mapping[str, Any]], groups: set[str]) -> dict[str, dict[str, Any]]:
    """``group_training`` checked against the groups, ``export`` as its enum (the schema checked the other types)."""
    unknown = sorted(set(group_training) - groups)
    if unknown:
        raise ConfigError(f"config group_training: {unknown} name no experiment group; groups: {sorted(groups)}")
    parsed = {}
    for group, settings in group_training.items():
        keys = sorted(set(settings) - set(GROUP_TRAINING_KEYS))
        if keys:
            raise ConfigError(f"config group_training.{group}: {keys} cannot differ by group; allowed: "
                              f"{list(GROUP_TRAINING_KEYS)}")
        parsed[group] = {key: Export(value) if key == "export" else value for key, value in settings.items()}
    return parsed


def _run_training(named: list[tuple[Run, str]], group_training: dict[str, dict[str, Any]]) -> dict[str, dict]:
    """Per run name, the settings of the groups that name it; two groups that set one key differently are an error."""
    training: dict[str, dict[str, Any]] = {}
    source: dict[tuple[str, str], str] = {}
    for run, group in named:
        settings = training.setdefault(run.name, {})
        for key, value in group_training.get(group, {}).items():
            if key in settings and settings[key] != value:
                raise ConfigError(f"config group_training: run {run.name} is named by groups {source[run.name, key]} "
                                  f"and {group}, which set {key} to {settings[key]!r} and {value!r}; give the "
                                  "groups' runs different columns (e.g. lr) or the same settings")
            settings[key] = value
            source.setdefault((run.name, key), group)
    return training


def expand_experiments(experiments: dict, students: list[str], defaults: GridDefaults,
                       group_training: Mapping[str, Mapping[str, Any]] | None = None) -> Grid:
    """One row (and one ``Run``) per distinct training run; the table's values are strings so that paths are
    stable."""
    named = [(run, group) for group, grids in experiments.items() for index, grid in enumerate(grids)
             for run in _grid_runs(group, index, grid, students, defaults)]
    if not named:
        raise ConfigError("config experiments: the configuration defines no training run")
    training = _run_training(named, _group_training(group_training or {}, set(experiments)))
    table = pd.DataFrame([{**run.columns(), "group": group} for run, group in named], columns=[*COLUMNS, "group"])
    groups = table.groupby(list(COLUMNS), sort=False)["group"].agg(lambda g: ",".join(dict.fromkeys(g)))
    table = groups.reset_index().sort_values(list(COLUMNS), kind="stable").reset_index(drop=True)
    runs = {run.name: run for run, _ in named}
    names = list(map(run_name, table.to_dict("records")))
    return Grid(table, {name: runs[name] for name in names}, {name: training[name] for name in names})


def run_name(columns: Mapping[str, str]) -> str:
    """``model~…/objective~…/…`` from a run's columns as strings (a table row, or a Paramspace instance)."""
    return "/".join(f"{column}~{columns[column]}" for column in COLUMNS)


def parse_run(row: Mapping[str, str], defaults: GridDefaults | None = None) -> Run:
    """The run a name's columns describe, for names read back from disk (an archive, a results folder).

    A name that lacks a column (an archived run named before the column existed) takes its value from ``defaults``
    (without them that is an error).
    """
    row = {**(defaults.as_row(row.get("objective")) if defaults else {}), **row}
    missing = [column for column in COLUMNS if column not in row]
    if missing:
        raise KeyError(f"run {row} lacks the column(s) {missing}")
    return Run(
        model=row["model"],
        objective=Objective(row["objective"]),
        in_batch=InBatch.parse(row["in_batch"]),
        tau=None if row["tau"] in ("none", None) else float(row["tau"]),
        fraction=float(row["fraction"]),
        negatives=Negatives(row["negatives"]),
        batching=Batching(row["batching"]),
        seed=int(row["seed"]),
        lr=float(row["lr"]),
    )


def run_description(row: Mapping[str, str], defaults: GridDefaults | None = None) -> dict[str, Any]:
    """Typed, flat view of one run from its name's columns (``parse_run``), for training and analysis."""
    return parse_run(row, defaults).description()


def fraction_size(n: int, fraction: float) -> int:
    return max(1, math.ceil(fraction * n))


def training_budget(max_epochs: int, max_steps: int | None) -> str:
    """What every run may train, in words for the data-efficiency figure: with a step cap below what the epochs
    allow, each data fraction gets as many updates (more epochs over less data); otherwise smaller fractions get
    proportionally fewer."""
    if max_steps is None:
        epochs = f"{max_epochs} epoch{'s' if max_epochs != 1 else ''}"
        return f"budget: {epochs} of each fraction (fewer updates on less data)"
    return (f"budget: at most {max_steps} steps, at most {max_epochs} epoch{'s' if max_epochs != 1 else ''} "
            "(equal updates wherever the epochs allow them)")
