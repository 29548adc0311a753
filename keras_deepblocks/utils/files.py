"""Writing files: checked before the work starts, written so that an interruption leaves nothing."""

import contextlib
import os
import shutil
import tempfile
import time
import uuid

# Temporary files of `atomic_path` are `.NAME.<random>.partial<suffix>` beside NAME.
PARTIAL = ".partial"


@contextlib.contextmanager
def atomic_path(target, suffix=None):
    """Yields a temporary path beside `target`; renames it to `target` on success.

    Whatever is written at the yielded path (by `open`, `np.savez`,
    `model.save`, a download) appears at `target` in one rename, or not at
    all: on any error (or Ctrl-C) the temporary file is removed and an
    existing `target` is left as it was. The folder of `target` is created.

    Args:
        target: Path of the file to write.
        suffix: Ending of the temporary name; defaults to the ending of
            `target` after its first dot (`model.keras` -> `.keras`), since
            some writers (Keras's `save`) check it.

    Example:

    ```python
    with atomic_path("weights.npz") as path:
        np.savez(path, **arrays)
    ```
    """
    target = os.fspath(target)
    directory = os.path.dirname(os.path.abspath(target))
    os.makedirs(directory, exist_ok=True)
    if suffix is None:
        name = os.path.basename(target)
        suffix = name[name.index(".") :] if "." in name.lstrip(".") else ""
    temporary = _create_partial(directory, os.path.basename(target), suffix)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def remove_stale_partials(target, older_than_seconds):
    """Removes what `atomic_path(target)` left behind in a process that was killed.

    Only temporary files (and folders, which earlier versions of the
    download helper made under the same names) older than
    `older_than_seconds` go: a younger one may belong to a running writer.
    """
    directory, name = os.path.split(os.path.abspath(os.fspath(target)))
    if not os.path.isdir(directory):
        return
    now = time.time()
    for entry in os.listdir(directory):
        if entry.startswith(f".{name}.") and PARTIAL in entry:
            path = os.path.join(directory, entry)
            with contextlib.suppress(OSError):
                if now - os.path.getmtime(path) > older_than_seconds:
                    if os.path.isdir(path):
                        shutil.rmtree(path)
                    else:
                        os.remove(path)


def _create_partial(directory, name, suffix):
    """Creates a new empty temporary file for `name` in `directory`; returns its path.

    Opened with mode 0666 so that the kernel applies the umask, as for any
    file a program writes (`tempfile.mkstemp` makes 0600 files, which hid
    saved models from other users).
    """
    while True:
        path = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:8]}{PARTIAL}{suffix}")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def check_output_file(path, name="output", suffixes=None):
    """Makes sure the file `path` can be written before any work starts, creating nothing.

    Raises:
        ValueError: `path` does not end in one of `suffixes` or is a folder.
        OSError: its folder cannot be created or written in.
    """
    path = os.fspath(path)
    if suffixes and not path.endswith(tuple(suffixes)):
        raise ValueError(f"`{name}` must end in {' or '.join(suffixes)}, received: {path!r}")
    if os.path.isdir(path):
        raise ValueError(f"`{name}` must be a file, not the folder {path!r}")
    check_output_directory(os.path.dirname(os.path.abspath(path)), name)


def check_output_directory(path, name="log_dir"):
    """Checks that the folder `path` exists or can be made, and can be written in.

    Nothing is created: a run that fails later for another reason (say, no
    data) leaves no empty folders behind.
    """
    path = os.fspath(path)
    existing = os.path.abspath(path)
    while not os.path.exists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise NotADirectoryError(f"`{name}`: cannot write in {path!r} ({existing!r} is a file)")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise OSError(f"`{name}`: cannot write in {path!r} ({existing!r}: {reason})") from error
