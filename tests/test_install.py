"""Installed as a package, not run from the checkout: the wheel works from any folder and writes
nothing next to its own files (maps, runs, the review store and caches go to the data folder)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "artifacts",
                                     "build", "dist", "*.egg-info", ".cache")


def _ignore(folder, names):
    """What is not source: build and test leftovers anywhere, and a checkout's own /data and /runs."""
    top = {"data", "runs"} if Path(folder) == ROOT else set()
    return set(_NOT_SOURCE(folder, names)) | (top & set(names))


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _run(command, *, env, cwd, timeout=600):
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The project's wheel, built from a copy of the source and installed with --no-deps into a target folder."""
    tmp = tmp_path_factory.mktemp("install")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=_ignore)
    wheels = tmp / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("calibrated_chat-*.whl")
    target = tmp / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=600)
    return target


@pytest.mark.slow
def test_the_wheel_runs_from_another_folder_and_writes_nothing_into_the_package(installed, tmp_path):
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(installed), "PYTHONDONTWRITEBYTECODE": "1",
           "CALIBRATED_CHAT_DATA_DIR": str(data)}
    before = _snapshot(installed)

    where = _run([sys.executable, "-c", "import app, assistant, calibration, prompts; "
                  "print(app.__file__, assistant.__file__, calibration.__file__, prompts.__file__)"],
                 env=env, cwd=work)
    assert all(Path(p).is_relative_to(installed) for p in where.split()), where

    calibrate = str(installed / "bin" / "calibrate")
    versions = sorted(p.stem for p in (installed / "assistant" / "data" / "maps").glob("v*.json"))
    active = (installed / "assistant" / "data" / "maps" / "ACTIVE").read_text().strip()
    listing = _run([calibrate, "maps", "list"], env=env, cwd=work)
    assert [line[2:7] for line in listing.splitlines()] == versions  # the shipped versions, read-only
    assert f"* {active}" in listing and "SmolLM2-135M-Instruct.Q4_1" in listing

    records = tmp_path / "records.jsonl"
    shipped = installed / "calibration" / "records"
    lines = [line for name in ("math", "factual", "science", "reasoning")
             for line in (shipped / f"{name}.jsonl").read_text().splitlines()[:60]]
    records.write_text("\n".join(lines) + "\n")
    fitted = _run([calibrate, "fit", "--records", str(records)], env=env, cwd=work)
    mine = f"v{int(versions[-1][1:]) + 1:04d}"  # numbered after the shipped ones
    assert f"saved as {mine} in {data / 'maps'}" in fitted
    listing = _run([calibrate, "maps", "list"], env=env, cwd=work)
    assert f"* {active}" in listing and f"  {mine}" in listing

    reply = json.loads(_run([sys.executable, "-m", "assistant", "ask", "What is 12 times 11?", "--json",
                             "--max-new-tokens", "48"], env=env, cwd=work))
    assert reply["model"] == "SmolLM2-135M-Instruct.Q4_1" and reply["map_version"] == active
    assert reply["tokens"] > 0

    port = free_port()
    app = subprocess.Popen([str(installed / "bin" / "calibrated-chat"), "--port", str(port)], env=env, cwd=work,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        import httpx

        deadline, page = time.monotonic() + 240, None
        while time.monotonic() < deadline and app.poll() is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert page is not None and page.status_code == 200, app.stdout.read() if app.poll() is not None else ""
        assert "calibrated-chat" in page.text
    finally:
        app.terminate()
        app.wait(timeout=30)

    assert _snapshot(installed) == before, "something was written inside the installed package"
    assert list(work.iterdir()) == [], "something was written into the working folder"
    assert (data / "maps" / f"{mine}.json").is_file() and (data / "reviews.sqlite3").exists()
    fit = json.loads((data / "maps" / f"{mine}.json").read_text())
    assert fit["version"] == mine


def test_the_package_builds_with_every_data_folder_and_no_setuptools_warning_about_it(tmp_path):
    """Issue 25.11: `make install` printed about 120 "Package 'assistant.data' is absent from the `packages`
    configuration" warnings, one per data folder and build step."""
    import zipfile

    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=_ignore)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(tmp_path / "wheels"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr
    assert "is absent from the `packages` configuration" not in built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheels").glob("calibrated_chat-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = ["assistant/data/router.json", "assistant/data/maps/ACTIVE", "assistant/data/maps/HISTORY",
               "assistant/data/maps/v0003.json", "calibration/records/math.jsonl", "prompts/confidence_tags.toml"]
    assert [name for name in shipped if name not in names] == []
