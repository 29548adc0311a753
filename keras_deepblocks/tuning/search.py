"""Tuner construction and reporting shared by `deepblocks tune` and the notebooks."""

from keras_deepblocks.utils import validation
from keras_deepblocks.tuning.space import keras_tuner

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
    whatever `hypermodel` asks for now: `deepblocks tune` records its
    settings there (`keras_deepblocks.tuning.record`) to refuse a mismatch.
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
    best_text = f"{_format(best[0].score)}, trial {trial_number(best[0].trial_id)}"
    of = f" of {planned}" if planned else ""
    return (
        f"trial {trial_number(trial.trial_id)}{of}: {', '.join(shown)} -> {result} "
        f"(best so far: {best_text if best else 'none'})"
    )


def trial_number(trial_id):
    """Trials counted from 1: KerasTuner's id `"03"` (folder `trial_03`) is trial 4."""
    return int(trial_id) + 1 if str(trial_id).isdigit() else trial_id


def best_trials(tuner, count=5):
    """The `count` best finished trials: dicts of `trial_id`, `score` and `hyperparameters`.

    Raises a `RuntimeError` if no trial finished with a score (KerasTuner
    logs failed trials and goes on).
    """
    trials = [trial for trial in tuner.oracle.get_best_trials(count) if trial.score is not None]
    if not trials:
        raise RuntimeError("No trial of the search finished; see the errors above.")
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


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)
