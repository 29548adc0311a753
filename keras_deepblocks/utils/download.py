"""Files downloaded once into the Keras cache: verified, written atomically, one clear error.

`get_file(url, ...)` wraps `keras.utils.get_file` so that

- a cached copy is used only when it matches its SHA-256 (full, or the
  prefix a published file name carries); a damaged or empty one is removed
  and fetched again;
- the download is written through `keras_deepblocks.utils.files.atomic_path`
  (a temporary file beside its place in the cache, renamed once complete and
  verified): an interrupted or rejected download leaves nothing behind;
- failures raise `DownloadConnectionError` (a `ConnectionError`: no network,
  unknown host, missing file) or `DownloadHashError` (a `ValueError` too),
  with one message naming the URL, the cache path where the file can be put
  by hand, and the caller's hint (typically: pass a local path instead).
"""

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import urllib.parse

from keras_deepblocks.utils import files
from keras_deepblocks.utils.files import atomic_path

# A socket that receives nothing for this long fails the download instead of
# hanging (urllib's default is to wait forever).
TIMEOUT_SECONDS = 60
# A leftover partial download older than this belongs to a killed process.
STALE_SECONDS = 3600


class DownloadError(OSError):
    """A file could not be downloaded or verified."""


class DownloadConnectionError(DownloadError, ConnectionError):
    """The URL could not be fetched (no network, unknown host, missing file)."""


class DownloadHashError(DownloadError, ValueError):
    """The downloaded file does not match its expected SHA-256; it was deleted."""


def default_cache_dir():
    """`$KERAS_HOME` or `~/.keras`; like `get_file`, `/tmp/.keras` when not writable."""
    directory = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    with contextlib.suppress(OSError):
        os.makedirs(directory, exist_ok=True)
    if not os.access(directory, os.W_OK):
        directory = os.path.join(tempfile.gettempdir(), ".keras")
    return directory


def file_sha256(path):
    """The hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_matches(path, expected_sha256):
    """Whether `path` is a non-empty file whose SHA-256 starts with `expected_sha256`."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return False
    return expected_sha256 is None or file_sha256(path).startswith(expected_sha256.lower())


def get_file(
    url,
    fname=None,
    sha256=None,
    cache_subdir="models",
    cache_dir=None,
    description=None,
    local_hint=None,
):
    """The local path of `url`, downloaded once into `cache_dir/cache_subdir/fname`.

    Args:
        url: `https://`, `http://` or `file://` URL.
        fname: File name in the cache. Defaults to the URL's last component.
        sha256: Expected SHA-256 as hex: the full digest, or a prefix of at
            least 8 digits (published files often carry one in their name).
            `None` accepts any non-empty file.
        cache_subdir: Folder under `cache_dir`.
        cache_dir: Defaults to `default_cache_dir()` (`$KERAS_HOME` or `~/.keras`).
        description: What the file is, for messages (default: its name).
        local_hint: What a user without network access can do instead, for
            messages, e.g. "pass `weights='/path/to/FILE'`".

    Returns:
        The path of the verified file.

    Raises:
        DownloadConnectionError: the URL could not be fetched.
        DownloadHashError: the download does not match `sha256` (deleted).
        DownloadError: the file could not be written into the cache.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"`url` must be a URL such as 'https://...', received: {url!r}.")
    if sha256 is not None and not (
        isinstance(sha256, str) and re.fullmatch(r"[0-9a-fA-F]{8,64}", sha256)
    ):
        raise ValueError(
            "`sha256` must be None or a SHA-256 digest (or its first 8 or more hex digits), "
            f"received: {sha256!r}."
        )
    fname = fname or os.path.basename(urllib.parse.urlsplit(url).path)
    if not fname or os.sep in fname or fname.startswith("."):
        raise ValueError(f"`fname` must be a plain file name, received: {fname!r} (url {url!r}).")
    directory = os.path.join(cache_dir or default_cache_dir(), cache_subdir)
    target = os.path.join(directory, fname)
    description = description or fname
    removed = ""
    if os.path.exists(target):
        if file_matches(target, sha256):
            return target
        # Damaged, empty or from an interrupted copy by hand: fetch it again.
        _remove(target)
        removed = f" (the cached copy {target} did not match its SHA-256 and was removed)"
    try:
        os.makedirs(directory, exist_ok=True)
        files.remove_stale_partials(target, STALE_SECONDS)
        with atomic_path(target) as partial:
            _fetch(url, partial, description, target, local_hint, removed)
            if not file_matches(partial, sha256):
                digest = file_sha256(partial)
                expected = f"{sha256}..." if sha256 and len(sha256) < 64 else sha256
                raise DownloadHashError(
                    f"{url} downloaded with SHA-256 hash {digest}, not the expected "
                    f"{expected or 'non-empty file'}: the file was deleted. The download was "
                    "damaged or the file changed on the server; try again, or get the file "
                    f"another way and put it at {target}"
                    + (f", or {local_hint}" if local_hint else "")
                    + "."
                )
    except DownloadError:
        raise
    except OSError as error:
        # The cache folder cannot be written (`atomic_path` creates it and its file).
        raise DownloadError(
            f"Could not download {description}: the cache folder {directory} is not "
            f"writable ({error}). Set KERAS_HOME to a writable folder"
            + (f", or {local_hint}" if local_hint else "")
            + "."
        ) from error
    return target


def _fetch(url, partial, description, target, local_hint, removed):
    """Downloads `url` into the (existing, empty) file `partial` with `keras.utils.get_file`."""
    import keras

    try:
        with _socket_timeout(TIMEOUT_SECONDS):
            keras.utils.get_file(
                os.path.basename(partial),
                url,
                cache_dir=os.path.dirname(partial),
                cache_subdir="",
                force_download=True,  # `partial` exists: `atomic_path` created it
            )
    except KeyboardInterrupt:
        raise
    except Exception as error:  # get_file raises a bare Exception for URL errors
        reason = str(error) or type(error).__name__
        # get_file's "URL fetch failure on URL: ERRNO -- REASON": keep REASON.
        reason = reason.removeprefix(f"URL fetch failure on {url}: ").removeprefix("None -- ")
        if isinstance(error, OSError) and not isinstance(error, (ConnectionError, TimeoutError)):
            # Not a network failure: the cache could not be written.
            raise DownloadError(
                f"Could not download {description} from {url} into {target}: {reason}."
            ) from error
        raise DownloadConnectionError(
            f"Could not download {description} from {url}{removed}: {reason}. Without network "
            f"access, download the file on another machine and put it at {target}"
            + (f", or {local_hint}" if local_hint else "")
            + "."
        ) from None


@contextlib.contextmanager
def _socket_timeout(seconds):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
