"""The settings of a search, recorded next to its trials, so a later run resumes only the same search.

KerasTuner reloads whatever search it finds under `directory/project_name`
(its `overwrite=False`), with that search's space and trials, whatever the new
tuner was asked for. `run_search` (and so `deepblocks tune`) writes the
settings (tuner, search space, data, objective, seed, ...) to `SETTINGS_FILE`
in the project folder and compares them on the next start: the same settings resume the search,
other settings are refused unless the caller overwrites it.

The check runs before any model or data is loaded, and without keras-tuner.
"""

import json
import os

from keras_deepblocks.utils.files import atomic_path

SETTINGS_FILE = "deepblocks_settings.json"
FORMAT = 1


def project_dir(directory, project_name):
    return os.path.join(os.fspath(directory), project_name)


def has_search(path):
    """Whether `path` holds a KerasTuner search that KerasTuner would reload.

    KerasTuner reloads when its tuner state file exists (written after each
    trial); without it, it starts a new search there.
    """
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID", "tuner0")
    return os.path.isfile(os.path.join(path, f"{tuner_id}.json"))


def check(path, settings, overwrite=False, option="--overwrite"):
    """`"new"` or `"resume"`: what a search with `settings` in `path` does.

    Raises a `ValueError` naming `option` when `path` holds a search with
    other settings, or a KerasTuner search without recorded settings (its
    settings are unknown, so resuming it could mix two searches), and when
    `overwrite` would delete a folder that holds no search.
    """
    settings = _normalized(settings)
    if overwrite:
        if os.path.isdir(path) and os.listdir(path) and not _looks_like_search(path):
            raise ValueError(
                f"{option} would delete {path}, which holds no KerasTuner search; "
                "choose another directory or project name."
            )
        return "new"
    if not has_search(path):
        return "new"
    recorded = read(path)
    if recorded is None:
        raise ValueError(
            f"{path} holds a KerasTuner search whose settings were not recorded by "
            f"keras-deepblocks (no readable {SETTINGS_FILE}), so it cannot be resumed safely; "
            f"pass {option} to replace it, or choose another directory or project name."
        )
    differences = [
        f"{key}: {_show(recorded.get(key))} there, {_show(settings.get(key))} now"
        for key in sorted(set(recorded) | set(settings))
        if recorded.get(key) != settings.get(key)
    ]
    if differences:
        # What to do first: a long message may be cut at the end.
        raise ValueError(
            f"{path} holds a search with other settings: pass {option} to replace it, or "
            f"choose another directory or project name ({'; '.join(differences)})."
        )
    return "resume"


def read(path):
    """The settings recorded in `path`, or `None` if there are none (or they are unreadable)."""
    try:
        with open(os.path.join(path, SETTINGS_FILE), encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        return None
    settings = record.get("settings")
    return settings if isinstance(settings, dict) else None


def write(path, settings):
    """Records `settings` in `path` (created if needed), atomically."""
    record = {"format": FORMAT, "settings": _normalized(settings)}
    with atomic_path(os.path.join(path, SETTINGS_FILE)) as temporary:
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(record, file, indent=1, sort_keys=True)


def _normalized(settings):
    # Compare what JSON keeps: tuples become lists, as in a file read back.
    return json.loads(json.dumps(settings))


def _looks_like_search(path):
    names = set(os.listdir(path))
    return bool(names & {"oracle.json", SETTINGS_FILE}) or any(
        name.startswith(("tuner", "trial_")) for name in names
    )


def _show(value):
    if value is None:
        return "unset"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)
