"""The hosted demo (docs/deployment.md): a Space keeps its data on persistent storage when it has some,
and says in the banner when it has none. /data itself is never touched: SPACE_STORAGE is moved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import app
from assistant.core import config
from assistant.core.config import default_data_dir, lost_on_restart, space_storage
from tests.conftest import ROOT, make_assistant


@pytest.fixture
def storage(tmp_path, monkeypatch) -> Path:
    """A stand-in for a Space's /data, present and writable."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setattr(config, "SPACE_STORAGE", folder)
    return folder


def test_a_space_with_persistent_storage_keeps_its_data_there(storage):
    env = {"SPACE_ID": "someone/calibrated-chat"}
    assert space_storage(env) == storage
    assert default_data_dir(env) == storage / "calibrated-chat"
    assert not lost_on_restart(default_data_dir(env), env)


def test_a_space_without_persistent_storage_keeps_the_user_data_folder_and_says_it_is_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SPACE_STORAGE", tmp_path / "absent")
    env = {"SPACE_ID": "someone/calibrated-chat"}
    assert space_storage(env) is None
    assert default_data_dir(env) == default_data_dir({})
    assert lost_on_restart(default_data_dir(env), env)


def test_an_explicit_data_folder_wins_and_is_lost_unless_it_is_on_the_storage(storage, tmp_path):
    space = {"SPACE_ID": "someone/calibrated-chat"}
    assert default_data_dir({**space, "CALIBRATED_CHAT_DATA_DIR": str(tmp_path / "mine")}) == tmp_path / "mine"
    assert lost_on_restart(tmp_path / "mine", space)
    assert not lost_on_restart(storage / "elsewhere", space)


def test_off_a_space_a_data_folder_at_the_storage_path_is_left_alone(storage, tmp_path):
    """A /data folder on a workstation or server may belong to something else; nothing is lost off a Space."""
    assert space_storage({}) is None
    assert default_data_dir({}) != storage / "calibrated-chat"
    assert not lost_on_restart(tmp_path / "anywhere", {})


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_read_only_storage_folder_is_not_used(storage):
    storage.chmod(0o555)
    try:
        assert space_storage({"SPACE_ID": "someone/calibrated-chat"}) is None
    finally:
        storage.chmod(0o755)


class _Served(Exception):
    """Raised instead of starting the server: carries the banner lines the app would show."""


def _banner_of_main(monkeypatch, argv: list[str]) -> list[str]:
    """app.main(argv)'s banner lines, with a scripted assistant and no server."""
    from assistant.answering.pipeline import Assistant
    from assistant.web import app as web_app

    monkeypatch.setattr(Assistant, "from_config", classmethod(lambda cls, *a, **k: make_assistant()))
    monkeypatch.setattr(web_app, "serve", lambda demo, ctx, **kw: (_ for _ in ()).throw(_Served(list(ctx.notices))))
    with pytest.raises(_Served) as served:
        app.main(argv)
    return served.value.args[0]


def test_the_banner_of_a_space_without_persistent_storage_says_reviews_are_lost(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "SPACE_STORAGE", tmp_path / "absent")
    monkeypatch.setenv("SPACE_ID", "someone/calibrated-chat")
    lines = _banner_of_main(monkeypatch, ["--data-dir", str(tmp_path / "ephemeral"), "--host", "0.0.0.0"])
    assert app.EPHEMERAL_SPACE in lines
    assert "reviews and conversations are lost when it restarts" in app.EPHEMERAL_SPACE
    assert "\n" not in app.EPHEMERAL_SPACE


def test_a_space_with_persistent_storage_stores_reviews_there_and_says_nothing(storage, monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/calibrated-chat")
    monkeypatch.delenv("CALIBRATED_CHAT_DATA_DIR")
    lines = _banner_of_main(monkeypatch, ["--host", "0.0.0.0"])
    assert app.EPHEMERAL_SPACE not in lines
    assert (storage / "calibrated-chat" / "reviews.sqlite3").is_file()


def test_off_a_space_the_banner_says_nothing_about_storage(tmp_path, monkeypatch):
    monkeypatch.delenv("SPACE_ID", raising=False)
    assert app.EPHEMERAL_SPACE not in _banner_of_main(monkeypatch, ["--data-dir", str(tmp_path / "d")])


# -- requirements.txt: the portable llama.cpp a Space builds (bench/space_check.py builds it for real) ------

def test_requirements_build_a_portable_llama_cpp_and_the_cpu_torch():
    from assistant.models import native
    from bench.space_check import llama_line

    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    line = llama_line(text)
    assert line.version == native.LLAMA_CPP_VERSION
    defined = dict(s.removeprefix("cmake.define.").split("=") for s in line.settings)
    # Every instruction-set option the local build decides is decided here too, none left to the build host.
    assert set(native._GGML_FEATURES) | set(native._ALWAYS_OFF) <= set(defined)
    on = {name for name, value in defined.items() if value == "ON"}
    assert on == {"GGML_SSE42", "GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C", "GGML_BMI2"}  # x86-64-v3
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text.splitlines()
    assert "torch==2.13.0" in text.splitlines()


def test_the_space_checks_wheel_is_keyed_by_the_llama_line():
    from bench.space_check import LlamaLine, llama_line, wheel_folder

    line = llama_line("x\nllama-cpp-python==0.3.36 \\\n  --config-settings=cmake.define.GGML_AVX2=ON  # avx2\n")
    assert line == LlamaLine("0.3.36", ("cmake.define.GGML_AVX2=ON",))
    others = [LlamaLine("0.3.36", ("cmake.define.GGML_AVX2=OFF",)), LlamaLine("0.3.37", line.settings)]
    assert len({wheel_folder(line), *map(wheel_folder, others)}) == 3
    assert wheel_folder(line) == wheel_folder(LlamaLine("0.3.36", ("cmake.define.GGML_AVX2=ON",)))


@pytest.mark.parametrize("text, message", [
    ("numpy\n", "no llama-cpp-python line"),
    ("llama-cpp-python>=0.3\n", "must pin llama-cpp-python with =="),
])
def test_the_space_check_says_what_is_wrong_with_the_requirements(text, message):
    from assistant.core.errors import InputError
    from bench.space_check import llama_line

    with pytest.raises(InputError, match=message):
        llama_line(text)
