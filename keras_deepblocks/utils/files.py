"""Writing files: checked before the work starts, written so that an interruption leaves nothing."""

import contextlib
import os
import tempfile


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
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=f".partial{suffix}"
    )
    os.close(handle)
    # mkstemp makes the file 0600; give it the mode any new file gets under the umask.
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


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
