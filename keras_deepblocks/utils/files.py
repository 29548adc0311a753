"""Writing files so that an interrupted write leaves nothing behind."""

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
    try:
        yield temporary
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
