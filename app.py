"""calibrated-chat web app: chat with calibrated confidence, a review queue and a calibration dashboard.

    calibrated-chat [--users users.json] [--data-dir DIR] [--host 127.0.0.1] [--port 7860] [--share]
    python app.py ...          # the same; also how a Hugging Face Space starts it

Tabs: Chat (everyone), Review (reviewers and admins), Dashboard (admins). Every
reviewer/admin function checks the caller's role on the server. Named API
endpoints for `gradio_client`: /ask, /request_review, /feedback (staff);
/review_queue, /submit_verdict, /export_reviews (reviewers); /reload_maps,
/dashboard_stats (admins).

Only the web front end lives here: answering is `assistant.pipeline`, storage
`assistant.web.store`, users `assistant.web.auth`, rendering `assistant.web.render`.
"""

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["build_app", "serve", "main", "LOCAL_HOSTS"]

log = logging.getLogger("calibrated_chat.app")

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
HISTORY_TURNS = 3  # earlier exchanges sent back to the model as context
VERDICTS = [("Correct", "correct"), ("Incorrect", "incorrect"), ("Not answerable", "not_answerable")]
STORE_DOWN = "⚠ Reviews cannot be saved (the review store is not writable); answers are still shown."


def build_app(assistant, store, users, *, anonymous_role="admin", notices=None, title="calibrated-chat"):
    """The Gradio Blocks app. `store` may be None (reviews cannot be saved); `users` empty = no login,
    every visitor then has `anonymous_role`. `notices` (a list, read on each page load) feeds the banner."""
    import gradio as gr

    from assistant.web import render as ui
    from assistant.web.access import EXPORT_PATH
    from assistant.web.auth import role_at_least
    from assistant.core.errors import CalibratedChatError, InputError, StoreError
    from assistant.pipeline import clean_question
    from assistant.web.store import Actor
    from assistant.core.domains import MAP_DOMAINS

    notices = notices if notices is not None else []
    cancels: dict[str, threading.Event] = {}  # session -> the running answer's stop flag

    def user_of(request):
        return getattr(request, "username", None) if request is not None else None

    def role_of(request):
        return users.role_of(user_of(request)) if users else anonymous_role

    def session_of(request):
        return getattr(request, "session_hash", None) if request is not None else None

    def actor_of(request):
        """Who acts on a stored reply: staff on their own only, reviewers and admins on any."""
        return Actor(user_of(request), session_of(request), role_at_least(role_of(request), "reviewer"))

    def require(request, needed):
        if not role_at_least(role_of(request), needed):
            log.warning("refused a %s-only call for user %r (role %s)", needed, user_of(request), role_of(request))
            raise gr.Error(f"Refused: this needs the {needed} role.")

    def store_call(fn, *args, **kwargs):
        """Run a store write; on StoreError warn (the app keeps answering) and return None."""
        if store is None:
            gr.Warning(STORE_DOWN)
            return None
        try:
            return fn(*args, **kwargs)
        except StoreError as err:
            log.error("review store write failed: %s", err)
            gr.Warning(f"{STORE_DOWN} ({err})")
            return None

    # -- chat -------------------------------------------------------------------------------

    def flatten(turns):
        chat = []
        for t in turns:
            chat.append({"role": "user", "content": ui.inert_markdown(t["question"])})
            if t["reasoning"]:
                status = "done" if t["done"] else "pending"
                chat.append({"role": "assistant", "content": ui.inert_markdown(t["reasoning"]),
                             "metadata": {"title": "Reasoning", "status": status}})
            chat.append({"role": "assistant", "content": t["shown"] or "…"})
        return chat

    def turn_at(turns, index):
        """The turn a chat message index belongs to."""
        pos = 0
        for t in turns:
            pos += 2 + bool(t["reasoning"])
            if index < pos:
                return t
        return turns[-1] if turns else None

    def history_of(turns):
        hist = []
        for t in turns[-HISTORY_TURNS:]:
            if t["done"] and t["answer"] is not None:
                hist += [{"role": "user", "content": t["question"]}, {"role": "assistant", "content": t["answer"]}]
        return hist

    def take_message(message):
        return message, ""

    def answer_stream(question, history, request, cancel):
        """Run the assistant and store the reply: a 'streaming' row first, completed before the last
        update is yielded (so a kill at any moment leaves a consistent row). Yields (update, reply_id, note)."""
        question = clean_question(question or "", assistant.max_question_chars)
        reply_id, note = None, "" if store is not None else STORE_DOWN
        if store is not None:
            try:
                reply_id = store.start_reply(question, user_of(request), assistant.backend.model_id,
                                             assistant.prompt.id, session=session_of(request))
            except StoreError as err:
                log.error("review store write failed: %s", err)
                note = STORE_DOWN
        finished, last = False, None
        try:
            for update in assistant.ask_stream(question, history, cancel):
                last = update
                if update.reply is not None and reply_id is not None:
                    try:
                        store.finish_reply(reply_id, update.reply,
                                           status="cancelled" if cancel.is_set() else "ok")
                    except StoreError as err:
                        log.error("review store write failed: %s", err)
                        reply_id, note = None, STORE_DOWN
                finished = update.reply is not None
                yield update, reply_id, note
        finally:
            if not finished and reply_id is not None:
                try:  # stopped, failed or abandoned before the end: keep what streamed, marked cancelled
                    store.cancel_reply(reply_id, last.answer if last else "", last.reasoning if last else "")
                except StoreError:
                    pass

    def respond(message, turns, request: gr.Request):
        turns = list(turns or [])
        try:
            question = clean_question(message or "", assistant.max_question_chars)
        except InputError as err:
            gr.Warning(str(err))
            yield turns, flatten(turns), message, f"⚠ {err}"
            return
        history = history_of(turns)
        turn = {"question": question, "reasoning": "", "shown": "", "answer": None, "reply_id": None,
                "done": False}
        turns.append(turn)
        yield turns, flatten(turns), "", ""
        cancel = threading.Event()
        session = getattr(request, "session_hash", None) or "-"
        cancels[session] = cancel
        streamed = ""  # the visible text as it last streamed in
        try:
            for update, reply_id, note in answer_stream(question, history, request, cancel):
                turn["reasoning"] = update.reasoning
                turn["shown"] = ui.inert_markdown(update.answer)
                if update.reply is None:
                    streamed = update.answer
                else:
                    turn.update(answer=update.reply.answer, done=True, reply_id=reply_id,
                                reasoning=kept_reasoning(update.reply, streamed, cancel.is_set()),
                                shown=ui.answer_markdown(update.reply, assistant.maps,
                                                         stopped=streamed if cancel.is_set() else None))
                yield turns, flatten(turns), "", note
        except CalibratedChatError as err:
            log.warning("answer failed: %s", err)
            turn.update(done=True, shown=f"⚠ {ui.inert_markdown(str(err))}")
            yield turns, flatten(turns), "", f"⚠ {err}"
        finally:
            cancels.pop(session, None)

    def kept_reasoning(reply, streamed: str, stopped: bool) -> str:
        """Whatever the user watched stream in stays visible: working written without think or answer
        tags becomes the reasoning section when the final answer is only part of it."""
        if reply.reasoning or stopped or not streamed.strip() or streamed.strip() == (reply.answer or "").strip():
            return reply.reasoning
        return streamed

    def stop(request: gr.Request):
        event = cancels.get(getattr(request, "session_hash", None) or "-")
        if event is not None:
            event.set()

    def pop_last(turns):
        turns = list(turns or [])
        if not turns:
            return turns, [], ""
        last = turns.pop()
        return turns, flatten(turns), last["question"]

    def on_like(turns, comment, data: gr.LikeData, request: gr.Request):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = turn_at(turns or [], index)
        if turn is None or turn["reply_id"] is None:
            gr.Warning("This answer was not stored, so feedback cannot be saved.")
            return comment
        if data.liked is None or data.liked == "":
            return comment
        thumbs = "up" if data.liked is True or data.liked == "Like" else "down"
        if store_call(store.add_feedback if store else None, turn["reply_id"], actor_of(request), thumbs,
                      comment or "") is not None:
            gr.Info("Thanks — feedback saved." + (" The answer goes to a reviewer." if thumbs == "down" else ""))
            return ""
        return comment

    def on_select(data: gr.SelectData):
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        return index

    def send_for_review(turns, selected, request: gr.Request):
        turns = turns or []
        turn = turn_at(turns, selected) if selected is not None else (turns[-1] if turns else None)
        if turn is None or turn["reply_id"] is None:
            gr.Warning("There is no stored answer to send yet.")
            return
        item = store_call(store.request_review if store else None, turn["reply_id"], actor_of(request))
        if item is not None:
            gr.Info(f"Sent for a human check (review item {item}).")

    # -- review ------------------------------------------------------------------------------

    def _queue(request, status, domain):
        require(request, "reviewer")
        if store is None:
            raise gr.Error(STORE_DOWN)
        try:
            return store.queue(status=status or "open", domain=domain or "all")
        except StoreError as err:
            raise gr.Error(str(err))

    def review_list(status, domain, request: gr.Request):
        items = _queue(request, status, domain)
        choices = [(f"#{i.id} · {i.domain} · {ui._pct(i.confidence)} · {i.question[:60]}", i.id) for i in items]
        rows = [[i.id, i.created_at[:19].replace("T", " "), i.domain, ui._pct(i.confidence),
                 ui._pct(i.raw_confidence), ", ".join(i.reasons), i.status, i.question[:80]] for i in items]
        first = items[0].id if items else None
        detail = ui.queue_item_markdown(items[0]) if items else "*The queue is empty.*"
        return gr.update(choices=choices, value=first), rows, detail

    def review_show(item_id, request: gr.Request):
        require(request, "reviewer")
        item = store.get_item(int(item_id)) if (store is not None and item_id is not None) else None
        return ui.queue_item_markdown(item, store.verdict_history(item.id)) if item else "*Pick an item.*"

    def review_submit(item_id, verdict, corrected, revise, status, domain, request: gr.Request):
        require(request, "reviewer")
        if item_id is None or not verdict:
            raise gr.Error("Pick an item and a verdict first.")
        try:
            store.submit_verdict(int(item_id), verdict, user_of(request) or "local-admin", corrected or None,
                                 revise=bool(revise))
        except (StoreError, InputError) as err:
            raise gr.Error(str(err))
        gr.Info(f"Verdict {'revised' if revise else 'saved'} for item {item_id}.")
        return (*review_list(status, domain, request), None, "", False)

    def export_link(request: gr.Request):
        require(request, "reviewer")
        if store is None:
            raise gr.Error(STORE_DOWN)
        # Served by assistant.web.access.export_route to reviewers only; no copy in Gradio's file cache.
        return f"[Download the reviewed answers (JSONL)]({EXPORT_PATH.lstrip('/')})"

    # -- dashboard ---------------------------------------------------------------------------

    def dashboard(request: gr.Request):
        require(request, "admin")
        maps = assistant.maps
        since = maps.fitted_at if maps else None
        reviewed = store.reviewed(since) if store is not None else []
        answered = store.answered(since) if store is not None else []
        stats = store.review_stats(since) if store is not None else {}
        if maps is None:
            summary = "**No calibration map is active**: every answer is flagged `uncalibrated`. Run `calibrate fit`."
        else:
            live = stats.get("all")
            summary = (
                f"**Active map {maps.version}** for model `{maps.model}`, prompt `{maps.prompt}`, "
                f"fitted {ui.human_date(maps.fitted_at)}."
                + ("" if maps.matches(assistant.backend.model_id, assistant.prompt.id)
                   else f" ⚠ It does not match the running model `{assistant.backend.model_id}`.")
                + f"\n\nSince the fit: **{live.count if live else 0}** answers reviewed"
                + (f", {ui._num(live.accuracy, pct=True)} correct, expected calibration error "
                   f"{ui._num(live.ece)}{ui.few_answers(live.count)}." if live and live.count else ".")
            )
        return summary, ui.dashboard_rows(maps, stats), ui.reliability_figure(maps, reviewed), \
            ui.histogram_figure(maps, answered)

    def reload_maps_ui(request: gr.Request):
        require(request, "admin")
        try:
            version = assistant.reload_maps()
        except CalibratedChatError as err:
            raise gr.Error(f"Maps not reloaded (the old ones stay active): {err}")
        gr.Info(f"Active calibration map: {version or 'none'}")
        return (*dashboard(request),)

    # -- page load ---------------------------------------------------------------------------

    def on_load(request: gr.Request):
        role = role_of(request)
        lines = list(notices) + ([STORE_DOWN] if store is None else [])
        who = f"Signed in as **{user_of(request) or 'local user'}** ({role or 'no role'})." + (
            " [Sign out](logout)" if users else "")
        return (
            "\n\n".join([who, *lines]),
            gr.update(visible=role_at_least(role, "reviewer")),
            gr.update(visible=role_at_least(role, "admin")),
        )

    # -- API ---------------------------------------------------------------------------------

    def api_ask(question: str, history: list | None = None, request: gr.Request = None) -> dict:
        """Answer one question; returns the full Reply as a dict, plus `reply_id` (None if not stored)."""
        require(request, "staff")
        for update, reply_id, note in api_stream(question, history, request):
            if update.reply is not None:
                return {**update.reply.to_dict(), "reply_id": reply_id}
        raise gr.Error("no answer")  # pragma: no cover

    def api_stream(question, history, request):
        try:
            yield from answer_stream(question, history or None, request, threading.Event())
        except CalibratedChatError as err:
            raise gr.Error(str(err))

    def api_ask_stream(question: str, history: list | None = None, request: gr.Request = None) -> dict:
        """Stream one answer: dicts {"reasoning", "answer", "reply", "reply_id"}; "reply" is set on the last."""
        require(request, "staff")
        for update, reply_id, note in api_stream(question, history, request):
            yield {"reasoning": update.reasoning, "answer": update.answer,
                   "reply": update.reply.to_dict() if update.reply is not None else None, "reply_id": reply_id}

    def api_request_review(reply_id: str, request: gr.Request = None) -> int:
        """Send one of your stored replies for a human check; returns the review item id."""
        require(request, "staff")
        if store is None:
            raise gr.Error(STORE_DOWN)
        try:
            return store.request_review(str(reply_id), actor_of(request))
        except (StoreError, InputError) as err:
            raise gr.Error(str(err))

    def api_feedback(reply_id: str, thumbs: str, comment: str = "", request: gr.Request = None) -> int:
        """Thumbs "up" or "down" (+ optional comment) on one of your stored replies; returns the feedback id."""
        require(request, "staff")
        if store is None:
            raise gr.Error(STORE_DOWN)
        try:
            return store.add_feedback(str(reply_id), actor_of(request), thumbs, comment)
        except (StoreError, InputError) as err:
            raise gr.Error(str(err))

    def api_review_queue(status: str = "open", domain: str = "all", request: gr.Request = None) -> list:
        """Review items, newest first (reviewers only)."""
        return [item.to_dict() for item in _queue(request, status, domain)]

    def api_submit_verdict(item_id: int, verdict: str, corrected_answer: str = "", revise: bool = False,
                           request: gr.Request = None) -> dict:
        """Close a review item with correct / incorrect / not_answerable (reviewers only). An item that
        already has a verdict is changed only with revise=True; every verdict is kept."""
        require(request, "reviewer")
        if store is None:
            raise gr.Error(STORE_DOWN)
        try:
            item = store.submit_verdict(int(item_id), verdict, user_of(request) or "local-admin",
                                        corrected_answer or None, revise=bool(revise))
        except (StoreError, InputError) as err:
            raise gr.Error(str(err))
        return item.to_dict()

    def api_export_reviews(request: gr.Request = None) -> list:
        """Reviewed answers as records of the `calibrate collect` schema (reviewers only)."""
        require(request, "reviewer")
        if store is None:
            raise gr.Error(STORE_DOWN)
        return [record.to_dict() for record in store.records()]

    def api_reload_maps(request: gr.Request = None) -> str:
        """Re-read the active calibration map (admins only); returns its version ("" if none)."""
        require(request, "admin")
        try:
            return assistant.reload_maps() or ""
        except CalibratedChatError as err:
            raise gr.Error(f"Maps not reloaded (the old ones stay active): {err}")

    def api_dashboard_stats(request: gr.Request = None) -> dict:
        """Live figures from reviewed answers since the active map's fit, per domain (admins only)."""
        require(request, "admin")
        since = assistant.maps.fitted_at if assistant.maps else None
        stats = store.review_stats(since) if store is not None else {}
        return {
            "map_version": assistant.maps.version if assistant.maps else None,
            "since": since,
            "domains": {d: s.__dict__ for d, s in stats.items()},
        }

    # -- layout ------------------------------------------------------------------------------

    with gr.Blocks(title=title, analytics_enabled=False) as demo:
        gr.Markdown(f"## {title}\nAnswers with a confidence you can trust: the model's own figure, "
                    "corrected by what its past answers showed.")
        banner = gr.Markdown(elem_id="cc-banner")
        turns = gr.State([])
        pending = gr.State("")
        selected = gr.State(None)
        with gr.Tab("Chat", id="chat"):
            chatbot = gr.Chatbot(label="Chat", height=520, elem_id="cc-chat", sanitize_html=True,
                                 feedback_options=("Like", "Dislike"), allow_tags=False)
            status = gr.Markdown(elem_id="cc-status")
            with gr.Row():
                box = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=6, elem_id="cc-question",
                                 max_lines=12)
                send = gr.Button("Send", variant="primary", scale=1, elem_id="cc-send")
            with gr.Row():
                stop_btn = gr.Button("Stop", elem_id="cc-stop")
                retry_btn = gr.Button("Retry", elem_id="cc-retry")
                review_btn = gr.Button("Ask for a human check", elem_id="cc-request-review")
            comment = gr.Textbox(label="Comment (optional; sent with your thumbs up or down)", elem_id="cc-comment")
        with gr.Tab("Review", id="review", visible=False) as review_tab:
            with gr.Row():
                f_status = gr.Radio(["open", "closed", "all"], value="open", label="Status")
                f_domain = gr.Dropdown(["all", *MAP_DOMAINS], value="all", label="Domain")
                refresh = gr.Button("Refresh", elem_id="cc-review-refresh")
            table = gr.Dataframe(headers=["id", "asked", "domain", "calibrated", "raw", "reasons", "status",
                                          "question"], interactive=False, wrap=True)
            item = gr.Dropdown(label="Item", choices=[], elem_id="cc-item")
            detail = gr.Markdown(elem_id="cc-item-detail")
            verdict = gr.Radio(VERDICTS, label="Verdict", elem_id="cc-verdict")
            corrected = gr.Textbox(label="Correct answer (optional)", elem_id="cc-corrected")
            revise = gr.Checkbox(label="Revise the existing verdict (the earlier one stays in the history)",
                                 value=False, elem_id="cc-revise")
            submit = gr.Button("Save verdict", variant="primary", elem_id="cc-submit-verdict")
            export_btn = gr.Button("Export reviewed answers (JSONL)", elem_id="cc-export")
            export_out = gr.Markdown(elem_id="cc-export-link")
        with gr.Tab("Dashboard", id="dashboard", visible=False) as dash_tab:
            summary = gr.Markdown(elem_id="cc-dash-summary")
            with gr.Row():
                dash_refresh = gr.Button("Refresh")
                reload_btn = gr.Button("Reload maps", elem_id="cc-reload")
            metrics = gr.Dataframe(headers=ui.DASHBOARD_COLUMNS, interactive=False, wrap=True)
            reliability = gr.Plot(label="Reliability per domain")
            histogram = gr.Plot(label="Confidence of answers given since the fit, per domain")

        chat_out = [turns, chatbot, box, status]
        ask_args = dict(fn=respond, inputs=[pending, turns], outputs=chat_out, concurrency_id="model",
                        api_visibility="private")
        box.submit(take_message, box, [pending, box], queue=False, api_visibility="private").then(**ask_args)
        send.click(take_message, box, [pending, box], queue=False, api_visibility="private").then(**ask_args)
        retry_btn.click(pop_last, turns, [turns, chatbot, pending], queue=False,
                        api_visibility="private").then(**ask_args)
        stop_btn.click(stop, None, None, queue=False, api_visibility="private")
        chatbot.like(on_like, [turns, comment], comment, api_visibility="private")
        chatbot.select(on_select, None, selected, api_visibility="private")
        review_btn.click(send_for_review, [turns, selected], None, api_visibility="private")

        review_outs = [item, table, detail]
        for trigger in (refresh.click, f_status.change, f_domain.change, review_tab.select):
            trigger(review_list, [f_status, f_domain], review_outs, api_visibility="private")
        item.change(review_show, item, detail, api_visibility="private")
        submit.click(review_submit, [item, verdict, corrected, revise, f_status, f_domain],
                     [*review_outs, verdict, corrected, revise], api_visibility="private")
        export_btn.click(export_link, None, export_out, api_visibility="private")

        dash_outs = [summary, metrics, reliability, histogram]
        dash_tab.select(dashboard, None, dash_outs, api_visibility="private")
        dash_refresh.click(dashboard, None, dash_outs, api_visibility="private")
        reload_btn.click(reload_maps_ui, None, dash_outs, api_visibility="private")
        demo.load(on_load, None, [banner, review_tab, dash_tab], api_visibility="private")

        gr.api(api_ask, api_name="ask", concurrency_id="model")
        gr.api(api_ask_stream, api_name="ask_stream", concurrency_id="model")
        gr.api(api_request_review, api_name="request_review")
        gr.api(api_feedback, api_name="feedback")
        gr.api(api_review_queue, api_name="review_queue")
        gr.api(api_submit_verdict, api_name="submit_verdict")
        gr.api(api_export_reviews, api_name="export_reviews")
        gr.api(api_reload_maps, api_name="reload_maps")
        gr.api(api_dashboard_stats, api_name="dashboard_stats")
    return demo


def serve(demo, store, users, *, anonymous_role="admin", throttle=None, **launch_kwargs):
    """Start `demo`'s server behind the sign-in guard, with the reviewers' export route.

    main() and the tests start the app through here, so both run the same door. `throttle`: the
    sign-in limits (an `assistant.web.access.LoginThrottle`; default its documented policy).
    """
    from starlette.middleware import Middleware

    from assistant.web.access import LoginGuard, export_route

    def role_of_user(name):
        return users.role_of(name) if users else anonymous_role

    app_kwargs = {"middleware": [Middleware(LoginGuard, throttle=throttle)],
                  "routes": [export_route(store, role_of_user, signed_in=bool(users))]}
    demo.launch(auth=users.authenticate if users else None, app_kwargs=app_kwargs, **launch_kwargs)


# -- command line ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    from assistant.cli import DATA_DIR_HELP, MAPS_DIR_HELP, add_model_arguments

    p = argparse.ArgumentParser(prog="calibrated-chat", description="Run the calibrated-chat web app.")
    add_model_arguments(p)
    p.add_argument("--prompt", default=os.environ.get("CALIBRATED_CHAT_PROMPT") or "confidence_tags",
                   help="prompt id [env CALIBRATED_CHAT_PROMPT]")
    p.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    p.add_argument("--maps-dir", type=Path, help=MAPS_DIR_HELP)
    p.add_argument("--users", type=Path, help="users file (.json/.toml) [or env CALIBRATED_CHAT_USERS]")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860))
    p.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs users)")
    p.add_argument("--share-without-auth", action="store_true",
                   help="allow --share with no users configured (everyone gets the staff role)")
    p.add_argument("--allow-uncalibrated", action="store_true",
                   help="start even when the active map is invalid; every answer is then flagged")
    p.add_argument("--max-question-chars", type=int, default=8000, help="longest question accepted")
    p.add_argument("--max-new-tokens", type=int, help="cap on generated tokens per answer")
    p.add_argument("--queue-size", type=int, default=32,
                   help="requests waiting beyond this are refused with 'busy, try again'")
    return p


def access_policy(users, host: str, share: bool, share_without_auth: bool) -> tuple[str | None, list[str]]:
    """The role of visitors without a login and the banner lines; raises InputError for an unsafe setup.

    With users configured everyone logs in. Without: on this computer only (loopback
    host, no share link) the one local user is admin; anywhere else visitors are staff,
    so review and dashboard are never open to the network without a password.
    """
    from assistant.core.errors import InputError

    if users:
        return None, []
    if share and not share_without_auth:
        raise InputError("refusing --share without users: anyone with the link could use the app. Add users "
                         "(--users FILE or CALIBRATED_CHAT_USERS), or pass --share-without-auth to accept that")
    if share or host not in LOCAL_HOSTS:
        return "staff", ["⚠ No users are configured, so nobody signs in: every visitor is **staff** "
                         "(review and dashboard need a users file)."]
    return "admin", ["No users file: you are the **local admin**; the app listens on this computer only."]


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns an exit status (2 for a bad setup, with one line saying why)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise, not news
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)  # "Loading model from …" on every start
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from assistant.web.auth import load_users
    from assistant.models.backend import GenerationOptions
    from assistant.cli import model_config_from_args
    from assistant.core.config import default_data_dir, set_offline_env
    from assistant.core.errors import CalibratedChatError, StoreError
    from assistant.pipeline import Assistant
    from assistant.web.store import ReviewStore

    set_offline_env()
    data_dir = args.data_dir or default_data_dir()
    try:
        users = load_users(args.users)
        anonymous_role, notices = access_policy(users, args.host, args.share, args.share_without_auth)
    except CalibratedChatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not users and args.share:
        print("warning: sharing a public link WITHOUT a login (--share-without-auth)", file=sys.stderr)
    try:
        store = ReviewStore(data_dir)
        store.mark_interrupted()
    except StoreError as err:
        print(f"warning: reviews cannot be saved: {err}", file=sys.stderr)
        store = None
    options = GenerationOptions(**({"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}))
    try:  # load everything before listening, so a broken model or map never half-starts the app
        assistant = Assistant.from_config(
            model_config_from_args(args), prompt_id=args.prompt, maps_dir=args.maps_dir,
            data_dir=data_dir, allow_uncalibrated=args.allow_uncalibrated, options=options,
            max_question_chars=args.max_question_chars,
        )
    except CalibratedChatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if assistant.maps is None:
        notices.append("⚠ No calibration map is active: every answer is flagged `uncalibrated`.")
    demo = build_app(assistant, store, users, anonymous_role=anonymous_role, notices=notices)
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    serve(demo, store, users, anonymous_role=anonymous_role, server_name=args.host, server_port=args.port,
          share=args.share, auth_message="Sign in to calibrated-chat", prevent_thread_lock=True, quiet=False,
          show_error=True)
    if args.share and not demo.share_url:
        line = f"The share link could not be created (no network?); the app runs locally only at {demo.local_url}"
        print(line, file=sys.stderr)
        notices.append("⚠ " + line)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
