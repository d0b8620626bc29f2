"""assistant/core/files.py and jsonl.py: the one atomic writer, tried the ways a crash or a race would."""

from __future__ import annotations

import os
import threading

import pytest

from assistant.core import files
from assistant.core.files import atomic_write
from assistant.core.jsonl import read_jsonl, write_jsonl


def test_concurrent_writers_never_share_a_temp_file_and_the_file_is_one_of_theirs(tmp_path):
    path = tmp_path / "out.txt"
    texts = [f"writer {i}\n" * 2000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write, args=(text, path)) for text in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text() in texts  # whole, from one writer: never two interleaved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temp file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "maps.json"
    atomic_write("old\n", path)

    def pieces():
        yield "new, half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(pieces(), path)
    assert path.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["maps.json"]


def test_the_file_and_its_folder_are_synced(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(files.os, "fsync", lambda fd: synced.append(os.path.realpath(f"/proc/self/fd/{fd}"))
                        or real_fsync(fd))
    atomic_write("x", tmp_path / "a.txt")
    assert len(synced) == 2 and synced[1] == os.path.realpath(tmp_path)  # the temp file, then the folder


def test_no_overwrite_refuses_an_existing_file_and_mode_is_set_before_it_appears(tmp_path):
    path = tmp_path / "v0001.json"
    atomic_write("{}", path, overwrite=False, mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        atomic_write("{} again", path, overwrite=False)
    assert path.read_text() == "{}"


def test_a_folder_path_is_refused_naming_it(tmp_path):
    with pytest.raises(IsADirectoryError, match="pass a file path"):
        atomic_write("x", tmp_path)


def test_jsonl_round_trip_counts_what_it_wrote(tmp_path):
    rows = [{"id": str(i), "text": "é"} for i in range(5)]
    assert write_jsonl(iter(rows), tmp_path / "r.jsonl") == 5
    assert list(read_jsonl(tmp_path / "r.jsonl")) == rows


@pytest.fixture
def umask_022():
    """The usual umask, under which a plain mkdir gives 0755 and a plain open 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_every_folder_the_app_makes_is_0700_and_every_file_0600(tmp_path, umask_022):
    """Issue 25.11: the default data folder, maps/ and cache/ were made 0755 and HISTORY 0644."""
    tmp_path.chmod(0o755)
    made = files.private_folder(tmp_path / "a" / "b" / "c")
    assert [_mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", made)] == [0o700] * 3
    assert _mode(tmp_path) == 0o755  # a folder that was there keeps the mode its owner gave it
    atomic_write("x", tmp_path / "d" / "f.txt")
    assert (_mode(tmp_path / "d"), _mode(tmp_path / "d" / "f.txt")) == (0o700, 0o600)
    for line in ("one\n", "two\n"):
        with files.append_private(tmp_path / "e" / "HISTORY") as f:
            f.write(line)
    assert (tmp_path / "e" / "HISTORY").read_text() == "one\ntwo\n"
    assert (_mode(tmp_path / "e"), _mode(tmp_path / "e" / "HISTORY")) == (0o700, 0o600)
    write_jsonl([{"a": 1}], tmp_path / "runs" / "r.jsonl")
    assert _mode(tmp_path / "runs" / "r.jsonl") == 0o600


def test_a_new_data_folder_with_its_maps_cache_and_store_is_private(tmp_path, umask_022):
    """The data folder as the app first makes it (under a home folder that has none of it yet)."""
    from assistant.calibrated.mapstore import map_store
    from assistant.reviews.store import ReviewStore
    from tests.conftest import make_maps

    data = tmp_path / "home" / ".local" / "share" / "calibrated-chat"
    store = map_store(None, data)
    version = store.save_new(make_maps())  # numbered after the shipped versions
    store.activate(version)
    atomic_write("{}\n", data / "cache" / "llama-cpp-verdicts.json")  # what the llama.cpp self-test keeps
    ReviewStore(data).close()
    folders = [tmp_path / "home", data.parent, data, data / "maps", data / "cache"]
    assert {str(p.relative_to(tmp_path)): _mode(p) for p in folders} == {
        str(p.relative_to(tmp_path)): 0o700 for p in folders}
    made = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in made} >= {"HISTORY", f"{version}.json", "reviews.sqlite3", "llama-cpp-verdicts.json"}
    assert {p.name: _mode(p) for p in made} == {p.name: 0o600 for p in made}
