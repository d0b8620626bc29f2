"""The web app through `gradio_client`: ask, the queue, verdicts, export, roles, faults, start-up policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assistant.core.errors import InputError
from assistant.core.record import RECORD_FIELDS
from assistant.core.reply import Reply
from assistant.core.signals import Signals
from assistant.reviews.store import ReviewStore
from tests.conftest import ROOT, TEST_USERS, launch, stored_reply

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

REPLY_FIELDS = set(Reply.__dataclass_fields__)


def client(app, name: str) -> Client:
    return Client(app.url, auth=(name, TEST_USERS[name][1]), verbose=False)


def test_ask_returns_every_reply_field(running_app):
    reply = client(running_app, "sam").predict("What is 12 times 11?", None, api_name="/ask")
    assert REPLY_FIELDS <= set(reply)
    assert reply["answer"] == "132" and reply["raw_confidence"] == pytest.approx(0.95)
    assert reply["confidence"] == pytest.approx(0.76)  # the math map scales by 0.8
    assert reply["needs_review"] is False and reply["map_version"] == "v0001"
    stored = stored_reply(running_app.store, reply["reply_id"])
    assert stored["status"] == "ok" and stored["user"] == "sam" and stored["confidence"] == pytest.approx(0.76)


def test_an_answer_with_no_final_answer_has_no_figure_over_ask(running_app):
    """Issue 25.9: /ask gave a confidence to an output with no final answer."""
    reply = client(running_app, "sam").predict("What is 12 times 11? [no answer]", None, api_name="/ask")
    assert reply["answer"] is None and reply["raw_confidence"] == pytest.approx(0.65)
    assert reply["confidence"] is None and reply["review_reasons"] == ["no_answer"] and reply["needs_review"]
    assert stored_reply(running_app.store, reply["reply_id"])["confidence"] is None


def test_streaming_endpoint_ends_with_the_reply(running_app):
    job = client(running_app, "sam").submit("What is 12 times 11?", None, api_name="/ask_stream")
    outputs = list(job)
    assert len(outputs) > 2 and outputs[-1]["reply"]["answer"] == "132"
    assert all(o["reply"] is None for o in outputs[:-1])


def test_flagged_reply_is_reviewed_and_exported(running_app, tmp_path):
    staff, reviewer = client(running_app, "sam"), client(running_app, "rita")
    reply = staff.predict("Capital of France? [unsure]", None, api_name="/ask")
    assert reply["needs_review"] and reply["review_reasons"] == ["low_confidence"]
    queue = reviewer.predict("open", "math", api_name="/review_queue")
    item = next(i for i in queue if i["reply_id"] == reply["reply_id"])
    assert item["reasons"] == ["low_confidence"] and item["confidence"] == pytest.approx(0.24)
    closed = reviewer.predict(item["id"], "incorrect", "Paris", api_name="/submit_verdict")
    assert (closed["status"], closed["verdict"], closed["reviewer"]) == ("closed", "incorrect", "rita")
    assert item["id"] not in [i["id"] for i in reviewer.predict("open", "all", api_name="/review_queue")]
    # the verdict is committed: a fresh connection to the file sees it
    fresh = ReviewStore(running_app.store.data_dir)
    assert fresh.get_item(item["id"]).verdict == "incorrect"
    records = reviewer.predict(api_name="/export_reviews")
    mine = next(r for r in records if r["id"] == f"review-{reply['reply_id']}")
    assert tuple(mine) == RECORD_FIELDS  # the `calibrate collect` schema, revisions included
    assert (mine["gold"], mine["answer"], mine["correct"], mine["raw_confidence"]) == ("Paris", "Lyon", False, 0.3)


@pytest.mark.parametrize("action, reason", [("thumbs_down", "thumbs_down"), ("request", "user_requested")])
def test_staff_can_send_any_answer_for_review(running_app, action, reason):
    staff = client(running_app, "sam")
    reply = staff.predict("What is 12 times 11?", None, api_name="/ask")
    if action == "thumbs_down":
        staff.predict(reply["reply_id"], "down", "I think it is wrong", api_name="/feedback")
    else:
        staff.predict(reply["reply_id"], api_name="/request_review")
    item = next(i for i in running_app.store.queue() if i.reply_id == reply["reply_id"])
    assert item.reasons == (reason,)


@pytest.mark.parametrize(
    "endpoint, args",
    [
        ("/review_queue", ("open", "all")),
        ("/submit_verdict", (1, "correct", "")),
        ("/export_reviews", ()),
        ("/reload_maps", ()),
        ("/dashboard_stats", ()),
    ],
)
def test_staff_is_refused_on_reviewer_and_admin_endpoints(running_app, endpoint, args):
    before = running_app.store.queue(status="closed")
    with pytest.raises(AppError, match="Refused"):
        client(running_app, "sam").predict(*args, api_name=endpoint)
    assert running_app.store.queue(status="closed") == before


@pytest.mark.parametrize("endpoint, args", [("/reload_maps", ()), ("/dashboard_stats", ())])
def test_reviewer_is_refused_on_admin_endpoints(running_app, endpoint, args):
    with pytest.raises(AppError, match="Refused"):
        client(running_app, "rita").predict(*args, api_name=endpoint)


def test_admin_sees_live_figures(running_app):
    stats = client(running_app, "ann").predict(api_name="/dashboard_stats")
    assert stats["map_version"] == "v0001" and stats["since"].startswith("2020-01-01")
    assert stats["domains"]["all"]["count"] >= 0


def test_admin_sees_the_live_auroc_of_each_signal_from_reviewed_answers(tmp_path):
    from tests.conftest import make_reply

    app = launch(tmp_path / "data")
    try:
        verdict_of = {}
        for first_logp, confidence, verdict in ((-0.1, 0.2, "correct"), (-0.3, 0.3, "correct"),
                                                (-2.0, 0.8, "incorrect"), (-3.0, 0.9, "incorrect")):
            reply = make_reply(signals=Signals(answer_first_logp=first_logp), confidence=confidence, raw_confidence=None)
            verdict_of[app.store.record_reply(reply, "sam")] = verdict
        for item in app.store.queue():
            app.store.submit_verdict(item.id, verdict_of[item.reply_id], "rita")
        stats = client(app, "ann").predict(api_name="/dashboard_stats")
        math = stats["signal_auroc"]["math"]
        assert math["count"] == 4 and math["auroc"]["answer_first_logp"] == {"auroc": 1.0, "n": 4}
        assert math["auroc"]["calibrated"] == {"auroc": 0.0, "n": 4}  # this confidence ranks them backwards
        assert math["auroc"]["stated"] == {"auroc": None, "n": 0}
        # the tab shows the same: its live table and a risk–coverage figure with one curve per signal
        from assistant.web.context import WebContext
        from assistant.web.dashboard import DashboardTab

        summary, _, live, _, risk_coverage, *_ = DashboardTab(WebContext(app.assistant, app.store, None)).show(None)
        assert "**4** answers reviewed" in summary
        assert live[0][:2] == ["math", "4 (n=4: too few)"] and "1.00 (n=4: too few)" in live[0]
        labels = [line.get_label() for ax in risk_coverage.axes for line in ax.get_lines()]
        assert any(label.startswith("ans.1st n=4") for label in labels)
    finally:
        app.demo.close()


@pytest.mark.parametrize("name, password", [("sam", "wrong"), ("nobody", "staff-pw"), ("rita", "")])
def test_wrong_password_is_refused(running_app, name, password):
    with pytest.raises(ValueError, match="login"):
        Client(running_app.url, auth=(name, password), verbose=False)


def test_no_login_no_api(running_app):
    with pytest.raises(ValueError, match="login"):
        Client(running_app.url, verbose=False).predict("hi", None, api_name="/ask")


@pytest.mark.parametrize(
    "question, message",
    [("", "empty"), ("   \n\t ", "empty"), ("x" * 9000, "limit is 8,000"), ("\x00\x01", "empty")],
)
def test_bad_questions_get_a_clear_message_and_store_nothing(running_app, question, message):
    before = len(running_app.store.read("SELECT id FROM replies"))
    with pytest.raises(AppError, match=message):
        client(running_app, "sam").predict(question, None, api_name="/ask")
    assert len(running_app.store.read("SELECT id FROM replies")) == before


def test_answers_keep_coming_when_the_store_fails(tmp_path):
    app = launch(tmp_path / "data")
    try:
        app.store._conn.execute("PRAGMA query_only = ON")  # every write now fails, as on a read-only disk
        reply = client(app, "sam").predict("What is 12 times 11?", None, api_name="/ask")
        assert reply["answer"] == "132" and reply["reply_id"] is None
    finally:
        app.demo.close()


@pytest.mark.parametrize(
    "users, host, share, share_without_auth, role, error",
    [
        (True, "0.0.0.0", True, False, None, None),
        (False, "127.0.0.1", False, False, "admin", None),
        (False, "0.0.0.0", False, False, "staff", None),
        (False, "127.0.0.1", True, False, None, "refusing --share"),
        (False, "127.0.0.1", True, True, "staff", None),
    ],
)
def test_access_policy(users, host, share, share_without_auth, role, error):
    from app import access_policy
    from tests.conftest import make_users

    given = make_users() if users else None
    if error:
        with pytest.raises(InputError, match=error):
            access_policy(given, host, share, share_without_auth)
    else:
        assert access_policy(given, host, share, share_without_auth)[0] == role


def test_cli_refuses_share_without_users(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CALIBRATED_CHAT_USERS"}
    run = subprocess.run([sys.executable, "app.py", "--share", "--data-dir", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "refusing --share" in run.stderr


def test_killed_server_mid_stream_leaves_a_sound_store(tmp_path):
    """SIGKILL the app while an answer streams: acknowledged verdicts survive, the streaming row is intact."""
    from tests.conftest import app_subprocess, kill_while_streaming

    data = tmp_path / "data"
    proc, url = app_subprocess(data, 0.3)
    try:
        app = type("App", (), {"url": url})
        staff, reviewer = client(app, "sam"), client(app, "rita")
        done = staff.predict("Capital? [unsure]", None, api_name="/ask")
        item = reviewer.predict("open", "all", api_name="/review_queue")[0]
        reviewer.predict(item["id"], "correct", "", api_name="/submit_verdict")  # acknowledged
        job = staff.submit("What is 12 times 11?", None, api_name="/ask_stream")
    except BaseException:
        proc.kill()
        raise
    kill_while_streaming(proc, data)
    store = ReviewStore(data)
    assert store.integrity_check() == []
    assert store.get_item(item["id"]).verdict == "correct"
    assert stored_reply(store, done["reply_id"])["status"] == "ok"
    streaming = store.read("SELECT question FROM replies WHERE status = 'streaming'")
    assert [row[0] for row in streaming] == ["What is 12 times 11?"]
    del job


@pytest.mark.slow
def test_real_model_and_router_through_the_api(tmp_path):
    """The default SmolLM2 GGUF and the real embedding router behind the app."""
    from assistant.answering.pipeline import Assistant
    from assistant.core.config import ModelConfig, set_offline_env
    from assistant.models.backend import GenerationOptions

    set_offline_env()
    assistant = Assistant.from_config(ModelConfig(), allow_uncalibrated=True,
                                      options=GenerationOptions(max_new_tokens=96))
    app = launch(tmp_path / "data", assistant=assistant)
    try:
        reply = client(app, "sam").predict("What is 2 + 3?", None, api_name="/ask")
        assert REPLY_FIELDS <= set(reply)
        assert reply["model"] == assistant.backend.model_id and reply["domain"] in (
            "math", "factual", "science", "reasoning", "general")
        assert reply["raw_output"] and reply["tokens"] > 0
        stored = stored_reply(app.store, reply["reply_id"])
        assert stored["status"] == "ok" and stored["raw_output"] == reply["raw_output"]
        if reply["needs_review"]:
            assert any(i.reply_id == reply["reply_id"] for i in app.store.queue())
    finally:
        app.demo.close()


@pytest.mark.parametrize("anonymous_role, allowed", [("admin", True), ("staff", False)])
def test_without_users_the_anonymous_role_decides(tmp_path, anonymous_role, allowed):
    from assistant.web.auth import Users

    app = launch(tmp_path / "data", users=Users(), anonymous_role=anonymous_role)
    try:
        anonymous = Client(app.url, verbose=False)
        assert anonymous.predict("What is 12 times 11?", None, api_name="/ask")["answer"] == "132"
        if allowed:
            assert anonymous.predict("open", "all", api_name="/review_queue") == []
        else:
            with pytest.raises(AppError, match="Refused"):
                anonymous.predict("open", "all", api_name="/review_queue")
    finally:
        app.demo.close()
