"""assistant/core/flags.py: each shared flag defined once, and honoured alike by the three command lines."""

from __future__ import annotations

import argparse

import pytest

import app
from assistant.cli import build_parser as assistant_parser
from assistant.core.flags import add_folder_flags, model_config_from_args, positive_int
from calibration.cli import build_parser as calibrate_parser

COMMANDS = {
    "calibrated-chat": lambda: app._parser().parse_args([]),
    "python -m assistant ask": lambda: assistant_parser().parse_args(["ask", "q"]),
    "calibrate collect": lambda: calibrate_parser().parse_args(["collect", "--data", "d.jsonl", "--out", "o.jsonl"]),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_its_prompt_from_the_environment(command, monkeypatch):
    monkeypatch.setenv("CALIBRATED_CHAT_PROMPT", "my_prompt")
    assert COMMANDS[command]().prompt == "my_prompt"
    monkeypatch.delenv("CALIBRATED_CHAT_PROMPT")
    assert COMMANDS[command]().prompt == "confidence_tags"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_the_same_model_and_folder_flags(command, tmp_path):
    args = COMMANDS[command]()
    assert {"model", "backend", "device", "dtype", "threads", "data_dir", "maps_dir"} <= set(vars(args))


def test_a_data_dir_also_holds_the_model_cache(tmp_path):
    args = calibrate_parser().parse_args(["--data-dir", str(tmp_path), "collect", "--data", "d", "--out", "o"])
    assert model_config_from_args(args).cache_dir == tmp_path / "cache"  # given before the command, kept


def test_positive_int_refuses_zero_and_words():
    assert positive_int("3") == 3
    for text in ("0", "-2", "three"):
        with pytest.raises(argparse.ArgumentTypeError):
            positive_int(text)


def test_folder_flags_on_a_subcommand_keep_a_value_given_before_it(tmp_path):
    parser = argparse.ArgumentParser()
    add_folder_flags(parser)
    sub = parser.add_subparsers(dest="command")
    add_folder_flags(sub.add_parser("list"), keep_earlier=True)
    assert parser.parse_args(["--data-dir", str(tmp_path), "list"]).data_dir == tmp_path
