"""HTTP for OpenAI-compatible model servers (vLLM, SGLang, llama.cpp's server, Ollama), standard library only.

`Endpoint.open(method, path, body)` sends one request and returns the response once its
status is 200. It retries, with jittered exponential backoff, only what failed before the
server sent a byte of the reply: a refused or timed-out connection, and the statuses that mean
"busy, try later" (429, 502, 503, 504), waiting what `Retry-After` asks when the server says.
Everything else becomes one `ServerError` line that names the URL and what to do.
`sse_events(response, timeouts)` reads a streamed reply's server-sent events.

The API key lives only in the `Authorization` header this module sends: no message, log line
or attribute of `Endpoint` repeats it, and the URL shown in messages (`Endpoint.url`) drops
any user name, password or query string the base URL held.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import random
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit

from assistant.core.errors import InputError, ModelLoadError

__all__ = ["Endpoint", "Opened", "Retry", "ServerError", "Timeouts", "sse_events"]

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 502, 503, 504})  # the server is busy or restarting: worth another try


class ServerError(ModelLoadError):
    """The model server is unreachable, refused a request or broke off a reply (message says what to do)."""

    def __init__(self, message: str, status: int | None = None, detail: str = ""):
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered with one
        self.detail = detail  # the server's own error message, when it gave one


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0  # seconds to open the TCP (and TLS) connection
    read: float = 300.0  # seconds from sending a request to its first event: prefill can be slow on a busy server
    between_tokens: float = 60.0  # seconds between two events once the reply streams


@dataclass(frozen=True)
class Retry:
    attempts: int = 5  # tries in all, the first included
    base: float = 0.5  # backoff of the first retry in seconds, doubling each time, times a random 0.5-1.5
    cap: float = 30.0  # the longest wait, also for a `Retry-After`


def _retry_after(value: str | None) -> float | None:
    """Seconds a `Retry-After` header asks for (a number of seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _error_detail(raw: bytes) -> str:
    """The message inside an error body (`{"error": {"message": …}}`, `{"detail": …}`), or the body itself."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(data, dict):
        inner = data.get("error", data.get("detail", data.get("message", data)))
        if isinstance(inner, dict):
            inner = inner.get("message", inner)
        text = inner if isinstance(inner, str) else json.dumps(inner)
    return str(text)[:300]


@dataclass
class Opened:
    """A request the server accepted: its response and the socket under it (which http.client lets go of
    for a response that ends with the connection, so it is kept here: timeouts and cancel act on it)."""

    conn: http.client.HTTPConnection
    response: http.client.HTTPResponse
    sock: socket.socket

    def close(self) -> None:
        self.response.close()
        self.conn.close()
        self.sock.close()


class Endpoint:
    """One OpenAI-compatible server: its base URL, the API key's header, timeouts and retry policy."""

    def __init__(self, base_url: str, api_key: str | None, key_env: str,
                 timeouts: Timeouts = Timeouts(), retry: Retry = Retry()):
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ModelLoadError(f"--base-url {base_url!r} is not an http(s) URL: pass e.g. http://127.0.0.1:8000/v1")
        self.https = parts.scheme == "https"
        self.hostname = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname  # the host the model id names
        path = parts.path.rstrip("/")
        self.prefix = path[: -len("/v1")] if path.endswith("/v1") else path  # paths below add /v1/…
        self.url = f"{parts.scheme}://{self.host}{self.prefix}/v1"  # for messages: no user, password or query
        self.key_env = key_env
        self.timeouts = timeouts
        self.retry = retry
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream, application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.has_key = bool(api_key)

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"Endpoint({self.url!r})"

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            conn = http.client.HTTPSConnection(self.hostname, self.port, timeout=self.timeouts.connect,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self.hostname, self.port, timeout=self.timeouts.connect)
        conn.connect()
        conn.sock.settimeout(self.timeouts.read)
        return conn

    def open(self, method: str, path: str, body: dict | None = None) -> Opened:
        """Send one request; return it once the server answered 200. Raises ServerError (or InputError
        for a prompt the server finds too long) once retrying does not help; see the module docstring."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            try:
                conn = self._connect()
            except OSError as error:  # refused, unreachable, DNS, connect timeout, TLS
                if last:
                    raise self._unreachable(error, attempt) from error
                self._wait(attempt, None, f"cannot connect ({error})")
                continue
            try:
                conn.request(method, self.prefix + "/v1" + path, body=data, headers=self._headers)
                sock = conn.sock
                response = conn.getresponse()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                raise self._no_answer(error, path) from error
            if response.status == 200:
                return Opened(conn, response, sock)
            detail = _error_detail(response.read())
            conn.close()
            sock.close()
            if response.status in RETRY_STATUSES and not last:
                self._wait(attempt, _retry_after(response.getheader("Retry-After")), f"status {response.status}")
                continue
            raise self._refused(response.status, detail, path, attempt)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _wait(self, attempt: int, asked: float | None, why: str) -> None:
        backoff = self.retry.base * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
        seconds = min(self.retry.cap, asked if asked is not None else backoff)
        log.info("model server %s: %s; retrying in %.1f s (try %d of %d)", self.url, why, seconds, attempt + 1,
                 self.retry.attempts)
        time.sleep(seconds)

    def _unreachable(self, error: OSError, tries: int) -> ServerError:
        what = "timed out" if isinstance(error, socket.timeout) else str(error) or type(error).__name__
        return ServerError(f"cannot reach the model server at {self.url} ({what}, {tries} tries): start the server "
                           "(see docs/scaling-out.md) or pass its address with --base-url")

    def _no_answer(self, error: Exception, path: str) -> ServerError:
        if isinstance(error, socket.timeout):
            return ServerError(f"the model server at {self.url} did not answer {path} within "
                               f"{self.timeouts.read:.0f} s (read timeout): is it overloaded or stuck?")
        return ServerError(f"the model server at {self.url} dropped the connection before answering {path} "
                           f"({error or type(error).__name__}): is it still running?")

    def _refused(self, status: int, detail: str, path: str, tries: int) -> Exception:
        said = f": {detail}" if detail else ""
        if status in (401, 403):
            how = (f"the key in ${self.key_env} is not one it accepts" if self.has_key
                   else f"no API key was sent (${self.key_env} is not set)")
            return ServerError(f"the model server at {self.url} refused the request ({status}): {how}; set "
                               f"${self.key_env} to the server's key, or name the variable that holds it with "
                               "--api-key-env", status, detail)
        if status == 404:
            return ServerError(f"the model server at {self.url} answered 404 for {path}{said}: check --base-url "
                               "(the server's address, e.g. http://127.0.0.1:8000/v1) and --model (one of its "
                               "/v1/models)", status, detail)
        if status == 400 and "context" in detail.lower():
            return InputError(f"the prompt is too long for the model behind {self.url}{said}: shorten the "
                              "question or start a new conversation")
        if status in RETRY_STATUSES:
            return ServerError(f"the model server at {self.url} is busy ({status} after {tries} tries){said}: "
                               "try again later, or give it more capacity", status, detail)
        return ServerError(f"the model server at {self.url} refused {path} ({status}){said}", status, detail)


def sse_events(opened: Opened, timeouts: Timeouts) -> Iterator[dict]:
    """Yield each `data:` event of a streamed reply as a dict, until `data: [DONE]`.

    The read timeout runs until the first event, the between-token timeout after it. Raises
    ServerError (naming neither the key nor the body) on a timeout, a broken JSON event or a
    stream that ends without `[DONE]`; the caller adds the URL and how far the reply got.
    """
    seen = False
    while True:
        try:
            line = opened.response.readline()
        except socket.timeout as error:
            limit = timeouts.between_tokens if seen else timeouts.read
            kind = "between-token" if seen else "read"
            raise ServerError(f"no token for {limit:g} s ({kind} timeout)") from error
        except (OSError, http.client.HTTPException) as error:
            raise ServerError(f"the connection broke ({error or type(error).__name__})") from error
        if not line:
            raise ServerError("the stream ended before the reply was complete")
        line = line.strip()
        if not line.startswith(b"data:"):
            continue  # blank separators, `: ping` comments, `event:` names
        payload = line[5:].strip()
        if payload == b"[DONE]":
            return
        try:
            event = json.loads(payload)
        except ValueError as error:
            raise ServerError(f"an event that is not JSON ({payload[:80]!r})") from error
        if not seen:
            opened.sock.settimeout(timeouts.between_tokens)
        seen = True
        if isinstance(event, dict) and "error" in event:  # some servers report a mid-stream failure so
            raise ServerError(f"the server reported an error mid-stream: {_error_detail(payload)}")
        if isinstance(event, dict):
            yield event
