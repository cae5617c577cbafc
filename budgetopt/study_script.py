"""The study-script protocol: one Python file describes a task that budgetopt can search.

A *study script* is a module (a built-in one, ``"fashion_mnist"``, ``"cifar10"``,
``"digits"``, or a path to your own ``.py`` file) that defines these names:

========================================  =================================================
``direction``                              ``"maximize"`` or ``"minimize"``: of the
                                           validation score ``evaluate`` returns.
``ladder``                                 the default ladder, ``(min_budget, max_budget,
                                           reduction_factor)`` in iterations (or a
                                           :class:`~budgetopt.Ladder`).
``quick_ladder`` *(optional)*              a smaller ladder for demos and tests (default:
                                           ``ladder``).
``ladders`` *(optional)*                   named ladders, ``{"short": (15, 405, 3), "long":
                                           (30, 2430, 3)}``: horizons a user picks by name
                                           (``budgetopt bench build --ladder long``).
``chance`` *(optional)*                    the score of a model that learned nothing (e.g.
                                           ``0.1``, the accuracy of a guess among 10
                                           classes; for a minimize study, the loss of such
                                           a model, e.g. ``math.log(10)``): a configuration
                                           *trains* when its score is clearly better. A
                                           diverged run scores just worse than both chance
                                           and every finite score of the table, in either
                                           direction.
``load_data(data_dir=None, quick=False,    *optional*: whatever ``batches`` and ``evaluate``
**options)``                               need (tensors, datasets); called once per
                                           process and cached. ``data_dir`` is the user's
                                           ``--data-dir``; ``quick`` asks for a smaller
                                           setting; ``options`` are the script's own
                                           (e.g. ``fake=True`` for CIFAR-10). Default: None.
``search_space(trial)``                    the hyperparameters: ``trial.suggest_*`` calls,
                                           returned as a dict ``params``.
``build(params, device)``                  ``(model, optimizer)`` for ``params``, the model on
                                           ``device``; each param group's ``lr`` is the peak
                                           learning rate (the schedule scales it).
``batches(data, seed, device)``            an endless iterator of training batches on
                                           ``device``, its order fixed by ``seed``.
``train_step(model, optimizer, batch,      one optimizer step on ``batch`` (zero the
params)``                                  gradients, forward, backward, ``optimizer.step()``);
                                           returns the loss tensor (no ``.item()``: budgetopt
                                           checks it for NaN without a sync per step).
``evaluate(model, data, split, device)``   the score (a float) of ``model`` on ``split``:
                                           ``"val"`` during the search, ``"test"`` only for the
                                           final report of the configuration a search picked.
========================================  =================================================

budgetopt owns everything else: the learning rate of every step (the mode's schedule
for each budget), seeding (``torch.manual_seed(seed)`` before ``build``), ``model.train()``
before each budget's training, reports at each rung, pruning, compute and divergence.

A minimal script (a complete, runnable ``my_study.py``)::

    import torch
    from torch import nn
    from budgetopt.data import load_digits, tensor_batches
    from budgetopt.study_script import accuracy

    direction = "maximize"
    ladder = (30, 810, 3)                    # rungs 30, 90, 270, 810 iterations

    def load_data(data_dir=None, quick=False):
        return load_digits()

    def search_space(trial):
        return {"lr": trial.suggest_float("lr", 1e-3, 1.0, log=True)}

    def build(params, device):
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10)).to(device)
        return model, torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=0.9)

    def batches(data, seed, device):
        return tensor_batches(*data.train, batch_size=32, seed=seed, device=device)

    def train_step(model, optimizer, batch, params):
        x, y = batch
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def evaluate(model, data, split, device):
        x, y = getattr(data, split)
        return accuracy(model, [(x, y)], device)

Then, with Optuna (budgets from the study's :class:`~budgetopt.BudgetPruner`)::

    script = load_study_script("my_study.py")
    ladder = script.ladder
    pruner = BudgetPruner(ladder.min_budget, ladder.max_budget, ladder.reduction_factor)
    study = optuna.create_study(direction=script.direction, pruner=pruner)
    study.optimize(make_objective(script, mode="restart"), n_trials=50)

or one configuration, without Optuna: ``train_config(script, {"lr": 0.1}, [30, 90, 270])``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import itertools
import math
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import torch

from budgetopt.attrs import ATTR_SEED, ATTR_TEST_VALUE
from budgetopt.errors import InputError, ProtocolError, UserCodeError
from budgetopt.ladder import Ladder
from budgetopt.run import BudgetedRun

if TYPE_CHECKING:
    import optuna

REQUIRED = ("direction", "ladder", "search_space", "build", "batches", "train_step", "evaluate")
# How budgetopt calls each function of the protocol: positional arguments, or keywords.
CALLS = {
    "search_space": ("trial",),
    "build": ("params", "device"),
    "batches": ("data", "seed", "device"),
    "train_step": ("model", "optimizer", "batch", "params"),
    "evaluate": ("model", "data", "split", "device"),
    "load_data": {"data_dir": None, "quick": False},
}
DIRECTIONS = ("maximize", "minimize")


class StudyScriptError(InputError):
    """A study script that cannot be found, imported, or does not follow the protocol."""


class StudyScriptProtocolError(StudyScriptError, ProtocolError):
    """A study script's function, called in a trial, returned what the protocol does not allow."""


# Study scripts added by name with register_studies: name -> importable module. The
# built-in ones (budgetopt/studies/*.py) are found when asked, not registered.
_NAMED: dict[str, str] = {}


def register_studies(modules: Mapping[str, str]) -> None:
    """Make study scripts loadable by name: ``{name: importable module name}``."""
    _NAMED.update(modules)


BUILTIN_PACKAGE = f"{__package__}.studies"  # where the study scripts that come with budgetopt live


def _named() -> dict[str, str]:
    """Every study script loadable by name: the modules of :data:`BUILTIN_PACKAGE`, found
    by their files (the package is not imported), and those :func:`register_studies` added."""
    import pkgutil

    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    paths = list(spec.submodule_search_locations or ()) if spec is not None else []
    builtin = {m.name: f"{BUILTIN_PACKAGE}.{m.name}" for m in pkgutil.iter_modules(paths) if not m.name.startswith("_")}
    return {**builtin, **_NAMED}


def builtin_studies() -> tuple[str, ...]:
    """Names of the study scripts that load by name: those that come with budgetopt
    (``budgetopt/studies/*.py``), and any :func:`register_studies` added."""
    return tuple(sorted(_named()))


@dataclass
class StudyScript:
    """A loaded study script: its module, checked, with its ladders as :class:`~budgetopt.Ladder`."""

    name: str
    path: Path
    module: ModuleType
    direction: str
    ladder: Ladder
    quick_ladder: Ladder
    user_code: bool = False  # loaded from a path: what it raises is the user's (UserCodeError), not budgetopt's
    _data: dict = field(default_factory=dict, repr=False)

    @contextlib.contextmanager
    def calling(self, function: str) -> Iterator[None]:
        """A block that calls the script's ``function``: for a script loaded from a path,
        what it raises is re-raised as :class:`~budgetopt.errors.UserCodeError` with the
        script's line (``optuna.TrialPruned`` passes as it is)."""
        try:
            yield
        except Exception as error:
            self._raise(error, function)

    def _raise(self, error: Exception, function: str) -> NoReturn:
        """Raise ``error``, which the script's ``function`` raised, as :meth:`calling` says."""
        import optuna

        if not self.user_code or isinstance(error, (optuna.TrialPruned, UserCodeError)):
            raise error
        raise UserCodeError.of(error, self.path, function) from error

    def ladder_for(self, quick: bool = False) -> Ladder:
        return self.quick_ladder if quick else self.ladder

    def named_ladder(self, spec: str | None) -> tuple[str, Ladder]:
        """``(name, ladder)`` for ``spec``: None or ``"default"`` (the script's ``ladder``),
        ``"quick"``, a name of the script's ``ladders``, or ``"MIN,MAX,ETA"``."""
        named = {"default": self.ladder, "quick": self.quick_ladder}
        for name, value in (getattr(self.module, "ladders", None) or {}).items():
            named[name] = _ladder(self.path, f"ladders[{name!r}]", value)
        spec = "default" if spec is None else str(spec)
        if spec in named:
            return spec, named[spec]
        parts = spec.split(",")
        if len(parts) == 3 and all(p.strip().isdigit() for p in parts):
            try:
                ladder = Ladder(*(int(p) for p in parts))
            except (TypeError, ValueError) as error:
                raise StudyScriptError(f"ladder {spec!r} is not a ladder: {error}") from None
            return spec.replace(" ", ""), ladder
        raise StudyScriptError(
            f"unknown ladder {spec!r} for study {self.name}: allowed are {', '.join(named)} or MIN,MAX,ETA in iterations"
        )

    def load_data(self, data_dir: str | Path | None = None, quick: bool = False, **options: Any) -> Any:
        """The script's ``load_data(data_dir, quick, **options)``, once per distinct arguments."""
        key = (None if data_dir is None else str(data_dir), quick, tuple(sorted(options.items())))
        if key not in self._data:
            load = getattr(self.module, "load_data", None)
            with self.calling("load_data"):
                self._data[key] = None if load is None else load(data_dir=data_dir, quick=quick, **options)
        return self._data[key]

    # The protocol functions, each called through calling(); the results a caller relies on, checked.
    def search_space(self, trial: optuna.trial.BaseTrial) -> dict:
        with self.calling("search_space"):
            params = self.module.search_space(trial)
        if not isinstance(params, dict):
            raise StudyScriptProtocolError(
                f"{self.name}: search_space(trial) must return a dict of params, got {type(params).__name__}"
            )
        return params

    def build(self, params: dict, device: torch.device | str) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        with self.calling("build"):
            built = self.module.build(params, device)
        if not (isinstance(built, tuple) and len(built) == 2):
            raise StudyScriptProtocolError(
                f"{self.name}: build(params, device) must return (model, optimizer), got {type(built).__name__}"
            )
        return built

    def evaluate(self, model: torch.nn.Module, data: Any, split: str, device: torch.device | str) -> float:
        with self.calling("evaluate"):
            return float(self.module.evaluate(model, data, split, device))

    def batches(self, data: Any, seed: int, device: torch.device | str) -> Iterator[Any]:
        """The script's ``batches(data, seed, device)``, its errors as :meth:`calling` says."""
        with self.calling("batches"):
            stream = iter(self.module.batches(data, seed, device))
        drawn = 0
        while True:  # every step: try/except, not a context manager (free when nothing is raised)
            try:
                batch = next(stream)
            except StopIteration:
                raise StudyScriptProtocolError(
                    f"{self.name}: batches(data, seed, device) ran out after {drawn} batches: it must yield batches "
                    "without end (loop over epochs; a run takes as many steps as its budget)"
                ) from None
            except Exception as error:
                self._raise(error, "batches")
            drawn += 1
            yield batch

    def train_step(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: Any, params: dict) -> Any:
        try:  # every step: see batches
            loss = self.module.train_step(model, optimizer, batch, params)
        except Exception as error:
            self._raise(error, "train_step")
        if not isinstance(loss, torch.Tensor) and not _is_number(loss):
            raise StudyScriptProtocolError(
                f"{self.name}: train_step(model, optimizer, batch, params) must return the step's loss (a tensor or a "
                f"number), got {type(loss).__name__}"
            )
        return loss


def _is_number(value: Any) -> bool:
    """Whether ``float(value)`` takes it (a Python or numpy number, a 0-d numpy array)."""
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def load_study_script(name_or_path: str | Path) -> StudyScript:
    """The study script called ``name_or_path``: a built-in name (see :func:`builtin_studies`;
    ``-`` and ``_`` alike) or the path of a ``.py`` file. Raises :class:`StudyScriptError`
    with a one-line message when it is unknown, missing, fails to import, or lacks a
    name of the protocol."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".py") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
        if not path.is_file():
            raise StudyScriptError(f"study script {text} does not exist")
        module = _import_file(path)
        return _check(path.stem, path, module, user_code=True)
    else:
        name = text.replace("-", "_")
        known = builtin_studies()
        if name not in known:
            raise StudyScriptError(
                f"unknown study {text!r}: the built-in studies are {', '.join(known)}; or give the path of a .py study script"
            )
        if name in _NAMED:  # a user's study registered by name may import torchvision or timm
            from budgetopt._torchvision import repair_torchvision_ops

            repair_torchvision_ops()
        module = importlib.import_module(_named()[name])
        path = Path(str(module.__file__))
    return _check(name, path, module)


def _import_file(path: Path) -> ModuleType:
    module_name = f"budgetopt_study_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StudyScriptError(f"study script {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up here
    from budgetopt._torchvision import repair_torchvision_ops

    repair_torchvision_ops()  # the script may import torchvision or timm (a CPU-only torch, PyPI's torchvision)
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[module_name]
        # the script's deepest line, as for its functions; the original stays the cause (BUDGETOPT_DEBUG=1 shows it)
        raise StudyScriptError(f"study script {path} failed to import: {UserCodeError.of(error, path, '<module>')}") from error
    return module


def _check(name: str, path: Path, module: ModuleType, user_code: bool = False) -> StudyScript:
    missing = [n for n in REQUIRED if not hasattr(module, n)]
    if missing:
        raise StudyScriptError(
            f"study script {path} does not follow the protocol: it lacks {', '.join(missing)} "
            f"(required: {', '.join(REQUIRED)}; see budgetopt.study_script)"
        )
    for n, arguments in CALLS.items():
        if hasattr(module, n):
            _check_callable(path, n, getattr(module, n), arguments)
    if module.direction not in DIRECTIONS:
        raise StudyScriptError(f"study script {path}: direction must be one of {', '.join(DIRECTIONS)}, got {module.direction!r}")
    ladder = _ladder(path, "ladder", module.ladder)
    quick_ladder = _ladder(path, "quick_ladder", getattr(module, "quick_ladder", ladder))
    return StudyScript(
        name=name, path=path, module=module, direction=module.direction, ladder=ladder, quick_ladder=quick_ladder,
        user_code=user_code,
    )


def _check_callable(path: Path, name: str, function: object, arguments: Collection[str]) -> None:
    if not callable(function):
        raise StudyScriptError(f"study script {path}: {name} must be a function, got {type(function).__name__}")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: trust them
        return
    try:
        signature.bind(**arguments) if isinstance(arguments, dict) else signature.bind(*arguments)
    except TypeError:
        call = ", ".join(f"{k}=..." for k in arguments) if isinstance(arguments, dict) else ", ".join(arguments)
        raise StudyScriptError(f"study script {path}: {name}{signature} cannot be called as {name}({call})") from None


def _ladder(path: Path, attr: str, value: object) -> Ladder:
    if isinstance(value, Ladder):
        return value
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 3:
        raise StudyScriptError(f"study script {path}: {attr} must be (min_budget, max_budget, reduction_factor), got {value!r}")
    try:
        return Ladder(*value)
    except (TypeError, ValueError) as error:
        raise StudyScriptError(f"study script {path}: {attr} {tuple(value)!r} is not a ladder: {error}") from None


def _as_script(script: StudyScript | str | Path) -> StudyScript:
    return script if isinstance(script, StudyScript) else load_study_script(script)


# -- driving training -----------------------------------------------------------------


def train_run(
    script: StudyScript,
    run: BudgetedRun,
    params: dict,
    data: Any,
    seed: int,
    device: torch.device | str,
    max_compute: int | None = None,
) -> bool:
    """Train ``run`` over its budgets and report each budget's validation score.

    A mode that restores the initial state before each budget (restart) also restarts the
    batch order, so that the model of each budget is exactly a fresh run of that budget
    (the paper's independent runs); the other modes go on through one stream of batches.

    ``max_compute``: a budget whose planned compute (the mode's formula, re-done
    iterations included) would take the run beyond it is not started, and the function
    returns False; True when the run reached its last budget or ended (pruned, diverged).
    """
    model, optimizer = run.model, run.optimizer
    stream = None
    for segment in run.segments():
        if max_compute is not None and run.mode_object.compute(run.budgets, segment.index) > max_compute:
            return False
        if stream is None or run.mode_object.keeps == "initial":
            stream = script.batches(data, seed, device)
        model.train()
        for _ in segment:
            run.record_loss(script.train_step(model, optimizer, next(stream), params))
        segment.report(script.evaluate(model, data, "val", device))
    return True


def build_seeded(script: StudyScript, params: dict, seed: int, device: torch.device | str):
    """The script's ``(model, optimizer)`` for ``params``, torch seeded with ``seed`` first."""
    torch.manual_seed(seed)
    return script.build(params, device)


def make_objective(
    script: StudyScript | str | Path,
    *,
    mode: str = "restart",
    budgets: Sequence[int] | Ladder | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    data: Any = None,
    record_test: bool = False,
    **run_options: Any,
) -> Callable[[optuna.trial.Trial], float]:
    """An Optuna objective that trains the script's model for each trial with :class:`~budgetopt.BudgetedRun`.

    Args:
        script: a :class:`StudyScript` or what :func:`load_study_script` takes.
        mode: ``"restart"``, ``"branch"`` or ``"continue"`` (see :class:`~budgetopt.BudgetedRun`).
        budgets: None (default) to take each trial's budgets from the study's
            :class:`~budgetopt.BudgetPruner`; or explicit budgets for every trial, e.g.
            the ladder's rungs for the ``continue`` baseline under Optuna's own
            ``SuccessiveHalvingPruner`` (its ``min_resource`` and ``reduction_factor``
            equal to the ladder's, so that it decides at the rungs).
        device: where the model and batches live (``"cpu"``, ``"cuda"``, ...).
        seed: trial ``n`` uses seed ``seed + n`` for its initial weights and batch order
            (user attr ``budgetopt.seed``); a trial that already has that user attr (a
            retry of a trial whose worker died) keeps it.
        data: the script's data (default: ``script.load_data()``).
        record_test: also evaluate the ``"test"`` split when a trial completes its last
            budget, into user attr ``budgetopt.test_value``, so that the test score of the
            configuration a search picks is known without training it again. It is never
            the objective's value.
        **run_options: :class:`~budgetopt.BudgetedRun`'s keyword arguments
            (``profile``, ``warmup``, ``cooldown``, ``snapshot_device``, ``keep_models`` and
            ``model_store``, ...).

    The objective returns the validation score of the trial's last budget; a pruned or
    diverged trial raises ``optuna.TrialPruned`` (reason in user attr ``budgetopt.ended``).
    """
    script = _as_script(script)
    data = script.load_data() if data is None else data

    def objective(trial: optuna.trial.Trial) -> float:
        # A retried trial (its worker died) keeps its first attempt's seed: the user attrs
        # a retry copies carry it, so its resumed training is the same run.
        trial_seed = int(trial.user_attrs.get(ATTR_SEED, seed + trial.number))
        params = script.search_space(trial)
        model, optimizer = build_seeded(script, params, trial_seed, device)
        run = BudgetedRun(trial, model, optimizer, budgets=budgets, mode=mode, **run_options)
        trial.set_user_attr(ATTR_SEED, trial_seed)
        train_run(script, run, params, data, trial_seed, device)
        if record_test:
            trial.set_user_attr(ATTR_TEST_VALUE, script.evaluate(model, data, "test", device))
        assert run.value is not None  # a run that ended without a value raised TrialPruned
        return run.value

    return objective


@dataclass
class TrainResult:
    """What :func:`train_config` measured for one configuration and seed.

    ``rung_values`` has the validation score of every budget reached (all of them unless
    the run diverged, see ``diverged``); ``test_value`` is the test score of the model
    of the last budget (None when not asked for or diverged); ``compute`` the iterations
    executed, re-done ones included; ``seconds`` the wall time.
    """

    params: dict
    budgets: tuple[int, ...]
    mode: str
    seed: int
    rung_values: dict[int, float]
    test_value: float | None
    compute: int
    diverged: str | None
    seconds: float
    rung_compute: dict[int, int] = field(default_factory=dict)
    trunk_values: dict[int, float] = field(default_factory=dict)  # train_cosine_cooldown: the cosine run's own values

    @property
    def value(self) -> float | None:
        """The validation score of the last budget reached."""
        return self.rung_values[max(self.rung_values)] if self.rung_values else None


def train_config(
    script: StudyScript | str | Path,
    params: dict,
    budgets: Sequence[int] | Ladder,
    mode: str = "restart",
    seed: int = 0,
    device: torch.device | str = "cpu",
    *,
    data: Any = None,
    test: bool = True,
    **run_options: Any,
) -> TrainResult:
    """Train one fixed configuration ``params`` over ``budgets`` in ``mode``, no Optuna.

    The same training as a trial of :func:`make_objective` with seed ``seed``: with
    ``mode="restart"`` and budgets ``[B]`` it is the *truth* of a configuration (its
    full-budget score with linear decay); with a ladder's rungs, its rung scores in that
    mode. ``run_options`` are :class:`~budgetopt.BudgetedRun`'s (``profile``, ...).
    """
    script = _as_script(script)
    data = script.load_data() if data is None else data
    start = time.perf_counter()
    model, optimizer = build_seeded(script, params, seed, device)
    run = BudgetedRun(budgets, model, optimizer, mode=mode, **run_options)
    train_run(script, run, params, data, seed, device)
    test_value = script.evaluate(model, data, "test", device) if test and run.diverged is None else None
    return TrainResult(
        params=dict(params),
        budgets=run.budgets,
        mode=mode,
        seed=seed,
        rung_values=dict(run.rung_values),
        test_value=test_value,
        compute=run.compute,
        diverged=run.diverged,
        seconds=time.perf_counter() - start,
        rung_compute=dict(zip(run.segment_compute, itertools.accumulate(run.segment_compute.values()))),
    )


def train_cosine_cooldown(
    script: StudyScript | str | Path,
    params: dict,
    budgets: Sequence[int] | Ladder,
    cooldown: float,
    seed: int = 0,
    device: torch.device | str = "cpu",
    *,
    data: Any = None,
    test: bool = True,
) -> TrainResult:
    """One cosine schedule over the last budget with a linear cooldown branched off it at
    every lower budget: the annealed value of each budget at successive halving's price.

    The trunk is exactly the ``continue`` baseline's run (``train_config(..., "continue",
    profile="cosine")``: the same steps, batches and rates). At each lower budget ``B``,
    ``c = cooldown_iterations(B, cooldown)`` steps before it, the run is branched: a copy
    trains the trunk's next ``c`` batches with the rate falling linearly from the cosine
    rate there to zero at ``B`` and is evaluated; then model, optimizer and torch's random
    state are restored and the trunk goes on over those same batches.

    ``rung_values``: the cooled-down value at each lower budget, the cosine run's at the
    last (annealed by its own schedule); ``trunk_values``: the cosine run's value at every
    budget (what Optuna's pruners see); ``rung_compute``: iterations so far, cooldowns
    included.
    """
    import collections
    import copy

    from budgetopt.modes import cooldown_iterations

    script = _as_script(script)
    data = script.load_data() if data is None else data
    start = time.perf_counter()
    model, optimizer = build_seeded(script, params, seed, device)
    run = BudgetedRun(budgets, model, optimizer, mode="continue", profile="cosine")
    targets = {b - cooldown_iterations(b, cooldown): b for b in run.budgets[:-1]}
    stream = script.batches(data, seed, device)
    pending: collections.deque = collections.deque()  # batches drawn for a cooldown, not yet trained by the trunk
    cooled: dict[int, float] = {}
    rung_compute: dict[int, int] = {}
    extra = 0

    def cool_down(steps: int) -> float:
        saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict()), torch.get_rng_state())
        peaks = [group["lr"] for group in optimizer.param_groups]
        finite = True
        for k, batch in zip(range(steps), list(pending)):
            for group, peak in zip(optimizer.param_groups, peaks):
                group["lr"] = peak * (1 - k / steps)
            loss = script.train_step(model, optimizer, batch, params)
            finite = math.isfinite(float(loss.detach() if isinstance(loss, torch.Tensor) else loss)) and finite
        value = script.evaluate(model, data, "val", device) if finite else math.nan
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        torch.set_rng_state(saved[2])
        model.train()
        return value

    for segment in run.segments():
        model.train()
        for t in segment:
            if t in targets:
                steps = targets[t] - t
                while len(pending) < steps:
                    pending.append(next(stream))
                cooled[targets[t]] = cool_down(steps)
                extra += steps
            run.record_loss(script.train_step(model, optimizer, pending.popleft() if pending else next(stream), params))
        segment.report(script.evaluate(model, data, "val", device))
        rung_compute[segment.budget] = run.compute + extra
    trunk = dict(run.rung_values)
    rung_values = {b: v for b, v in cooled.items() if b in trunk and math.isfinite(v)}
    if run.budgets[-1] in trunk:
        rung_values[run.budgets[-1]] = trunk[run.budgets[-1]]
    test_value = script.evaluate(model, data, "test", device) if test and run.diverged is None else None
    return TrainResult(
        params=dict(params),
        budgets=run.budgets,
        mode="cosine_cooldown",
        seed=seed,
        rung_values=rung_values,
        test_value=test_value,
        compute=run.compute + extra,
        diverged=run.diverged,
        seconds=time.perf_counter() - start,
        rung_compute=rung_compute,
        trunk_values=trunk,
    )


def accuracy(
    model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], device: torch.device | str, chunk: int = 256
) -> float:
    """Fraction of correctly classified examples over ``(inputs, labels)`` batches (a
    DataLoader, or ``[(x, y)]`` for whole tensors, which are split into ``chunk``-sized
    pieces), with the model in eval mode and no gradients. (256: on a CPU the activations of
    larger chunks leave the cache; a width-32 CNN scores 10,000 images twice as fast.)"""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    with torch.inference_mode():
        for x, y in batches:
            for xs, ys in zip(x.split(chunk), y.split(chunk)):
                ys = ys.to(device, non_blocking=True)
                correct += (model(xs.to(device, non_blocking=True)).argmax(1) == ys).sum()
                total += len(ys)
    if total == 0:
        raise InputError("accuracy over no examples: the evaluation batches are empty")
    return correct.item() / total


def check_device(spec: str) -> str:
    """``spec`` as torch writes it when it names a device this machine has: ``cpu``,
    ``cuda``, ``cuda:K`` or ``mps``; a ``ValueError`` that says what is allowed otherwise."""
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise InputError(f"--device must be cpu, cuda, cuda:K or mps, got {spec!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise InputError(f"--device {spec}: no CUDA GPU is visible on this machine")
        if device.index is not None and device.index >= count:
            raise InputError(f"--device {spec}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"--device {spec}: MPS is not available on this machine")
    elif device.type != "cpu":
        raise InputError(f"--device must be cpu, cuda, cuda:K or mps, got {spec!r}")
    return str(device)
