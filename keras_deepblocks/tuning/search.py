"""Tuner construction and reporting shared by `deepblocks tune` and the notebooks."""

import importlib.util

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
):
    """A KerasTuner tuner of `kind` (`"random"`, `"hyperband"` or `"bayesian"`).

    `max_trials` bounds random and Bayesian search; Hyperband's budget is set
    by `max_epochs` (the most epochs one model trains) instead.
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
    if importlib.util.find_spec("tensorboard") is None:
        # On the TensorFlow backend KerasTuner imports tensorboard in every
        # trial, only to label TensorBoard callbacks, and fails without it.
        # There is no TensorBoard callback to label then: skip that step.
        tuner._configure_tensorboard_dir = lambda callbacks, trial, execution=0: None
    return tuner


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
    """A text table of `best_trials` output, best first."""
    names = sorted({name for trial in trials for name in trial["hyperparameters"]})
    names = [n for n in names if not n.startswith("tuner/")]
    header = ["rank", "trial", objective, *names]
    rows = [
        [str(rank), trial["trial_id"], _format(trial["score"])]
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
