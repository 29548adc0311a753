"""The download helper on local files, through file:// URLs (which keras.utils.get_file fetches)."""

import hashlib
import os
import time

import keras
import pytest

from keras_deepblocks.utils import download


def serve(tmp_path, content=b"weights " * 1000, name="weights-file.bin"):
    server = tmp_path / "server"
    server.mkdir(exist_ok=True)
    (server / name).write_bytes(content)
    return (server / name).as_uri(), hashlib.sha256(content).hexdigest()


def listing(folder):
    """Every file and folder under `folder`, hidden ones included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_downloads_verify_full_or_prefix_hash_and_are_reused(tmp_path):
    url, digest = serve(tmp_path)
    cache = tmp_path / "cache"
    for subdir, expected in (("full", digest), ("prefix", digest[:8].upper()), ("none", None)):
        path = download.get_file(url, sha256=expected, cache_subdir=subdir, cache_dir=str(cache))
        assert path == str(cache / subdir / "weights-file.bin")
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == digest
    names = ("", "/weights-file.bin")
    assert listing(cache) == [f"{d}{n}" for d in ("full", "none", "prefix") for n in names]
    os.remove(tmp_path / "server" / "weights-file.bin")  # offline now: the cache serves
    assert download.get_file(url, sha256=digest, cache_subdir="full", cache_dir=str(cache))


@pytest.mark.parametrize("expected", ["0" * 64, "deadbeef"])
def test_a_download_that_fails_its_hash_leaves_nothing(tmp_path, expected):
    url, digest = serve(tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(download.DownloadHashError) as info:
        download.get_file(url, sha256=expected, cache_dir=str(cache))
    assert isinstance(info.value, ValueError) and isinstance(info.value, OSError)
    message = str(info.value)
    assert url in message and digest in message and "was deleted" in message
    assert str(cache / "models" / "weights-file.bin") in message  # where to put it by hand
    assert listing(cache) == ["models"]


def test_an_unreachable_url_is_one_clear_connection_error(tmp_path):
    cache = tmp_path / "cache"
    for url in ((tmp_path / "nowhere" / "weights-file.bin").as_uri(), "http://127.0.0.1:9/w.bin"):
        start = time.monotonic()
        with pytest.raises(ConnectionError) as info:
            download.get_file(
                url,
                "weights-file.bin",
                cache_dir=str(cache),
                description="the test weights",
                local_hint="pass `weights='/path/to/weights-file.bin'`",
            )
        assert time.monotonic() - start < 10
        message = str(info.value)
        assert message.startswith(f"Could not download the test weights from {url}")
        assert f"put it at {cache / 'models' / 'weights-file.bin'}" in message
        assert message.endswith("or pass `weights='/path/to/weights-file.bin'`.")
        assert "URL fetch failure" not in message  # get_file's wording, said once
    assert listing(cache) == ["models"]


def test_a_damaged_cached_copy_is_fetched_again(tmp_path):
    url, digest = serve(tmp_path)
    cache = tmp_path / "cache"
    target = cache / "models" / "weights-file.bin"
    target.parent.mkdir(parents=True)
    for damaged, expected in ((b"", None), (b"", digest[:8]), (b"half a file", digest)):
        target.write_bytes(damaged)
        assert download.get_file(url, sha256=expected, cache_dir=str(cache)) == str(target)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    target.write_bytes(b"half a file")
    os.remove(tmp_path / "server" / "weights-file.bin")
    with pytest.raises(ConnectionError, match=f"cached copy {target} did not match .* removed"):
        download.get_file(url, sha256=digest, cache_dir=str(cache))
    assert listing(cache) == ["models"]


def test_an_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    url, _ = serve(tmp_path)
    cache = tmp_path / "cache"

    def interrupted(fname, origin, cache_dir, cache_subdir, force_download):
        with open(os.path.join(cache_dir, cache_subdir, fname), "wb") as file:
            file.write(b"the first bytes")
        raise KeyboardInterrupt

    monkeypatch.setattr(keras.utils, "get_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        download.get_file(url, cache_dir=str(cache))
    assert listing(cache) == ["models"]


def test_stale_partial_downloads_are_removed(tmp_path):
    url, _ = serve(tmp_path)
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    # What `atomic_path` leaves when its process is killed, and an older version's folder.
    stale_file = models / ".weights-file.bin.abc123.partial.bin"
    stale_folder = models / ".weights-file.bin.old.partial"
    fresh = models / ".weights-file.bin.new123.partial.bin"
    other = models / ".other.bin.abc123.partial.bin"
    stale_folder.mkdir()
    (stale_folder / "weights-file.bin").write_bytes(b"partial")
    for path in (stale_file, fresh, other):
        path.write_bytes(b"partial")
    for path in (stale_file, stale_folder, other):
        os.utime(path, (time.time() - 2 * download.STALE_SECONDS,) * 2)
    download.get_file(url, cache_dir=str(tmp_path / "cache"))
    assert listing(models) == sorted([fresh.name, other.name, "weights-file.bin"])


def test_the_download_is_written_through_atomic_path(tmp_path, monkeypatch):
    """The one atomic write: while the file downloads, only a hidden partial file exists."""
    url, digest = serve(tmp_path)
    cache = tmp_path / "cache"
    seen = []
    real_get_file = keras.utils.get_file

    def watching_get_file(fname, origin, **kwargs):
        seen.extend((p.name, p.is_file()) for p in (cache / "models").iterdir())
        return real_get_file(fname, origin, **kwargs)

    monkeypatch.setattr(keras.utils, "get_file", watching_get_file)
    path = download.get_file(url, sha256=digest, cache_dir=str(cache))
    ((partial, is_file),) = seen  # a file beside the target, not a staging folder
    assert partial.startswith(".weights-file.bin.") and ".partial" in partial and is_file
    assert listing(cache / "models") == ["weights-file.bin"] and path.endswith("weights-file.bin")


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="`url` must be a URL"):
        download.get_file("weights.bin", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="`sha256` must be"):
        download.get_file("https://example.com/w.bin", sha256="xyz", cache_dir=str(tmp_path))
    with pytest.raises(ValueError, match="`fname` must be"):
        download.get_file("https://example.com/", cache_dir=str(tmp_path))
