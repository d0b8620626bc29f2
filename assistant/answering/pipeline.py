"""The answering pipeline: question -> model -> parsed confidence -> domain -> calibrated reply.

`Assistant.ask` returns one `Reply`; `Assistant.ask_stream` yields `Update`s while
the model writes and the finished `Reply` last. Every step's time is recorded in
`Reply.timings_ms` (generation, parse, embed, calibrate).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from assistant.answering.answer import Answer, conversation, stream_answer
from assistant.answering.consistency import with_agreement
from assistant.answering.parsing import split_reasoning
from assistant.answering.prompts import Prompt, load_prompt
from assistant.calibrated.maps import CalibrationMaps
from assistant.calibrated.mapstore import map_store
from assistant.calibrated.questions import QuestionFeatures
from assistant.calibrated.support import Support, support_of
from assistant.core.config import DEFAULT_PROMPT, ModelConfig, default_data_dir
from assistant.core.domainfile import load_domains
from assistant.core.errors import InputError, MapError
from assistant.core.reply import REVIEW_REASONS, Reply
from assistant.core.signals import Signals
from assistant.models.backend import Backend, GenerationOptions, Message
from assistant.models.registry import load_backend
from assistant.routing.learn import load_router
from assistant.routing.router import load_embedder

__all__ = ["Assistant", "Question", "Update", "clean_question"]

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_TAGS = re.compile(r"</?answer>", re.IGNORECASE)
# The stated confidence is shown in the badge, not in the answer text; also hide a
# tag still being streamed ("<conf").
_CONFIDENCE_TAIL = re.compile(r"<confidence>.*|<(c(o(n(f(i(d(e(n(c(e)?)?)?)?)?)?)?)?)?)?$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Update:
    reasoning: str  # reasoning trace so far
    answer: str  # visible answer text so far (answer/confidence tags stripped)
    reply: Reply | None = None  # the finished Reply, on the last update only


@dataclass(frozen=True)
class Question:
    """A question as `Assistant.check_question` passed it: cleaned, and within the model's limits.
    Made once per request; `ask_stream` takes it as it is (a plain string it checks first)."""

    text: str  # without control characters and surrounding space
    tokens: int | None  # the model's tokens in `text`; None when the backend cannot count them


def clean_question(question: str, max_chars: int) -> str:
    """Strip control characters and surrounding space; refuse empty or over-long questions.

    The messages are for the person typing (in the chat or through the API), who cannot change
    the server's limits: they say what to do, not which flag an operator would raise.
    """
    if not isinstance(question, str):
        raise InputError(f"the question must be text, not {type(question).__name__}")
    # Lone surrogates (invalid UTF-8 decoded with surrogateescape) become U+FFFD.
    question = _SURROGATE.sub("\ufffd", question)
    question = _CONTROL.sub("", question).strip()
    if not question:
        raise InputError("the question is empty: type a question and send it again")
    if len(question) > max_chars:
        raise InputError(
            f"the question is {len(question):,} characters long; the limit is {max_chars:,}: "
            "please shorten it, or ask about one part at a time"
        )
    return question


def _words(tokens: int) -> int:
    return max(1, round(tokens * 0.75))  # English text runs at about 3 words to 4 tokens


def _without_oldest_exchange(turns: list[Message]) -> list[Message]:
    """`turns` less the first message and any answers that followed it, up to the next question."""
    rest = turns[1:]
    while rest and rest[0].get("role") != "user":
        rest = rest[1:]
    return rest


def _visible(final: str) -> str:
    return _TAGS.sub("", _CONFIDENCE_TAIL.sub("", final)).strip()


class Assistant:
    """Answers questions with a calibrated confidence.

    backend: streams the model's text; prompt: how the question is asked;
    router: picks the domain (anything with `route(question) -> Route`);
    maps: the active `CalibrationMaps`, or None to run uncalibrated;
    self_consistency: sampled answers per question whose agreement is a signal (0: none; k more
    generations per answer, decoded together: assistant.answering.consistency).
    """

    def __init__(
        self,
        backend: Backend,
        prompt: Prompt,
        router,
        maps=None,
        *,
        options: GenerationOptions = GenerationOptions(),
        max_question_chars: int = 8000,
        max_question_tokens: int = 512,
        map_store=None,
        domains=None,
        self_consistency: int = 0,
    ):
        if isinstance(self_consistency, bool) or not isinstance(self_consistency, int) or self_consistency < 0:
            raise InputError(f"self-consistency must be a whole number of samples, 0 or more, not {self_consistency!r}")
        self.backend = backend
        self.prompt = prompt
        self.router = router
        self.maps = maps
        self.options = options  # answer.py adds the prompt's probe (GenerationOptions.probe) where none is set
        self.max_question_chars = max_question_chars
        self.max_question_tokens = max_question_tokens  # checked when the backend counts tokens
        self.map_store = map_store  # where reload_maps reads the active version; None: nothing to reload
        self.domains = domains  # the DomainSet the router was fitted on (descriptions); None: names only
        self.self_consistency = self_consistency
        self._map_problem: str | None = None  # the last map failure `follow_maps` logged (each is logged once)
        if maps is not None and not maps.matches(backend.model_id, prompt.id):
            log.warning(
                "calibration maps %s were fitted for model %r / prompt %r, not %r / %r: "
                "every answer will be flagged 'uncalibrated' (run `calibrate fit` for this pair)",
                maps.version, maps.model, maps.prompt, backend.model_id, prompt.id,
            )
        if maps is not None and maps.reads_agreement and not self_consistency:
            log.warning("calibration maps %s read the agreement of sampled answers, but self-consistency is off: "
                        "every answer's agreement counts as its fitting average (start with --self-consistency K, "
                        "the K the fitting answers were collected with)", maps.version)

    @classmethod
    def from_config(
        cls,
        model_config=None,
        *,
        prompt_id: str = DEFAULT_PROMPT,
        maps_dir: Path | None = None,
        data_dir: Path | None = None,
        allow_uncalibrated: bool = False,
        options: GenerationOptions = GenerationOptions(),
        max_question_chars: int = 8000,
        max_question_tokens: int = 512,
        self_consistency: int = 0,
    ) -> "Assistant":
        """Load the model, prompt, router and active maps. Errors name what to fix."""
        store = map_store(maps_dir, data_dir)
        prompt = load_prompt(prompt_id)
        usable = True
        try:  # every pair's active map must load, checked before the model loads: a broken one fails fast
            for version in store.active_pairs().values():
                store.load(version)
        except MapError as err:
            if not allow_uncalibrated:
                raise
            # one line naming the file and field, as when refusing to start; a traceback says no more
            log.warning("active calibration map is invalid (%s); running uncalibrated", err)
            usable = False
        backend = load_backend(model_config or ModelConfig())  # before the router: a bad model fails fast
        folder = data_dir or default_data_dir()
        domains = load_domains(folder)
        maps = store.active(backend.model_id, prompt.id) if usable else None  # this model's and prompt's own
        router = load_router(folder, domains, embedder=load_embedder())
        router.route("warm up")  # first encode initialises torch kernels; keep that out of the first answer
        return cls(backend, prompt, router, maps, options=options, max_question_chars=max_question_chars,
                   max_question_tokens=max_question_tokens, map_store=store, domains=domains,
                   self_consistency=self_consistency)

    def reload_maps(self) -> str | None:
        """Re-read this model's and prompt's active map version from `map_store`; return it (None if none)."""
        if self.map_store is None:
            raise MapError("this assistant was built without a maps folder, so there is nothing to reload")
        self.maps = self.map_store.active(self.backend.model_id, self.prompt.id)
        return self.map_version

    @property
    def map_version(self) -> str | None:
        """The version of the maps this assistant applies; None when it answers uncalibrated."""
        return self.maps.version if self.maps else None

    def follow_maps(self) -> str | None:
        """Reload when the active version of this model and prompt in `map_store` is not the one loaded
        (another process activated or rolled back one); return the version applied after. A version that
        fails to load leaves the old maps in use and is logged once, in one line."""
        if self.map_store is None:
            return self.map_version
        try:
            version = self.map_store.active_version(self.backend.model_id, self.prompt.id)
            if version == self.map_version:
                return version
            maps = None if version is None else self.map_store.load(version)
        except MapError as err:
            if str(err) != self._map_problem:
                log.warning("calibration maps not reloaded, %s stays in use: %s", self.map_version or "none", err)
            self._map_problem = str(err)
            return self.map_version
        log.info("calibration maps %s now in use (was %s)", version or "none", self.map_version or "none")
        self.maps, self._map_problem = maps, None
        return version

    # -- answering ---------------------------------------------------------------------------

    def check_question(self, question: str) -> Question:
        """The cleaned question, or InputError for the person typing when it is empty, too long in
        characters, or longer in tokens than this model is given to read (`max_question_tokens`):
        a long question holds the one model for everyone while it is read, for no useful answer."""
        text = clean_question(question, self.max_question_chars)
        tokens = self.backend.count_tokens(text) if self.backend.capabilities.counts_tokens else None
        if tokens is not None and tokens > self.max_question_tokens:
            limit = self.max_question_tokens
            raise InputError(
                f"the question is too long for this model to read at once: about {_words(tokens):,} words, "
                f"and it takes up to about {_words(limit):,} ({limit:,} tokens); please shorten it, or ask "
                "about one part at a time"
            )
        return Question(text, tokens)

    def fit_history(self, question: Question, history: list[Message] | None, *, trim: bool = True) -> list[Message] | None:
        """`history` as it can go to the model with `question`: the whole prompt must fit the model's
        context (`backend.context_tokens`, counted by `backend.count_prompt`) and leave room for the
        answer (`options.max_new_tokens`, at most half the context). With `trim` the oldest exchanges
        are left out until it fits; without, InputError says the conversation is too long. InputError
        also when the question alone does not fit. Backends that cannot count are trusted as they are."""
        if not self.backend.capabilities.counts_tokens or not self.backend.context_tokens:
            return history
        context, count = self.backend.context_tokens, self.backend.count_prompt
        room = min(self.options.max_new_tokens, context // 2)
        turns = list(history or [])
        while (tokens := count(conversation(self.prompt, question.text, turns))) > context - room:
            if not turns:
                raise InputError(f"the question is too long for this model: with its instructions it is {tokens:,} "
                                 f"tokens, and the model reads at most {context - room:,} (it keeps {room:,} of its "
                                 f"{context:,}-token context for the answer); please shorten it")
            if not trim:
                raise InputError(f"the conversation is too long for this model: with its earlier messages the prompt "
                                 f"is {tokens:,} tokens, and the model reads at most {context - room:,} (it keeps "
                                 f"{room:,} of its {context:,}-token context for the answer); send fewer or shorter "
                                 "earlier messages, or start a new conversation")
            turns = _without_oldest_exchange(turns)
        if len(turns) < len(history or []):
            log.info("left out %d earlier messages so the conversation fits the model's context",
                     len(history) - len(turns))
        return turns if history is not None else None

    def ask(self, question: str | Question, history: list[Message] | None = None) -> Reply:
        """Answer one question; return the finished Reply."""
        for update in self.ask_stream(question, history):
            if update.reply is not None:
                return update.reply
        raise AssertionError("ask_stream ended without a reply")  # pragma: no cover

    def ask_stream(
        self,
        question: str | Question,
        history: list[Message] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Update]:
        """Yield `Update`s while the model writes; the last one carries the Reply. A `Question` from
        `check_question` is not checked again; a string is checked here."""
        if not isinstance(question, Question):
            question = self.check_question(question)
        history = self.fit_history(question, history)
        start = time.perf_counter()
        text = ""
        stream = stream_answer(self.backend, self.prompt, question.text, self.options, history=history, cancel=cancel)
        for piece in stream:
            text += piece
            reasoning, final = split_reasoning(text)
            yield Update(reasoning=reasoning, answer=_visible(final))
        answer = stream.result
        timings = {"parse": answer.parse_ms, "generation": (time.perf_counter() - start) * 1000 - answer.parse_ms}
        if self.self_consistency:
            t = time.perf_counter()
            answer = with_agreement(self.backend, self.prompt, answer, conversation(self.prompt, question.text, history),
                                    self.self_consistency, self.options, cancel)
            timings["self_consistency"] = (time.perf_counter() - t) * 1000
        reply = self._finish(question.text, answer, timings)
        yield Update(reasoning=reply.reasoning, answer=reply.answer or "", reply=reply)

    def _finish(self, question: str, answer: Answer, timings: dict[str, float]) -> Reply:
        parsed = answer.parsed
        reasons = set(answer.issues)

        t = time.perf_counter()
        route = self.router.route(question)
        timings["embed"] = (time.perf_counter() - t) * 1000
        if not route.confident:
            reasons.add("uncertain_domain")

        t = time.perf_counter()
        maps = self.maps  # read once: a reload while this answer is calibrated cannot mix two versions
        signals = answer.signals
        confidence, map_version, score = None, None, None  # no final answer: nothing to be right about, so no figure
        if parsed.answer is not None:
            features = QuestionFeatures.of(question, route.embedding)
            confidence, map_version, score = self._calibrate(maps, route.domain, signals, features, reasons)
        support = self._support(maps, route, score, confidence, reasons)
        timings["calibrate"] = (time.perf_counter() - t) * 1000

        ordered = tuple(r for r in REVIEW_REASONS if r in reasons)
        return Reply(
            answer=parsed.answer,
            reasoning=parsed.reasoning,
            raw_confidence=parsed.raw_confidence,
            confidence=confidence,
            domain=route.domain,
            domain_description=self.domains.description(route.domain) if self.domains else "",
            domain_probability=round(float(route.probability), 4),
            needs_review=bool(ordered),
            review_reasons=ordered,
            model=self.backend.model_id,
            prompt=self.prompt.id,
            map_version=map_version,
            timings_ms={k: round(v, 3) for k, v in timings.items()},
            question=question,
            raw_output=answer.raw_output,
            tokens=answer.stats.tokens,
            prompt_tokens=answer.stats.prompt_tokens,
            signals=signals,
            **support.reply_fields(),
        )

    def _calibrate(self, maps: CalibrationMaps | None, domain: str, signals: Signals, question: QuestionFeatures,
                   reasons: set) -> tuple[float | None, str | None, float | None]:
        """(calibrated confidence, map version, the score the map read) of the answer's signals (see
        assistant.core.signals) and its question (for question-aware maps); add `uncalibrated` /
        `low_confidence` to reasons."""
        if maps is None:
            reasons.add("uncalibrated")
            return None, None, None
        if not maps.matches(self.backend.model_id, self.prompt.id):
            # A map is only valid for the (model, prompt) it was fitted on: another model's figure
            # would be presented as calibrated when it is not. Only the model's own figure is shown.
            reasons.add("uncalibrated")
            return None, None, None
        dmap = maps.map_for(domain)
        score = dmap.score(signals.to_dict(), question)  # maps read signals as records hold them
        if score is None:
            return None, maps.version, None
        confidence = dmap(score)
        if maps.needs_review(domain, confidence):
            reasons.add("low_confidence")
        return round(confidence, 4), maps.version, score

    def _support(self, maps: CalibrationMaps | None, route, score: float | None, confidence: float | None,
                 reasons: set) -> Support:
        """The range on `confidence` and how far the question lies from the map's fitting questions
        (assistant.calibrated.support); add `unlike_fitting` to reasons when it lies beyond the threshold. A
        Route without an `embedding` gives no distance."""
        if maps is None or not maps.matches(self.backend.model_id, self.prompt.id):
            return Support()
        support = support_of(maps, route.domain, score, confidence, route.embedding)
        if support.extrapolating:
            reasons.add("unlike_fitting")
        return support

