"""A search run (`run_search`, what `deepblocks tune` calls), the tuners and the reporting."""

import contextlib
import io
import warnings

import keras

from keras_deepblocks.tuning import record
from keras_deepblocks.tuning.space import keras_tuner
from keras_deepblocks.utils import validation


class SearchFailedError(RuntimeError, ValueError):
    """A search that could not go on: KerasTuner's consecutive failed trials, or none finished.

    A `RuntimeError`, as KerasTuner raises, and a `ValueError`, the kind
    of error `deepblocks` prints as one line.
    """


TUNERS = {
    "random": keras_tuner.RandomSearch,
    "hyperband": keras_tuner.Hyperband,
    "bayesian": keras_tuner.BayesianOptimization,
}


def make_tuner(
    kind,
    hypermodel,
    max_trials=10,
    max_epochs=10,
    objective="val_accuracy",
    directory="tuning",
    project_name=None,
    overwrite=False,
    seed=0,
    progress=None,
):
    """A KerasTuner tuner of `kind` (`"random"`, `"hyperband"` or `"bayesian"`).

    `max_trials` bounds random and Bayesian search; Hyperband's budget is set
    by `max_epochs` (the most epochs one model trains) instead. `progress`, a
    callable such as `print`, receives one line per finished trial (see
    `trial_line`); KerasTuner's own report (`verbose=1` in `search`) takes
    about ten lines per trial.

    Note that with `overwrite=False` KerasTuner resumes any search it finds
    under `directory/project_name`, with that search's space and trials,
    whatever `hypermodel` asks for now: `run_search` records the settings
    there and refuses a mismatch.
    """
    validation.one_of(kind, "kind", tuple(TUNERS))
    common = dict(
        objective=objective,
        directory=directory,
        project_name=project_name or hypermodel.name,
        overwrite=overwrite,
        seed=seed,
    )
    if kind == "hyperband":
        tuner = keras_tuner.Hyperband(hypermodel, max_epochs=max_epochs, factor=3, **common)
    else:
        tuner = TUNERS[kind](hypermodel, max_trials=max_trials, **common)
    if progress is not None:
        end_trial = tuner.on_trial_end

        def on_trial_end(trial):
            end_trial(trial)  # scores the trial and saves the search
            progress(trial_line(tuner, tuner.oracle.get_trial(trial.trial_id)))

        tuner.on_trial_end = on_trial_end
    return tuner


def run_search(
    hypermodel,
    x,
    y=None,
    *,
    validation_data,
    tuner="random",
    max_trials=10,
    epochs=10,
    steps_per_epoch=None,
    batch_size=None,
    objective="val_accuracy",
    directory="tuning",
    project_name=None,
    overwrite=False,
    seed=0,
    settings=None,
    top=5,
    progress=print,
    verbose=0,
    overwrite_option="`overwrite=True`",
):
    """Runs (or resumes) a search in `directory/project_name`; returns its `top` best trials.

    The settings of the search are recorded next to its trials
    (`keras_deepblocks.tuning.record`). A later call with the same settings
    resumes the search (a larger `max_trials` extends it); other settings
    raise a `ValueError` before anything is touched, unless `overwrite`
    replaces the search. `settings` (a dict of JSON values) is what defines
    the search; it defaults to the hypermodel's name and search space, the
    tuner, the objective, `epochs`, `steps_per_epoch`, `batch_size` and
    `seed`. The data is not recorded: name it in `settings` if it may change.
    `overwrite_option` is how the refusal spells `overwrite`.

    `progress`, a callable such as `print` (or `None`), receives a line that
    says whether the search is new or resumed, then one line per finished
    trial (`trial_line`). `x`, `y`, `validation_data`, `epochs`,
    `steps_per_epoch`, `batch_size` and `verbose` go to `tuner.search` (as to
    `model.fit`); the other arguments to `make_tuner`. Returns `best_trials`.

    Raises a `SearchFailedError` when KerasTuner stops after consecutive
    failed trials, or when no trial finished.

    Example:

    ```python
    hypermodel = HighwayHyperModel((64,), 10, depth=(2, 10), depth_step=2)
    trials = run_search(hypermodel, x, y, validation_data=(x_val, y_val), max_trials=4)
    print(format_trials(trials))
    ```
    """
    validation.one_of(tuner, "tuner", tuple(TUNERS))
    project_name = project_name or hypermodel.name
    if not str(project_name).strip():
        raise ValueError(f"`project_name` must not be empty, received: {project_name!r}")
    if settings is None:
        settings = {
            "hypermodel": hypermodel.name,
            "tuner": tuner,
            "objective": objective,
            "epochs": epochs,
            "steps_per_epoch": steps_per_epoch,
            "batch_size": batch_size,
            "seed": seed,
            **search_space(hypermodel),
        }
    path = record.project_dir(directory, project_name)
    # Refused before KerasTuner reloads or deletes anything there.
    state = record.check(path, settings, overwrite=overwrite, option=overwrite_option)
    keras.utils.set_random_seed(seed)
    # KerasTuner prints "Reloading Tuner from ..." itself: the line below says more.
    with contextlib.redirect_stdout(io.StringIO()):
        search = make_tuner(
            tuner,
            hypermodel,
            max_trials=max_trials,
            max_epochs=epochs,
            objective=objective,
            directory=directory,
            project_name=project_name,
            overwrite=overwrite,
            seed=seed,
            progress=progress,
        )
    record.write(path, settings)
    planned = planned_trials(search)
    if progress is None:
        pass
    elif state == "resume":
        progress(
            f"resuming the search in {path} (same settings, {len(search.oracle.end_order)} of "
            f"{planned} trials done); {overwrite_option} starts a new one"
        )
    else:
        at_most = "at most " if tuner == "hyperband" else ""
        progress(
            f"new {tuner} search of {hypermodel.name} in {path}: "
            f"{_plural(planned, 'trial')} of {at_most}{_plural(epochs, 'epoch')}, "
            "one line per finished trial"
        )
    with warnings.catch_warnings():
        # Hyperband continues a trial from its saved model into a fresh one whose
        # optimizer is not built yet: the weights load, the optimizer state
        # restarts (as in any KerasTuner Hyperband search), and Keras warns each time.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        try:
            search.search(
                x,
                y,
                epochs=epochs,
                steps_per_epoch=steps_per_epoch,
                batch_size=batch_size,
                validation_data=validation_data,
                verbose=verbose,
            )
        except RuntimeError as error:
            # KerasTuner stops after consecutive failed trials, with a traceback
            # in the message: keep its first line and the error's last.
            lines = str(error).strip().splitlines()
            if not lines or not lines[0].startswith("Number of consecutive failures"):
                raise
            raise SearchFailedError(f"{lines[0]} The last error: {lines[-1]}") from None
    return best_trials(search, top)


def search_space(hypermodel):
    """`{"<name> (hyperparameter)": "Int(min_value=2, ...)"}`: the space `hypermodel` declares."""
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)  # as KerasTuner does to learn the space
    space = {}
    for parameter in hp.space:
        config = {k: v for k, v in parameter.get_config().items() if k not in ("name", "default")}
        if not config["conditions"]:
            del config["conditions"]
        shown = ", ".join(f"{key}={value}" for key, value in config.items())
        space[f"{parameter.name} (hyperparameter)"] = f"{type(parameter).__name__}({shown})"
    return space


def planned_trials(tuner):
    """How many trials the search runs at most: `max_trials`, or Hyperband's brackets."""
    oracle = tuner.oracle
    if oracle.max_trials:
        return oracle.max_trials
    if isinstance(oracle, keras_tuner.oracles.HyperbandOracle):
        # Bracket b has b + 1 rounds of successive halving (KerasTuner's sizes).
        brackets = oracle._get_num_brackets()
        per_iteration = sum(oracle._get_size(b, r) for b in range(brackets) for r in range(b + 1))
        return per_iteration * oracle.hyperband_iterations
    return None


def trial_line(tuner, trial):
    """`trial k of N: <hyperparameters> -> <objective> (best so far: ...)` for a finished trial."""
    oracle = tuner.oracle
    planned = planned_trials(tuner)
    values = dict(trial.hyperparameters.values)
    shown = [f"{n}={_format(v)}" for n, v in values.items() if not n.startswith("tuner/")]
    if "tuner/epochs" in values:  # Hyperband: trials train for different budgets
        shown.append(f"epochs={values['tuner/epochs']}")
    name = oracle.objective.name
    if trial.status == "COMPLETED" and trial.score is not None:
        result = f"{name} {_format(trial.score)}"
    else:
        lines = (trial.message or "").strip().splitlines()
        result = f"failed ({lines[-1] if lines else trial.status})"
    best = [t for t in oracle.get_best_trials(1) if t.status == "COMPLETED"]
    # No best yet while every trial so far failed.
    best_text = (
        f"{_format(best[0].score)}, trial {trial_number(best[0].trial_id)}" if best else "none"
    )
    of = f" of {planned}" if planned else ""
    return (
        f"trial {trial_number(trial.trial_id)}{of}: {', '.join(shown)} -> {result} "
        f"(best so far: {best_text})"
    )


def trial_number(trial_id):
    """Trials counted from 1: KerasTuner's id `"03"` (folder `trial_03`) is trial 4."""
    return int(trial_id) + 1 if str(trial_id).isdigit() else trial_id


def best_trials(tuner, count=5):
    """The `count` best finished trials: dicts of `trial_id`, `score` and `hyperparameters`.

    Raises a `SearchFailedError` (a `RuntimeError`) if no trial finished with a score (KerasTuner
    logs failed trials and goes on).
    """
    trials = [trial for trial in tuner.oracle.get_best_trials(count) if trial.score is not None]
    if not trials:
        raise SearchFailedError("No trial of the search finished; see the errors above.")
    return [
        {
            "trial_id": trial.trial_id,
            "score": trial.score,
            "hyperparameters": dict(trial.hyperparameters.values),
        }
        for trial in trials
    ]


def format_trials(trials, objective="val_accuracy"):
    """A text table of `best_trials` output, best first; trials counted from 1 (`trial_number`)."""
    names = sorted({name for trial in trials for name in trial["hyperparameters"]})
    names = [n for n in names if not n.startswith("tuner/")]
    header = ["rank", "trial", objective, *names]
    rows = [
        [str(rank), str(trial_number(trial["trial_id"])), _format(trial["score"])]
        + [_format(trial["hyperparameters"].get(n)) for n in names]
        for rank, trial in enumerate(trials, start=1)
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header, *rows]
    )


def _plural(count, noun):
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
