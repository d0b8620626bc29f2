"""The `calibrate` admin CLI, run as `python -m calibration` subprocesses.

Fast tests use records synthesised here (no model): make-data, fit, report --json,
maps list/show/activate/rollback, and the one-line errors with exit status 2.
Slow tests run the real default model: the whole make-data → collect → fit →
report --plots → maps activate chain, and the fault tests that SIGKILL `collect`,
`fit` and `maps activate` at several points and check nothing is lost or corrupt.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assistant.calibrated.mapstore import MapStore
from calibration.fitting.fit import file_sha256
from calibration.measuring.report import METRIC_KEYS
from tests.conftest import ROOT

SECTION_KEYS = {"n", "n_stated", "accuracy_all", "raw", "calibrated", "threshold", "coverage",
                "n_calibrated", "no_confidence_rate", "signal_auroc",
                "selective_accuracy"}
SUBCOMMANDS = ["data", "make-data", "collect", "fit", "report", "compare", "eval", "maps", "maps list", "maps show",
               "maps activate", "maps rollback", "reviews", "reviews export", "records", "records strip",
               "records rebuild"]


def env(tmp_path: Path) -> dict:
    """A child environment that can import the project and never touches the shipped maps."""
    e = dict(os.environ, PYTHONPATH=str(ROOT), CALIBRATED_CHAT_MAPS_DIR=str(tmp_path / "default-maps"))
    e["CALIBRATED_CHAT_THREADS"] = "1"  # llama.cpp with 2 threads crawls when other jobs share the CPU
    return e


def calibrate(tmp_path: Path, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "calibration", *map(str, args)], cwd=tmp_path,
                          env=env(tmp_path), capture_output=True, text=True, timeout=timeout, check=False)


def start(tmp_path: Path, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "calibration", *map(str, args)], cwd=tmp_path,
                            env=env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def synth_records(path: Path, *, n: int = 60, model: str = "synth-model", prompt: str = "confidence_tags",
                  prefix: str = "s", seed: int = 0) -> Path:
    """n records per domain from an overconfident model: correct with probability 0.7 × its confidence."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for domain in ("math", "factual", "science", "reasoning"):
            for i in range(n):
                p = rng.choice([0.2, 0.4, 0.6, 0.8, 0.9, 1.0])
                record = {"id": f"{prefix}-{domain}-{i}", "domain": domain, "question": f"q{i}", "gold": "1",
                          "answer": "1", "raw_confidence": p, "correct": rng.random() < 0.7 * p, "parse_ok": True,
                          "model": model, "prompt": prompt, "tokens": 5, "seconds": 0.1}
                f.write(json.dumps(record) + "\n")
    return path


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# -- fast: no model ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_command_help_shows_an_example(command, capsys):
    from calibration.cli import main

    with pytest.raises(SystemExit) as done:
        main([*command.split(), "--help"])
    assert done.value.code == 0
    help_text = capsys.readouterr().out
    assert "examples:\n  calibrate " + command.split()[0] in help_text


def test_top_level_help_lists_every_command(capsys):
    from calibration.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--help"])  # crashed on the "95%" in compare's help before it was escaped
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "with 95% intervals" in out and all(c in out for c in SUBCOMMANDS if " " not in c)


def test_make_data_writes_valid_reproducible_items(tmp_path):
    from calibration.labelling.items import validate_item

    for name in ("a.jsonl", "b.jsonl"):
        result = calibrate(tmp_path, "make-data", "--domain", "science", "--n", "12", "--seed", "3", "--out", name)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"wrote 12 science questions to {name}"
    items = read_lines(tmp_path / "a.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert len(items) == 12 and len({i["id"] for i in items}) == 12
    for lineno, item in enumerate(items, 1):
        validate_item(item, "a.jsonl", lineno)
        assert item["domain"] == "science"


def test_fit_report_and_map_versions(tmp_path):
    maps = tmp_path / "maps"
    records = synth_records(tmp_path / "records.jsonl")
    fit = calibrate(tmp_path, "fit", "--records", records, "--maps-dir", maps, "--holdout", "0")
    assert fit.returncode == 0, fit.stderr
    assert "saved as v0001" in fit.stdout and "calibrate maps activate v0001" in fit.stdout
    for domain in ("math", "factual", "science", "reasoning", "general"):
        assert f"\n{domain} " in fit.stdout
    # --maps-dir also works before the command; --activate makes the new version live
    # the synthetic questions ("q7") say nothing about being right: without their features, as fitted
    fit2 = calibrate(tmp_path, "--maps-dir", maps, "fit", "--records", records, "--target-risk", "0.5",
                     "--activate", "--out", "copy.json", "--holdout", "0", "--no-question-features")
    assert fit2.returncode == 0, fit2.stderr
    assert "saved as v0002" in fit2.stdout and "activated v0002" in fit2.stdout
    store = MapStore(maps)
    assert store.active().version == "v0002" and json.loads((tmp_path / "copy.json").read_text())["version"] == "v0002"
    assert store.load("v0001").maps["math"].threshold == 1.0  # target risk 0.1 is out of reach: flag everything
    assert store.load("v0002").maps["general"].threshold < 1.0
    # the map names its records file relative to where it was fitted, never by this machine's absolute path
    assert store.load("v0002").source[0] == {"path": "records.jsonl", "sha256": file_sha256(records)}

    listing = calibrate(tmp_path, "maps", "list", "--maps-dir", maps)
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].startswith("  v0001 ") and lines[1].startswith("* v0002 ") and "n=240" in lines[1]
    assert "model=synth-model" in lines[0]

    for version, expected in (("v0001", "v0001"), ("v0002", "v0002")):
        act = calibrate(tmp_path, "maps", "activate", version, "--maps-dir", maps)
        assert (act.returncode, act.stdout.strip()) == (0, f"{PAIR} is now {expected}")
    assert calibrate(tmp_path, "maps", "rollback", "--maps-dir", maps).stdout.strip() == f"{PAIR} is now v0001"
    assert store.active_version() == "v0001"

    show = calibrate(tmp_path, "maps", "show", "v0002", "--json", "--maps-dir", maps)
    assert json.loads(show.stdout)["maps"]["general"]["n_samples"] == 240
    assert "synth-model / confidence_tags  v0002" in calibrate(tmp_path, "maps", "show", "v0002",
                                                               "--maps-dir", maps).stdout


PAIR = "active map for model synth-model / prompt confidence_tags"


def check_report_shape(report: dict, domains: list[str]) -> None:
    assert set(report) == {"domains", "overall", "signals", "source", "target_risk", "baseline"}
    assert list(report["domains"]) == domains
    base = report["baseline"]  # the stated-only pipeline, beside every fused report
    assert set(base) == {"domains", "overall", "signals", "source", "target_risk"} and base["signals"] == "stated"
    assert list(base["domains"]) == domains
    for section in [*report["domains"].values(), report["overall"], *base["domains"].values(), base["overall"]]:
        assert set(section) == SECTION_KEYS
        assert set(section["raw"]) == set(section["calibrated"]) == set(METRIC_KEYS)
        assert set(METRIC_KEYS) == {"accuracy", "ece", "ace", "mce", "brier", "auroc", "aurc", "overconfidence",
                                    "parse_failure_rate", "not_attempted_rate"}
        for block in (section["raw"], section["calibrated"]):
            assert all(v is None or isinstance(v, float) for v in block.values())
            assert 0.0 <= block["ece"] <= 1.0 and 0.0 <= block["brier"] <= 1.0
    assert report["overall"]["n"] == sum(s["n"] for s in report["domains"].values())
    assert report["overall"]["threshold"] is None


def test_report_json_held_out_and_cross_validated(tmp_path):
    maps = tmp_path / "maps"
    train = synth_records(tmp_path / "train.jsonl")
    held = synth_records(tmp_path / "held.jsonl", n=40, prefix="h", seed=1)
    assert calibrate(tmp_path, "fit", "--records", train, "--maps-dir", maps).returncode == 0

    out = calibrate(tmp_path, "report", "--records", held, "--maps", "v0001", "--json", "--maps-dir", maps)
    assert out.returncode == 0 and "figures are 5-fold cross-validated" not in out.stderr
    assert "note: baseline: stated-only, cross-validated on these records" in out.stderr
    report = json.loads(out.stdout)
    check_report_shape(report, ["math", "factual", "science", "reasoning"])
    assert (report["source"], report["baseline"]["source"]) == (
        "maps v0001", "stated-only, 5-fold cross-validated on these records")
    assert report["domains"]["math"]["n"] == 40 and report["overall"]["n"] == 160
    # the synthetic model says p but is right 0.7 p of the time: raw overconfidence ≈ 0.3 × mean p
    assert report["overall"]["raw"]["overconfidence"] > 0.1
    assert report["overall"]["calibrated"]["ece"] < report["overall"]["raw"]["ece"]
    assert report["domains"]["math"]["threshold"] == MapStore(maps).load("v0001").maps["math"].threshold

    # the maps were fitted on train.jsonl, so reporting on it must not be in-sample
    same = calibrate(tmp_path, "report", "--records", train, "--maps", "v0001", "--json", "--maps-dir", maps)
    assert same.returncode == 0 and "cross-validated" in same.stderr
    check_report_shape(json.loads(same.stdout), ["math", "factual", "science", "reasoning"])

    table = calibrate(tmp_path, "report", "--records", held, "--maps", "v0001", "--maps-dir", maps,
                      "--plots", "plots")
    assert table.returncode == 0 and table.stdout.splitlines()[-1].startswith("overall ")
    assert sorted(p.name for p in (tmp_path / "plots").glob("*.png")) == sorted(
        f"{kind}_{d}.png" for kind in ("reliability", "risk_coverage")
        for d in ("math", "factual", "science", "reasoning", "overall"))


def test_report_shows_fixed_stated_only_baseline_maps_beside_the_fused_ones(tmp_path):
    maps = tmp_path / "maps"
    train = synth_records(tmp_path / "train.jsonl")
    held = synth_records(tmp_path / "held.jsonl", n=40, prefix="h", seed=1)
    assert calibrate(tmp_path, "fit", "--records", train, "--maps-dir", maps).returncode == 0  # v0001 fused
    assert calibrate(tmp_path, "fit", "--records", train, "--maps-dir", maps, "--signals", "stated").returncode == 0

    out = calibrate(tmp_path, "report", "--records", held, "--maps", "v0001", "--baseline-maps", "v0002", "--json",
                    "--maps-dir", maps)
    assert out.returncode == 0 and "note" not in out.stderr, out.stderr
    report = json.loads(out.stdout)
    check_report_shape(report, ["math", "factual", "science", "reasoning"])
    assert (report["signals"], report["source"], report["baseline"]["source"]) == ("fused", "maps v0001", "maps v0002")
    alone = json.loads(calibrate(tmp_path, "report", "--records", held, "--maps", "v0002", "--json",
                                 "--maps-dir", maps).stdout)
    assert alone["baseline"] is None and report["baseline"]["domains"] == alone["domains"]

    table = calibrate(tmp_path, "report", "--records", held, "--maps", "v0001", "--baseline-maps", "v0002",
                      "--maps-dir", maps)
    assert "baseline: maps v0002; fused: maps v0001" in table.stdout
    # maps fitted on the records: both pipelines are cross-validated on them, in the same folds
    same = calibrate(tmp_path, "report", "--records", train, "--maps", "v0001", "--baseline-maps", "v0002",
                     "--json", "--maps-dir", maps)
    assert "baseline v0002 was fitted on these records" in same.stderr
    assert json.loads(same.stdout)["baseline"]["source"] == "stated-only, 5-fold cross-validated on these records"
    fused = calibrate(tmp_path, "report", "--records", held, "--maps", "v0002", "--baseline-maps", "v0001",
                      "--maps-dir", maps)
    assert_one_line_error(fused, "--baseline-maps v0001 reads fused signals")


def test_on_error_skip_skips_a_malformed_records_line(tmp_path):
    records = synth_records(tmp_path / "records.jsonl")
    lines = records.read_text().splitlines()
    lines.insert(6, '{"id": "broken", "domain": ')
    records.write_text("\n".join(lines) + "\n")
    stop = calibrate(tmp_path, "fit", "--records", records, "--maps-dir", "maps")
    assert_one_line_error(stop, "records.jsonl:7: malformed JSON line")
    skip = calibrate(tmp_path, "fit", "--records", records, "--maps-dir", "maps", "--on-error", "skip")
    assert skip.returncode == 0 and "saved as v0001" in skip.stdout
    assert "records.jsonl:7" in skip.stderr  # the skipped line is still reported (as a warning)


def write_data_files(tmp_path: Path) -> None:
    good = {"id": "g1", "domain": "math", "question": "What is 2 + 2?", "answer": "4", "aliases": [],
            "answer_type": "number"}
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "maps-folder").mkdir()
    (tmp_path / "malformed.jsonl").write_text(json.dumps(good) + "\n\n{not json\n")
    (tmp_path / "baddomain.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "id": "g2",
                                                                                    "domain": "history"}) + "\n")
    synth_records(tmp_path / "a.jsonl", n=40)
    synth_records(tmp_path / "b.jsonl", n=40, prompt="self_reflection", prefix="b")
    synth_records(tmp_path / "few.jsonl", n=3)
    (tmp_path / "nofields.jsonl").write_text(json.dumps({"id": "x", "domain": "math"}) + "\n")


# argv -> fragments the one error line must contain (every case: exit status 2, no traceback)
ERRORS = [
    (["make-data", "--domain", "history", "--n", "5", "--out", "x.jsonl"], ["unknown domain 'history'", "math"]),
    (["make-data", "--domain", "math", "--n", "0", "--out", "x.jsonl"], ["--n", "at least 1"]),
    (["make-data", "--domain", "factual", "--n", "100000", "--out", "x.jsonl"], ["at most"]),
    (["make-data", "--domain", "math", "--n", "3", "--out", "maps-folder"], ["maps-folder: is a folder; pass a file"]),
    (["collect", "--data", "missing.jsonl", "--out", "r.jsonl"], ["missing.jsonl: no such file"]),
    (["collect", "--data", "empty.jsonl", "--out", "r.jsonl"], ["no questions in empty.jsonl"]),
    (["collect", "--data", "malformed.jsonl", "--out", "r.jsonl"], ["malformed.jsonl:3: malformed JSON line"]),
    (["collect", "--data", "baddomain.jsonl", "--out", "r.jsonl"], ["baddomain.jsonl:2", "'domain'", "history"]),
    (["collect", "--data", "empty.jsonl", "--out", "r.jsonl", "--batch-size", "0"], ["--batch-size"]),
    (["fit", "--records", "a.jsonl", "b.jsonl"], ["records mix 2 (model, prompt) pairs", "--keep-prompt"]),
    (["fit", "--records", "missing.jsonl"], ["missing.jsonl: no such file"]),
    (["fit", "--records", "empty.jsonl"], ["no usable records in empty.jsonl"]),
    (["fit", "--records", "few.jsonl"], ["only 12 records", "at least 30"]),
    (["fit", "--records", "nofields.jsonl"], ["lacks field(s) raw_confidence, correct, model, prompt"]),
    (["report", "--records", "a.jsonl", "--maps", "v0007"], ["no map version v0007"]),
    (["report", "--records", "a.jsonl", "--maps", "nothere.json"], ["nothere.json"]),
    (["eval", "--data", "empty.jsonl"], ["no active map version", "calibrate fit"]),
    (["maps", "activate", "v12"], ["invalid map version 'v12'"]),
    (["maps", "activate", "v0003"], ["no map version v0003"]),
    (["maps", "rollback"], ["no earlier active version"]),
    (["maps", "show", "v0001"], ["no map version v0001"]),
    (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    (["fit"], ["--records"]),
]


@pytest.mark.parametrize("argv, fragments", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_bad_input_gives_one_line_and_status_2(tmp_path, argv, fragments):
    write_data_files(tmp_path)
    result = calibrate(tmp_path, *argv)
    assert "Traceback" not in result.stderr
    assert_one_line_error(result, *fragments)


def test_fit_keeps_the_chosen_pair_and_report_refuses_other_maps(tmp_path):
    write_data_files(tmp_path)
    fit = calibrate(tmp_path, "fit", "--holdout", "0", "--records", "a.jsonl", "b.jsonl", "--keep-prompt",
                    "self_reflection", "--maps-dir", "maps")
    assert fit.returncode == 0, fit.stderr
    maps = MapStore(tmp_path / "maps").load("v0001")
    assert (maps.prompt, maps.maps["general"].n_samples) == ("self_reflection", 160)
    report = calibrate(tmp_path, "report", "--records", "a.jsonl", "--maps", "v0001", "--maps-dir", "maps")
    assert_one_line_error(report, "fitted for model 'synth-model' / prompt 'self_reflection'", "confidence_tags")


def test_unreadable_version_is_listed_and_cannot_be_activated(tmp_path):
    records = synth_records(tmp_path / "records.jsonl")
    assert calibrate(tmp_path, "fit", "--records", records, "--maps-dir", "maps").returncode == 0
    text = (tmp_path / "maps" / "v0001.json").read_text()
    (tmp_path / "maps" / "v0002.json").write_text(text[: len(text) // 2])  # a truncated copy
    listing = calibrate(tmp_path, "maps", "list", "--maps-dir", "maps")
    assert listing.returncode == 0 and "v0002  UNREADABLE" in listing.stdout
    assert_one_line_error(calibrate(tmp_path, "maps", "activate", "v0002", "--maps-dir", "maps"),
                          "v0002.json", "not valid JSON")
    assert MapStore(tmp_path / "maps").active_version() is None


# -- slow: the real default model, and kill -9 fault tests --------------------------------------


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 120) -> bool:
    """Wait until `path` holds at least n complete lines; False if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines in {timeout} s")


@pytest.mark.slow
def test_kill_collect_then_resume_loses_and_duplicates_nothing(tmp_path):
    """SIGKILL `calibrate collect` at several points, re-run it, and count the records."""
    make = calibrate(tmp_path, "make-data", "--domain", "math", "--n", "12", "--seed", "5", "--out", "q.jsonl")
    assert make.returncode == 0, make.stderr
    data_ids = [item["id"] for item in read_lines(tmp_path / "q.jsonl")]
    out = tmp_path / "records.jsonl"
    args = ("collect", "--data", "q.jsonl", "--out", out, "--max-new-tokens", "24", "--quiet")
    rng = random.Random(7)
    kills = 0
    # Kill points chosen from the file's progress: while the model loads (0 lines yet), and a random
    # moment after the 2nd, 5th and 8th record, i.e. somewhere inside the next generation or write.
    # SIGTERM (what `kill` and service managers send) must end it like Ctrl-C: status 130, a hint.
    for lines, sig in ((0, signal.SIGKILL), (2, signal.SIGKILL), (5, signal.SIGTERM), (8, signal.SIGKILL)):
        proc = start(tmp_path, *args)
        running = wait_for_lines(out, lines, proc) if lines else True
        time.sleep(rng.uniform(0.0, 1.0))
        if running and proc.poll() is None:
            proc.send_signal(sig)
            kills += 1
            status = proc.wait(timeout=60)
            stderr = proc.stderr.read()
            if sig == signal.SIGKILL:
                assert status == -signal.SIGKILL
            else:
                assert status == 130 and "interrupted: re-run the same command to resume" in stderr, stderr
        proc.wait(timeout=60)
        proc.stderr.close()
        for record in read_lines_tolerant(out):
            assert record["id"] in data_ids
    assert kills >= 3
    final = calibrate(tmp_path, *args, timeout=300)
    assert final.returncode == 0, final.stderr
    records = read_lines(out)  # every line parses (a torn tail was cut by the re-run)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicated records"
    assert set(ids) == set(data_ids), "lost records"
    assert out.read_bytes().endswith(b"\n")
    again = calibrate(tmp_path, *args)
    assert again.returncode == 0 and "0 new records, 12 already there, 12 in all" in again.stderr


def read_lines_tolerant(path: Path) -> list[dict]:
    """The complete lines of a records file that a kill may have left with a torn last line."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n")[:-1]]  # everything before the last newline parses


@pytest.mark.slow
def test_kill_fit_and_activate_never_breaks_the_maps_folder(tmp_path):
    """SIGKILL `calibrate fit --activate` and `maps activate` after random delays; the store always loads."""
    maps = tmp_path / "maps"
    records = synth_records(tmp_path / "records.jsonl")
    assert calibrate(tmp_path, "fit", "--records", records, "--maps-dir", maps, "--activate").returncode == 0
    store = MapStore(maps)
    # Kill delays are drawn inside each command's own measured run time, so most kills land
    # mid-run on a fast machine and a slow one alike.
    durations = []
    for args in (("fit", "--records", records, "--maps-dir", maps, "--activate"),
                 ("maps", "activate", store.active_version(), "--maps-dir", maps)):
        started = time.monotonic()
        assert calibrate(tmp_path, *args).returncode == 0
        durations.append(time.monotonic() - started)
    rng = random.Random(11)
    killed = 0
    for i in range(8):
        before = store.active_version()
        versions_before = {row["version"] for row in store.list_versions()}
        if i % 2 == 0:
            proc = start(tmp_path, "fit", "--records", records, "--maps-dir", maps, "--activate")
        else:
            target = rng.choice(sorted(versions_before))
            proc = start(tmp_path, "maps", "activate", target, "--maps-dir", maps)
        time.sleep(rng.uniform(0.05, 0.9) * durations[i % 2])
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        killed += proc.wait(timeout=60) == -signal.SIGKILL
        proc.stderr.close()
        active = store.active()  # never raises: HISTORY and every file it names are whole (a cut line is ignored)
        rows = store.list_versions()
        assert all(row["error"] is None for row in rows), rows
        new = {row["version"] for row in rows} - versions_before
        assert active.version in {before} | new | versions_before
        if i % 2 == 0:
            assert active.version in {before} | new
    assert killed >= 3  # most runs were cut short, at different points
    final = calibrate(tmp_path, "fit", "--records", records, "--maps-dir", maps, "--activate")
    assert final.returncode == 0, final.stderr
    newest = store.list_versions()[-1]["version"]
    assert store.active().version == newest and f"activated {newest}" in final.stdout
    assert calibrate(tmp_path, "maps", "rollback", "--maps-dir", maps).returncode == 0


@pytest.mark.slow
def test_real_model_make_data_collect_fit_report_activate(tmp_path):
    """The documented workflow end to end with the default model on a handful of questions."""
    data = []
    for domain, n in (("math", 4), ("factual", 3), ("science", 3), ("reasoning", 2)):
        name = f"{domain}.jsonl"
        assert calibrate(tmp_path, "make-data", "--domain", domain, "--n", n, "--seed", "1", "--out",
                         name).returncode == 0
        data.append(name)
    # a malformed line in one data file: skipped (and reported) with --on-error skip
    with open(tmp_path / "science.jsonl", "a") as f:
        f.write("{half a line\n")
    collect = calibrate(tmp_path, "collect", "--data", *data, "--out", "records.jsonl", "--on-error", "skip",
                        "--max-new-tokens", "60", timeout=300)
    assert collect.returncode == 0, collect.stderr
    assert "science.jsonl:4: malformed JSON line" in collect.stderr
    assert "12 new records, 0 already there, 12 in all" in collect.stderr
    assert "q/s" in collect.stderr or "s/q" in collect.stderr  # the progress bar shows a rate
    records = read_lines(tmp_path / "records.jsonl")
    assert len({r["id"] for r in records}) == 12
    model = records[0]["model"]
    assert model.startswith("SmolLM2-135M-Instruct") and {r["model"] for r in records} == {model}
    usable = [r for r in records if r["raw_confidence"] is not None and r["correct"] is not None]
    assert usable, "the default model stated no confidence at all"

    fit = calibrate(tmp_path, "fit", "--records", "records.jsonl", "--maps-dir", "maps",
                    "--min-samples", min(len(usable), 5))
    assert fit.returncode == 0, fit.stderr
    report = calibrate(tmp_path, "report", "--records", "records.jsonl", "--maps", "v0001", "--maps-dir", "maps",
                       "--min-samples", "1", "--plots", "plots", "--json")
    assert report.returncode == 0, report.stderr
    assert "cross-validated" in report.stderr
    assert json.loads(report.stdout)["overall"]["n"] == 12
    assert (tmp_path / "plots" / "reliability_overall.png").stat().st_size > 1000
    activate = calibrate(tmp_path, "maps", "activate", "v0001", "--maps-dir", "maps")
    assert activate.returncode == 0
    maps = MapStore(tmp_path / "maps").active()
    assert maps.matches(model, "confidence_tags")


@pytest.mark.slow
def test_eval_writes_its_run_file_into_the_data_folder_not_the_working_folder(tmp_path):
    """`calibrate --data-dir D eval` with the shipped active map: the records go to D/runs/, nothing to cwd."""
    work, data = tmp_path / "work", tmp_path / "data"
    work.mkdir()
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "q1", "domain": "math", "question": "What is 2 + 3?", "answer": "5",
                                     "answer_type": "number"}) + "\n")
    child = {k: v for k, v in env(tmp_path).items() if k != "CALIBRATED_CHAT_MAPS_DIR"}  # the default store
    done = subprocess.run([sys.executable, "-m", "calibration", "--data-dir", str(data), "eval", "--data",
                           str(questions), "--max-new-tokens", "32", "--json"], cwd=work, env=child,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    active = (ROOT / "assistant" / "data" / "maps" / "ACTIVE").read_text().strip()  # the shipped active map
    (run,) = (data / "runs").glob(f"eval-{active}-*.jsonl")
    assert json.loads(run.read_text().splitlines()[0])["id"] == "q1"
    assert list(work.iterdir()) == []


def test_records_strip_drops_benchmark_text_and_rebuild_restores_the_question(tmp_path):
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"id": f"q{i}", "domain": "math", "question": f"secret question {i}",
                                        "answer": str(i), "answer_type": "number", "source": "gsm8k",
                                        "license": "MIT"}) + "\n" for i in range(3)))
    records = synth_records(tmp_path / "r.jsonl", n=1)  # ids s-math-0, …: rename to the question ids
    rows = [json.loads(line) for line in records.read_text().splitlines()][:3]
    records.write_text("".join(json.dumps({**r, "id": f"q{i}", "question": f"secret question {i}",
                                           "answer": "model text"}) + "\n" for i, r in enumerate(rows)))
    stripped = calibrate(tmp_path, "records", "strip", "--records", records, "--data", data, "--out", "kept.jsonl")
    assert stripped.returncode == 0 and "wrote 3 records without question or answer text" in stripped.stdout
    kept = (tmp_path / "kept.jsonl").read_text()
    assert "secret question" not in kept and "model text" not in kept
    first = json.loads(kept.splitlines()[0])
    assert (first["id"], first["source"], first["license"], first["correct"]) == ("q0", "gsm8k", "MIT",
                                                                                 rows[0]["correct"])
    rebuilt = calibrate(tmp_path, "records", "rebuild", "--records", "kept.jsonl", "--data", data, "--out", "f.jsonl")
    assert rebuilt.returncode == 0
    assert [json.loads(line)["question"] for line in (tmp_path / "f.jsonl").read_text().splitlines()] == [
        f"secret question {i}" for i in range(3)]
    missing = calibrate(tmp_path, "records", "strip", "--records", records, "--data", tmp_path / "none.jsonl",
                        "--out", "x.jsonl")
    assert_one_line_error(missing, "none.jsonl", "no such file")


def test_reviews_export_reads_a_postgresql_store(tmp_path, pg_url, capsys):
    """`calibrate reviews export --store postgresql://…` writes the verdicts given on the servers' shared store."""
    from assistant.reviews.store import ReviewStore
    from calibration.cli import main
    from tests.conftest import make_reply

    store = ReviewStore(tmp_path / "app", url=pg_url, server="web-1")
    store.record_reply(make_reply(needs_review=True, review_reasons=("low_confidence",)), "sam")
    store.submit_verdict(store.queue()[0].id, "incorrect", "rita", "133")
    out = tmp_path / "reviews.jsonl"
    assert main(["reviews", "export", "--out", str(out), "--store", pg_url, "--data-dir", str(tmp_path / "cli")]) == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (record["gold"], record["correct"], record["population"]) == ("133", False, "review")
    assert not (tmp_path / "cli" / "reviews.sqlite3").exists()  # read from PostgreSQL, not a new SQLite file
