"""The calibrated-chat web app's entry point (and the Hugging Face Space's).

    calibrated-chat [--users users.json] [--data-dir DIR] [--host 127.0.0.1] [--port 7860] [--share]
    python app.py ...          # the same; also how a Hugging Face Space starts it
    python app.py --store postgresql://chat@db/chat --port 7861   # one of several servers on one store

This file reads the command line, decides who may use the app (`access_policy`), loads the
model, maps and review store, and starts `assistant.web.app.ChatApp`. The app itself (tabs,
API, sign-in) lives in `assistant.web`.
"""

import argparse
import logging
import os
import socket
import sys
from pathlib import Path

from assistant.answering.pipeline import Assistant
from assistant.core.config import ENV_PREFIX, default_data_dir, lost_on_restart, set_offline_env
from assistant.core.errors import CalibratedChatError, InputError, StoreError
from assistant.core.flags import (
    add_answer_flags,
    add_folder_flags,
    add_model_flags,
    model_config_from_args,
    positive_int,
)
from assistant.models.backend import GenerationOptions
from assistant.reviews.store import ReviewStore
from assistant.web.auth import UsersFile, load_users
from assistant.web.fairness import Limits
from assistant.web.proxies import TRUSTED_PROXIES_ENV, parse_trusted_proxies
from assistant.web.throttle import LoginThrottle, SharedThrottleStore

__all__ = ["main", "access_policy", "LOCAL_HOSTS", "EPHEMERAL_SPACE"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# The banner line of a Space whose data folder is not on persistent storage (see docs/deployment.md).
EPHEMERAL_SPACE = ("⚠ This Space has no persistent storage: reviews and conversations are lost when it restarts "
                   "(turn on persistent storage in the Space's settings; docs/deployment.md says how).")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="calibrated-chat", description="Run the calibrated-chat web app.")
    add_model_flags(p)
    add_answer_flags(p)
    add_folder_flags(p)
    p.add_argument("--users", type=Path, help="users file (.json/.toml) [or env CALIBRATED_CHAT_USERS]; read "
                                              "again whenever it changes, no restart needed")
    p.add_argument("--trusted-proxy", action="append", metavar="IP_OR_CIDR",
                   help="a reverse proxy whose X-Forwarded-For names the caller's address (repeat it, or give "
                        f"several comma-separated; default: none, the headers are ignored) [env {TRUSTED_PROXIES_ENV}]")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT") or 7860))
    p.add_argument("--store", default=os.environ.get(ENV_PREFIX + "STORE") or None, metavar="postgresql://…",
                   help="keep replies, conversations, reviews and the sign-in throttle in this PostgreSQL database, "
                        "which several app servers may share (default: a SQLite file in the data folder) "
                        f"[env {ENV_PREFIX}STORE]")
    p.add_argument("--server-name", default=os.environ.get(ENV_PREFIX + "SERVER_NAME") or None,
                   help="this server's name in a shared store, the same at each restart and different from the "
                        f"other servers' (default: HOST:PORT) [env {ENV_PREFIX}SERVER_NAME]")
    p.add_argument("--maps-poll-seconds", type=_seconds, default=10.0, metavar="SECONDS",
                   help="look this often at the maps folder for a newly activated map version, and load it, without a "
                        "restart (default 10; 0: before every answer); servers sharing one maps folder all follow it")
    p.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs users)")
    p.add_argument("--share-without-auth", action="store_true",
                   help="allow --share with no users configured (everyone gets the staff role)")
    p.add_argument("--max-question-chars", type=positive_int, default=8000,
                   help="longest question accepted, in characters (default 8000)")
    p.add_argument("--max-question-tokens", type=positive_int, default=512,
                   help="longest question accepted, in the model's tokens (default 512, about 380 words): a longer "
                        "one holds the model for everyone while it is read. Users are told to shorten theirs.")
    p.add_argument("--queue-size", type=positive_int, default=32,
                   help="requests waiting beyond this are refused with 'busy, try again'")
    _add_limit_flags(p)
    return p


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more (argparse's message otherwise)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, 0 or more, not {text!r}")
    return value


def _add_limit_flags(p: argparse.ArgumentParser) -> None:
    """Each caller's share of the model (`assistant.web.fairness.Limits`); each flag has an env default."""
    env = lambda name, default: os.environ.get(ENV_PREFIX + name) or default  # noqa: E731
    p.add_argument("--max-waiting-per-user", type=positive_int, default=env("MAX_WAITING_PER_USER", Limits.per_user),
                   help="questions one signed-in user (or API key) may have waiting or being answered; more are "
                        f"refused in plain words (default {Limits.per_user}) [env {ENV_PREFIX}MAX_WAITING_PER_USER]")
    p.add_argument("--visitor-max-waiting", type=positive_int, default=env("VISITOR_MAX_WAITING", Limits.visitor_waiting),
                   help="the same for a visitor without a sign-in, counted per address (default "
                        f"{Limits.visitor_waiting}) [env {ENV_PREFIX}VISITOR_MAX_WAITING]")
    p.add_argument("--visitor-questions-per-minute", type=positive_int,
                   default=env("VISITOR_QUESTIONS_PER_MINUTE", Limits.visitor_per_minute),
                   help="questions a visitor without a sign-in may ask in any minute, per address (default "
                        f"{Limits.visitor_per_minute}) [env {ENV_PREFIX}VISITOR_QUESTIONS_PER_MINUTE]")


def access_policy(users, host: str, share: bool, share_without_auth: bool) -> tuple[str | None, list[str]]:
    """The role of visitors without a login and the banner lines; raises InputError for an unsafe setup.

    With users configured everyone logs in. Without: on this computer only (loopback
    host, no share link) the one local user is admin; anywhere else visitors are staff,
    so review and dashboard are never open to the network without a password.
    """
    if users:
        return None, []
    if share and not share_without_auth:
        raise InputError("refusing --share without users: anyone with the link could use the app. Add users "
                         "(--users FILE or CALIBRATED_CHAT_USERS), or pass --share-without-auth to accept that")
    if share or host not in LOCAL_HOSTS:
        return "staff", ["⚠ No users are configured, so nobody signs in: every visitor is **staff** "
                         "(review and dashboard need a users file)."]
    return "admin", ["No users file: you are the **local admin**; the app listens on this computer only."]


def trusted_proxies(values: list[str] | None, env) -> tuple:
    """The `--trusted-proxy` networks, else those of CALIBRATED_CHAT_TRUSTED_PROXIES; InputError naming a bad one."""
    if values:
        return parse_trusted_proxies(values)
    return parse_trusted_proxies([env.get(TRUSTED_PROXIES_ENV, "")], TRUSTED_PROXIES_ENV)


def open_store(args, data_dir: Path) -> ReviewStore | None:
    """The review store, its cut-off replies marked interrupted. A SQLite store that fails leaves the app
    answering without saving (a warning); a PostgreSQL store given with --store that fails stops the start
    (StoreError), since this server alone would then not share what the others see."""
    server = args.server_name or f"{socket.gethostname()}:{args.port}"
    try:
        store = ReviewStore(data_dir, url=args.store, server=server)
        store.mark_interrupted()
        return store
    except StoreError as err:
        if args.store:
            raise
        print(f"warning: reviews cannot be saved: {err}", file=sys.stderr)
        return None


def _users(path: Path | None):
    """The users: a file with users is read again whenever it changes (`UsersFile`); sign-in itself is
    switched on or off at start, so a file that names nobody then acts as no file until a restart."""
    live = UsersFile(path) if path is not None else None
    return live if live else load_users(None)


def main(argv: list[str] | None = None) -> int:
    """Start the app; returns an exit status (2 for a bad setup, with one line saying why)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise, not news
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)  # "Loading model from …" on every start
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from assistant.web.app import ChatApp, serve  # imports gradio (seconds): not for --help or a bad setup

    set_offline_env()
    data_dir = args.data_dir or default_data_dir()
    try:
        users = _users(args.users)
        proxies = trusted_proxies(args.trusted_proxy, os.environ)
        anonymous_role, notices = access_policy(users, args.host, args.share, args.share_without_auth)
        store = open_store(args, data_dir)
    except CalibratedChatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not users and args.share:
        print("warning: sharing a public link WITHOUT a login (--share-without-auth)", file=sys.stderr)
    options = GenerationOptions(**({"max_new_tokens": args.max_new_tokens} if args.max_new_tokens else {}))
    try:  # load everything before listening, so a broken model or map never half-starts the app
        assistant = Assistant.from_config(
            model_config_from_args(args), prompt_id=args.prompt, maps_dir=args.maps_dir,
            data_dir=data_dir, allow_uncalibrated=args.allow_uncalibrated, options=options,
            max_question_chars=args.max_question_chars, max_question_tokens=args.max_question_tokens,
            self_consistency=args.self_consistency,
        )
    except CalibratedChatError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if assistant.maps is None:
        notices.append("⚠ No calibration map is active: every answer is flagged `uncalibrated`.")
    if lost_on_restart(data_dir):
        notices.append(EPHEMERAL_SPACE)
    limits = Limits(per_user=args.max_waiting_per_user, visitor_waiting=args.visitor_max_waiting,
                    visitor_per_minute=args.visitor_questions_per_minute, max_waiting=args.queue_size)
    chat_app = ChatApp(assistant, store, users, anonymous_role=anonymous_role, notices=notices, limits=limits,
                       maps_poll_seconds=args.maps_poll_seconds)
    demo = chat_app.build()
    demo.queue(max_size=args.queue_size, default_concurrency_limit=1)
    throttle = LoginThrottle(store=SharedThrottleStore(store)) if store is not None and store.shared else None
    serve(demo, chat_app.ctx, throttle=throttle, trusted_proxies=proxies, server_name=args.host, server_port=args.port,
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
