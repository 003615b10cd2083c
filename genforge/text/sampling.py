"""Sampling text: the controls (:class:`SamplingOptions`), the logit processors and the generation loop.

The loop (:func:`generate`) drives a :class:`Decoder`: ``start(ids)`` reads a window of tokens and
returns the next-token logits with the state that remembers it (a KV cache for ``gpt``, the LSTM's
hidden state for ``char-lstm``); ``step(token, state)`` reads one more token. So the cost of a new
token does not grow with the text already written. A model with a fixed context (``gpt``) sees at
most ``context`` tokens: when its window is full the loop starts again from the newest half of it.
``use_cache=False`` runs the same windows without the state, recomputing every step (the reference
the cache is tested against).

Logits are processed in the usual order: repetition penalty (CTRL's: a seen token's logit is
divided by the penalty when positive, multiplied when negative), temperature (0 = greedy), top-k,
top-p (the smallest set of tokens whose probability reaches ``top_p``). A sample ends at
``max_tokens``, at the end-of-document token, or at a stop string (left out of the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch

from genforge.core.errors import ConfigError

DEFAULT_MAX_TOKENS = 300


@dataclass(frozen=True)
class SamplingOptions:
    """Validated sampling controls (see :func:`sampling_options`)."""

    max_tokens: int = DEFAULT_MAX_TOKENS
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()


def sampling_options(max_tokens: int | None = None, temperature: float | None = None, top_k: int | None = None,
                     top_p: float | None = None, repetition_penalty: float | None = None,
                     stop: Any = None) -> SamplingOptions:
    """Check the controls (None = the default) and return them; a bad one is a one-line ConfigError."""
    def number(value, flag, kind=float):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise ConfigError(f"{flag} must be {'a whole number' if kind is int else 'a number'}, got {value!r}")
        return kind(value)

    max_tokens = DEFAULT_MAX_TOKENS if max_tokens is None else number(max_tokens, "--max-tokens", int)
    if max_tokens < 1:
        raise ConfigError(f"--max-tokens must be at least 1, got {max_tokens}")
    temperature = 1.0 if temperature is None else number(temperature, "--temperature")
    if not temperature >= 0:
        raise ConfigError(f"--temperature must be 0 (greedy) or more, got {temperature:g}")
    if top_k is not None and number(top_k, "--top-k", int) < 1:
        raise ConfigError(f"--top-k must be at least 1 (1 = greedy), got {top_k}; leave it out to keep every token")
    if top_p is not None and not 0 < number(top_p, "--top-p") <= 1:
        raise ConfigError(f"--top-p must be in (0, 1], got {top_p:g}; 1 keeps every token")
    if repetition_penalty is not None and not number(repetition_penalty, "--repetition-penalty") > 0:
        raise ConfigError(f"--repetition-penalty must be positive (1 = none, >1 discourages repeats), "
                          f"got {repetition_penalty:g}")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if any(not isinstance(s, str) or not s for s in stops):
        raise ConfigError("--stop takes non-empty strings")
    return SamplingOptions(max_tokens, temperature, int(top_k) if top_k is not None else None,
                           float(top_p) if top_p is not None else None,
                           float(repetition_penalty) if repetition_penalty is not None else None, stops)


def process_logits(logits: torch.Tensor, history: torch.Tensor, opts: SamplingOptions) -> torch.Tensor:
    """Apply repetition penalty, temperature, top-k and top-p to ``logits`` (B, V) given the tokens so far."""
    logits = logits.float().clone()
    if opts.repetition_penalty not in (None, 1.0) and history.numel():
        seen = logits.gather(1, history)
        logits.scatter_(1, history, torch.where(seen > 0, seen / opts.repetition_penalty, seen * opts.repetition_penalty))
    if opts.temperature == 0:
        return logits
    logits = logits / opts.temperature
    if opts.top_k is not None and opts.top_k < logits.size(-1):
        kth = torch.topk(logits, opts.top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if opts.top_p is not None and opts.top_p < 1:
        ordered, order = torch.sort(logits, dim=-1, descending=True)
        before = torch.softmax(ordered, dim=-1).cumsum(-1) - torch.softmax(ordered, dim=-1)
        drop = before >= opts.top_p  # the mass of the tokens before it already reaches top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def pick(logits: torch.Tensor, opts: SamplingOptions, gen: torch.Generator | None) -> torch.Tensor:
    """The next token of each row: the argmax at temperature 0, else a draw from ``gen``."""
    if opts.temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits, dim=-1).cpu()
    return torch.multinomial(probs, 1, generator=gen).squeeze(1).to(logits.device)


class Decoder(Protocol):
    """What :func:`generate` asks of a model (see the module docstring)."""

    context: int | None

    def start(self, ids: torch.Tensor) -> tuple[torch.Tensor, Any]: ...

    def step(self, ids: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]: ...


def _cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[:min(hits)], True) if hits else (text, False)


class _Stream:
    """Hands the text of one sample to ``emit`` as it grows, holding back what may still change (a partial
    UTF-8 character, the start of a stop string)."""

    def __init__(self, emit: Callable[[str], None], stops: tuple[str, ...]):
        self.emit, self.hold, self.sent = emit, max((len(s) for s in stops), default=1) - 1, 0

    def update(self, text: str, final: bool = False) -> None:
        safe = len(text) if final else max(self.sent, len(text.rstrip("\ufffd")) - self.hold)
        if safe > self.sent:
            self.emit(text[self.sent:safe])
            self.sent = safe


@torch.no_grad()
def generate(decoder: Decoder, prompt: torch.Tensor, n: int, opts: SamplingOptions, *, eod_id: int,
             decode: Callable[[list[int]], str], gen: torch.Generator | None = None,
             stream: Callable[[str], None] | None = None, use_cache: bool = True,
             banned: tuple[int, ...] = ()) -> list[str]:
    """``n`` continuations of ``prompt`` (1-D ids), generated together as one batch; returns their texts.

    ``stream`` (one sample only) receives the text as it is written; ``banned`` are tokens never drawn
    (the unknown symbol, which no training text holds; the end of document, in a one-document corpus).
    """
    t0, context = len(prompt), decoder.context
    ids = torch.empty(n, t0 + opts.max_tokens, dtype=torch.long, device=prompt.device)
    ids[:, :t0] = prompt
    window = max(0, t0 - context) if context else 0
    logits, state = decoder.start(ids[:, window:t0])
    made: list[list[int]] = [[] for _ in range(n)]
    texts, done = [""] * n, [False] * n
    live = _Stream(stream, opts.stop) if stream is not None and n == 1 else None
    for t in range(t0, t0 + opts.max_tokens):
        if banned:
            logits[:, list(banned)] = float("-inf")
        nxt = pick(process_logits(logits, ids[:, :t], opts), opts, gen)
        ids[:, t] = nxt
        for r, token in enumerate(nxt.tolist()):
            if done[r]:
                continue
            if token == eod_id:
                done[r] = True
                continue
            made[r].append(token)
            if opts.stop or live is not None:
                texts[r], done[r] = _cut_at_stop(decode(made[r]), opts.stop)
        if live is not None:
            live.update(texts[0])
        if all(done) or t + 1 == t0 + opts.max_tokens:
            break
        if context and t + 1 - window > context:
            window = t + 1 - context // 2  # the window is full: start again from its newest half
            logits, state = decoder.start(ids[:, window:t + 1])
        elif use_cache:
            logits, state = decoder.step(ids[:, t:t + 1], state)
        else:
            logits, _ = decoder.start(ids[:, window:t + 1])
    texts = [texts[r] if (opts.stop or live is not None) else decode(made[r]) for r in range(n)]
    if live is not None:
        live.update(texts[0], final=True)
    return texts
