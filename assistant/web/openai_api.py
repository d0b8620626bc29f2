"""calibrated-chat as an OpenAI-compatible model: `POST /v1/chat/completions` and `GET /v1/models`,
served by the same server as the Gradio app, so any OpenAI client (Open WebUI, LibreChat, the
`openai` package, curl) can ask it and read the calibrated confidence.

The answer is the message content. A `calibration` object carries what staff see under an
answer in the chat (confidence, its range, whether the question is unlike the questions the
map was fitted on, the model's own figure, domain, whether it needs a human check and why,
the map version, one plain sentence); it is in the response, and in the last chunk of a stream.
While the model writes, its text streams as `delta.reasoning_content`
(as servers that split off thinking send it): which part is the final answer is known only
when the model has finished, and then comes as `delta.content`.

Callers send `Authorization: Bearer <key>` (keys: `python -m assistant.web.auth add-key`).
Without a users file the endpoint is open on this computer only (the app's local admin), and
refused when the app is reachable from elsewhere. Every answer is stored like a chat answer:
flagged ones go to the review queue.

Questions take turns at the model with the chat's (`fairness.Admission`): a key's user over their
share, or a busy model, gets 429 with `retry-after`. A malformed body gets 400, and a conversation
too long for the model's context 400 `context_length_exceeded`, each with a message saying what to change.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Iterator

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from assistant.answering.pipeline import Question
from assistant.core.errors import CalibratedChatError, InputError
from assistant.core.reply import Reply
from assistant.web import render
from assistant.web.context import HISTORY_TURNS, LOCAL_ADMIN, WebContext
from assistant.web.fairness import Busy, Caller

__all__ = ["MODEL_ID", "openai_routes"]

log = logging.getLogger("calibrated_chat.openai_api")

MODEL_ID = "calibrated-chat"  # the one model this endpoint lists and answers as
_MAX_BODY = 1024 * 1024
_DONE = object()


def _error(status: int, message: str, code: str, kind: str = "invalid_request_error") -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


def calibration_of(reply: Reply, reply_id: str | None, maps=None) -> dict:
    """What the chat shows under an answer, as the response's `calibration` object (`maps`: the active
    calibration maps, so the summary says when every answer in the domain is checked)."""
    return {"confidence": reply.confidence, "raw_confidence": reply.raw_confidence, "domain": reply.domain,
            "domain_description": reply.domain_description, "domain_probability": reply.domain_probability, "needs_review": reply.needs_review,
            "review_reasons": list(reply.review_reasons), "map_version": reply.map_version,
            "confidence_low": reply.confidence_low, "confidence_high": reply.confidence_high,
            "range_level": reply.range_level, "ood_score": reply.ood_score, "extrapolating": reply.extrapolating,
            "model": reply.model, "reply_id": reply_id, "summary": render.badge_sentence(reply, maps)}


def _text(content) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        texts = [p.get("text", "") for p in content if p.get("type") == "text"]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)
    raise InputError("each message's content must be a string or a list of text parts")


def parse_request(body: object) -> tuple[str, list[dict], bool, bool]:
    """(question, history, stream, include_usage) from a chat-completions body; InputError when malformed.

    The question is the last user message; earlier user/assistant messages are the history
    (the last HISTORY_TURNS exchanges); system messages are ignored, because the prompt that
    makes the model state its confidence is the one the maps were fitted with."""
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object with `model` and `messages`")
    model = body.get("model", MODEL_ID)
    if model != MODEL_ID:
        raise InputError(f"unknown model {model!r}: this server answers as {MODEL_ID!r} (GET /v1/models)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InputError("`messages` must be a non-empty list of {role, content} objects")
    turns = [{"role": m.get("role"), "content": _text(m.get("content", ""))} for m in messages
             if m.get("role") in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise InputError("the last message must be the user's question (role `user`)")
    history = turns[:-1][-2 * HISTORY_TURNS:]
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InputError("`stream` must be true or false")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or not isinstance(options.get("include_usage", False), bool):
        raise InputError("`stream_options` must be an object whose `include_usage` is true or false")
    return turns[-1]["content"], history, stream, options.get("include_usage", False)


class OpenAIEndpoint:
    """The routes, over the app's WebContext (the same assistant, store, users and fair gate as the chat)."""

    def __init__(self, ctx: WebContext):
        self.ctx = ctx

    def routes(self) -> list[Route]:
        return [Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.completions, methods=["POST"])]

    def caller(self, request: Request) -> str | None | JSONResponse:
        """The user an API key names ("" without users, on this computer only), or the refusal."""
        ctx, address = self.ctx, request.client.host if request.client else "unknown"
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else None
        if not ctx.users:
            if ctx.anonymous_role == "admin":
                return ""
            log.warning("refused %s from %s: the app has no users file", request.url.path, address)
            return _error(401, "This server has no users, so its API is closed: add users and API keys "
                               "(python -m assistant.web.auth add-key NAME) and restart with --users FILE.",
                          "no_users", "authentication_error")
        user = ctx.users.user_of_key(key)
        if user is None:
            log.warning("refused %s from %s: %s", request.url.path, address,
                        "no API key" if not key else "unknown API key")
            return _error(401, "Missing or unknown API key: send `Authorization: Bearer <key>`; an admin "
                               "makes keys with `python -m assistant.web.auth add-key NAME`.",
                          "invalid_api_key", "authentication_error")
        return user

    async def models(self, request: Request):
        user = self.caller(request)
        if isinstance(user, JSONResponse):
            return user
        return JSONResponse({"object": "list", "data": [
            {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "calibrated-chat"}]})

    async def completions(self, request: Request):
        user = self.caller(request)
        if isinstance(user, JSONResponse):
            return user
        body = await request.body()
        if len(body) > _MAX_BODY:
            return _error(413, f"the request body is over {_MAX_BODY // 1024} KiB", "body_too_large")
        asked = self.question_of(body)
        if isinstance(asked, JSONResponse):
            return asked
        (question, history, stream, include_usage), caller = asked, Caller(user) if user else LOCAL_ADMIN
        try:
            ticket = self.ctx.admission.enter(caller)
        except Busy as err:
            log.info("refused a question from %s: %s", caller, err)
            return JSONResponse({"error": {"message": str(err), "type": "rate_limit_error", "code": "busy"}},
                                status_code=429, headers={"retry-after": str(err.retry_after)})
        answer = Answering(self.ctx, user or None, question, history)
        if stream:
            return StreamingResponse(self._in_turn(ticket, answer.sse(include_usage)),
                                     media_type="text/event-stream", headers={"cache-control": "no-store"})
        try:
            await self.ctx.admission.wait_async(ticket)
            reply, reply_id = await run_in_threadpool(answer.to_end)
        except InputError as err:  # e.g. a remote model server found the prompt too long
            return _error(400, str(err), "invalid_request")
        except CalibratedChatError as err:
            return _error(502, f"the model could not answer: {err}", "model_error", "server_error")
        finally:
            self.ctx.admission.leave(ticket)
        return JSONResponse(answer.completion(reply, reply_id))

    def question_of(self, body: bytes) -> tuple[Question, list[dict], bool, bool] | JSONResponse:
        """`parse_request` of the body, with the question checked and the history fitted to the
        model's context; a 400 naming what is wrong otherwise."""
        try:
            question, history, stream, include_usage = parse_request(json.loads(body or b"null"))
            question = self.ctx.assistant.check_question(question)
        except RecursionError:
            return _error(400, "the request body is nested too deeply to read: send `messages` as a flat "
                               "list of {role, content} objects", "invalid_json")
        except ValueError as err:  # not JSON, or not UTF-8
            return _error(400, f"the request body is not JSON: {err}", "invalid_json")
        except InputError as err:
            return _error(400, str(err), "invalid_request")
        try:
            history = self.ctx.assistant.fit_history(question, history, trim=False)
        except InputError as err:
            return _error(400, str(err), "context_length_exceeded")
        return question, history, stream, include_usage

    async def _in_turn(self, ticket, chunks):
        """`chunks` once the question's turn at the model came (the place is kept while it streams)."""
        try:
            await self.ctx.admission.wait_async(ticket)
            async for chunk in chunks:
                yield chunk
        finally:
            self.ctx.admission.leave(ticket)


class Answering:
    """One request's answer, given and stored through the app's one answering path."""

    def __init__(self, ctx: WebContext, user: str | None, question: Question, history: list[dict]):
        self.ctx, self.question, self.history = ctx, question, history
        self.user, self.session = user, f"api-{secrets.token_hex(8)}"
        self.id, self.created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
        self.cancel = threading.Event()

    def _updates(self) -> Iterator:
        return self.ctx.answer_for(self.user, self.session, self.question, self.history, self.cancel)

    def to_end(self) -> tuple[Reply, str | None]:
        for update, reply_id, _ in self._updates():
            if update.reply is not None:
                return update.reply, reply_id
        raise CalibratedChatError("the model stopped without an answer")  # pragma: no cover

    def completion(self, reply: Reply, reply_id: str | None) -> dict:
        message = {"role": "assistant", "content": reply.answer or ""}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": MODEL_ID,
                "choices": [{"index": 0, "message": message, "finish_reason": _finish_reason(reply)}],
                "calibration": calibration_of(reply, reply_id, self.ctx.assistant.maps), **usage_of(reply)}

    def _chunk(self, delta: dict, finish: str | None = None, **extra) -> str:
        return self._event([{"index": 0, "delta": delta, "finish_reason": finish}], **extra)

    def _event(self, choices: list[dict], **extra) -> str:
        body = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": MODEL_ID,
                "choices": choices, **extra}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    async def sse(self, include_usage: bool = False):
        """The stream: the model's text as reasoning while it writes, then the answer and `calibration`
        (and, when asked, a last chunk with no choices and the `usage`, as OpenAI sends it)."""
        updates, sent = self._updates(), ""
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            while (item := await run_in_threadpool(next, updates, _DONE)) is not _DONE:
                update, reply_id, _ = item
                if update.reply is not None:
                    reply = update.reply
                    yield self._chunk({"content": reply.answer or ""}, _finish_reason(reply),
                                      calibration=calibration_of(reply, reply_id, self.ctx.assistant.maps))
                    if include_usage:  # null where the backend cannot count the prompt
                        yield self._event([], usage=usage_of(reply).get("usage"))
                    break
                written = update.reasoning + ("\n" if update.reasoning and update.answer else "") + update.answer
                if written.startswith(sent) and len(written) > len(sent):
                    yield self._chunk({"reasoning_content": written[len(sent):]})
                    sent = written
            yield "data: [DONE]\n\n"
        except CalibratedChatError as err:
            log.warning("API answer failed: %s", err)
            yield f"data: {json.dumps({'error': {'message': str(err), 'type': 'server_error'}})}\n\n"
        finally:  # the client went away, or the answer ended: stop the model, keep what streamed
            self.cancel.set()
            await run_in_threadpool(updates.close)


def usage_of(reply: Reply) -> dict:
    """{"usage": {...}} with the model's token counts (prompt and reasoning included, as it read and
    wrote them); {} when the backend cannot count the prompt, since a made-up count would mislead."""
    if reply.prompt_tokens is None:
        return {}
    return {"usage": {"prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.tokens,
                      "total_tokens": reply.prompt_tokens + reply.tokens}}


def _finish_reason(reply: Reply) -> str:
    return "length" if "truncated" in reply.review_reasons else "stop"


def openai_routes(ctx: WebContext) -> list[Route]:
    """The endpoint's Starlette routes, for `serve`."""
    return OpenAIEndpoint(ctx).routes()
