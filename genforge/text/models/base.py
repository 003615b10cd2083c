"""What the language models share: the tokenizer, training on token windows, validation, the best
weights, fine-tuning from a run (fully or with LoRA), ``generate`` and ``sample``.

A family (``gpt``, ``char-lstm``) adds its network (:meth:`TextGenerator.make_lm`) and a
:class:`~genforge.text.sampling.Decoder` over it (:meth:`TextGenerator.decoder`).

The networks: ``lm`` (the language model; with LoRA, its frozen base plus adapters) and ``tracker``
(optimizer steps taken, the best validation loss so far and the weights that reached it, as
buffers, so a checkpoint holds them and a resume is exact). ``model.safetensors`` holds the best
weights (the last ones when there was no validation): those are what ``sample`` uses. Fine-tuning
from a run (fully or with LoRA) is :mod:`~genforge.text.models.finetune`.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from genforge.core.config import ModelConfig, TrainConfig, validate
from genforge.core.errors import ConfigError, DataError
from genforge.core.generator import NeuralGenerator
from genforge.core.train import state as st
from genforge.core.train.batches import TokenWindows
from genforge.core.train.optim import adamw
from genforge.text.data import TextCorpus
from genforge.text.encoding import encode_corpus
from genforge.text.models.finetune import FineTuning
from genforge.text.models.lora import add_lora
from genforge.text.sampling import SamplingOptions, generate, sampling_options
from genforge.text.tokenizers import describe_chars, tokenizer_from_json, train_tokenizer

TOKENIZER_FILE = "tokenizer.json"


class TextConfig(ModelConfig):
    """Hyper-parameters every language model has (training, validation, fine-tuning)."""

    block_size: int = Field(128, ge=2, description="tokens per training window (the gpt's context)")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0, description="AdamW decay of the weight matrices")
    betas: tuple[float, float] = (0.9, 0.99)
    warmup_steps: int = Field(100, ge=0, description="linear learning-rate warm-up")
    grad_clip: float = Field(1.0, ge=0, description="clip the gradient norm (0: never)")
    eval_every: int = Field(250, ge=1, description="validation loss every N steps")
    eval_windows: int = Field(32, ge=1, description="validation windows of block_size tokens per evaluation")
    init_run: str | None = Field(None, description="the run this one was fine-tuned from (--init)")
    init_sha256: str | None = Field(None, description="SHA-256 of that run's model.safetensors")
    lora_rank: int = Field(0, ge=0, description="LoRA adapters of this rank (0: full training)")
    lora_alpha: float | None = Field(None, gt=0)


class Tracker(nn.Module):
    """Optimizer steps taken, the best validation loss, its step, and the weights that reached it."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.names = list(module.state_dict())
        for i, value in enumerate(module.state_dict().values()):
            self.register_buffer(f"w{i}", value.detach().clone())
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("best_loss", torch.tensor(float("inf")))
        self.register_buffer("best_step", torch.zeros((), dtype=torch.long))

    @property
    def has_best(self) -> bool:
        return bool(torch.isfinite(self.best_loss))

    def offer(self, module: nn.Module, loss: float, step: int) -> bool:
        """Keep ``module``'s weights if ``loss`` is the lowest so far; returns whether it was."""
        if not loss < float(self.best_loss):
            return False
        for i, value in enumerate(module.state_dict().values()):
            getattr(self, f"w{i}").copy_(value)
        self.best_loss.fill_(loss)
        self.best_step.fill_(step)
        return True

    def best_state(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"w{i}") for i, name in enumerate(self.names)}


class TextGenerator(FineTuning, NeuralGenerator):
    """A language model over a tokenizer, trained by the one Trainer on random token windows."""

    modality: ClassVar[str] = "text"
    Config: ClassVar[type[ModelConfig]] = TextConfig
    sampling_names: ClassVar[tuple[str, ...]] = ("lm",)
    sampling_only: ClassVar[tuple[str, ...]] = ("tracker",)
    lora_targets: ClassVar[tuple[str, ...]] = ()  # names of the Linear layers LoRA adapts (none: no LoRA)
    arch_keys: ClassVar[tuple[str, ...]] = ("block_size",)  # what fine-tuning must keep

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.config.lora_rank and not self.config.init_run:
            raise ConfigError("lora_rank needs a trained base run: use --init RUN --lora rank=R")
        self.tokenizer = None
        self.start_id: int | None = None   # the token an empty prompt starts from
        self.encoded = None
        self.adapters: nn.ModuleDict | None = None
        self._unknown = "error"
        self._loading = False

    # -- what a family adds -------------------------------------------------------------------------
    def make_lm(self, vocab_size: int) -> nn.Module:  # pragma: no cover - abstract
        """The network: ids (B, T) -> logits (B, T, vocab)."""
        raise NotImplementedError

    def decoder(self, lm: nn.Module):  # pragma: no cover - abstract
        """A :class:`~genforge.text.sampling.Decoder` over ``lm`` (KV cache or carried hidden state)."""
        raise NotImplementedError

    @property
    def context(self) -> int | None:
        """The most tokens the model reads at once (None: unbounded, as an RNN's carried state)."""
        return None

    # -- data -----------------------------------------------------------------------------------------
    def adopt_data(self, corpus, **_options) -> None:
        """Train the tokenizer (or check the corpus fits the one the model has), encode the corpus and check
        that it holds at least one training window."""
        if not isinstance(corpus, TextCorpus):
            raise DataError(f"model '{self.name}' learns from text: give genforge.load_text(path) or a path, "
                            f"got {type(corpus).__name__}")
        unknown = corpus.unknown
        if unknown not in (None, "map"):
            raise ConfigError(f"--unknown takes 'map' (characters the base never saw become its unknown symbol), "
                              f"got '{unknown}'")
        if self.tokenizer is None:
            if unknown:
                raise ConfigError("--unknown map applies when fine-tuning a char model (--init RUN); a new tokenizer "
                                  "knows every character of its corpus, so drop --unknown")
            self.tokenizer = train_tokenizer(corpus.tokenizer, corpus.documents, corpus.vocab_size)
            self.start_id = self._start_token(corpus)
        else:
            self._check_fits(corpus, unknown)
        self._unknown = unknown or "error"
        self.encoded = encode_corpus(self.tokenizer, corpus, self._unknown)
        n, block = len(self.encoded.train), self.config.block_size
        if n < block + 1:
            raise DataError(f"the corpus is shorter than one block: its training split has {n} tokens and a block of "
                            f"{block} needs {block + 1}; give more text or a smaller block "
                            f"(--set block_size={max(2, n // 2)})")

    def _start_token(self, corpus: TextCorpus) -> int:
        newline = self.tokenizer.encode("\n", unknown="map")
        if len(corpus.documents) == 1 and len(newline) == 1 and newline[0] != self.tokenizer.unk_id:
            return int(newline[0])
        return int(self.tokenizer.eod_id)

    def _check_fits(self, corpus: TextCorpus, unknown: str | None) -> None:
        tok = self.tokenizer
        if self.config.init_run and (corpus.tokenizer or corpus.vocab_size):  # a resume reloads what it was trained on
            raise ConfigError(f"this model keeps its {tok.kind} tokenizer of {tok.vocab_size} ids (a fine-tuned run "
                              f"uses its base's); drop --tokenizer/--vocab-size")
        if unknown and tok.kind != "char":
            raise ConfigError("--unknown map is for char tokenizers; a bpe tokenizer encodes every character, so "
                              "drop --unknown")
        missing = sorted(set().union(*(tok.unknown_chars(d) for d in corpus.documents)))
        if missing and unknown != "map":
            raise DataError(f"the corpus has {len(missing)} character(s) the base run's char tokenizer never saw: "
                            f"{describe_chars(missing)}; map them to its unknown symbol with --unknown map, or train a new "
                            f"run on this corpus")

    def batch_source(self, corpus):
        self.encoded = encode_corpus(self.tokenizer, corpus, self._unknown)
        return TokenWindows(self.encoded.train, self.config.block_size)

    def train_config(self, data, options: dict[str, Any]) -> TrainConfig:
        """Training options; ``epochs`` becomes steps (passes over the training tokens)."""
        options = dict(options)
        epochs = options.pop("epochs", None)
        if epochs is not None:
            if not epochs > 0:
                raise ConfigError(f"--epochs must be positive, got {epochs}")
            from genforge.core.train import distributed

            per_step = self.config.batch_size * self.config.block_size * distributed.world_size_planned()
            options["steps"] = max(1, math.ceil(epochs * len(self.encoded.train) / per_step))
        return validate(TrainConfig, options, what="training options")

    # -- networks and the training step -----------------------------------------------------------------
    def check_buildable(self) -> None:
        if self.tokenizer is None:
            raise ConfigError(f"model '{self.name}' needs text before it can be built; call fit(corpus)")

    def make_networks(self) -> dict[str, nn.Module]:
        lm = self.make_lm(self.tokenizer.vocab_size)
        if self.config.init_run and (self.config.lora_rank or not self._loading):
            st.tensors_to_modules(self.base_tensors(), {"lm": lm})
        if self.config.lora_rank:
            self.adapters = add_lora(lm, self.lora_targets, self.config.lora_rank,
                                     self.config.lora_alpha or float(self.config.lora_rank))
        return {"lm": lm, "tracker": Tracker(self.adapters if self.adapters is not None else lm)}

    def trainable(self) -> nn.Module:
        """What training changes and the run saves: the whole network, or its LoRA adapters."""
        return self.adapters if self.adapters is not None else self.nets["lm"]

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = [p for p in self.trainable().parameters() if p.requires_grad]
        decay = 0.0 if self.adapters is not None else self.config.weight_decay
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return {"adamw": adamw([g for g in groups if g["params"]], self.config.lr, tuple(self.config.betas))}

    def state_modules(self) -> dict[str, nn.Module]:
        return {"lm": self.trainable(), "tracker": self.nets["tracker"]}

    def lr_at(self, step: int) -> float:
        """The learning rate of optimizer step ``step`` (0-based): linear warm-up, then constant."""
        warm = self.config.warmup_steps
        return self.config.lr * min(1.0, (step + 1) / warm) if warm else self.config.lr

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        tracker, opt = self.nets["tracker"], self.optimizers["adamw"]
        for group in opt.param_groups:
            group["lr"] = self.lr_at(int(tracker.steps))
        logits = self.nets["lm"](x)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], self.config.grad_clip)
        opt.step()
        tracker.steps += 1
        return {"loss": loss.detach()}

    # -- validation -----------------------------------------------------------------------------------
    @torch.no_grad()
    def validation_loss(self, windows: int | None = None) -> tuple[float, int] | None:
        """Mean loss in nats per token over up to ``windows`` (default ``eval_windows``) evenly spread
        validation windows, and the tokens scored; None when the validation split is shorter than a window.
        Leaves the networks in eval mode."""
        val, block = self.encoded.validation if self.encoded is not None else None, self.config.block_size
        if val is None or len(val) < block + 1:
            return None
        count = max(1, min(windows or self.config.eval_windows, (len(val) - 1) // block))
        starts = torch.linspace(0, len(val) - block - 1, count).long().tolist()
        self.eval()
        lm, total = self.nets["lm"], 0.0
        for i in range(0, count, self.config.batch_size):
            win = torch.stack([torch.as_tensor(val[s:s + block + 1]).long() for s in starts[i:i + self.config.batch_size]])
            win = win.to(self.device)
            logits = lm(win[:, :-1])
            total += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), win[:, 1:].reshape(-1),
                                           reduction="sum"))
        return total / (count * block), count * block

    @property
    def chars_per_token(self) -> float:
        """Characters behind each validation token (1 for char models; about 3-4 for BPE on English)."""
        enc = self.encoded
        return enc.validation_chars / max(1, len(enc.validation)) if enc is not None else 1.0

    @contextlib.contextmanager
    def best_weights(self):
        """Sample with the best validation weights inside the block (the current ones are put back after)."""
        tracker, module = self.nets["tracker"], self.trainable()
        if not tracker.has_best:
            yield
            return
        current = {k: v.clone() for k, v in module.state_dict().items()}
        module.load_state_dict(tracker.best_state())
        try:
            yield
        finally:
            module.load_state_dict(current)

    # -- generation -----------------------------------------------------------------------------------
    def prompt_ids(self, prompt: str) -> tuple[torch.Tensor, list[str]]:
        """The ids generation starts from and any warnings (a prompt longer than the context is cut from the left)."""
        if not isinstance(prompt, str):
            raise ConfigError(f"a prompt must be text, got {type(prompt).__name__}")
        missing = self.tokenizer.unknown_chars(prompt)
        if missing:
            raise ConfigError(f"the prompt has characters this model's char tokenizer never saw: {describe_chars(missing)}; "
                              f"remove or replace them")
        ids = self.tokenizer.encode(prompt) if prompt else []
        warnings = []
        if self.context and len(ids) > self.context:
            warnings.append(f"the prompt is {len(ids)} tokens, longer than the model's context of {self.context}; "
                            f"only its last {self.context} tokens are read (cut from the left)")
            ids = ids[-self.context:]
        ids = torch.as_tensor(ids if len(ids) else [self.start_id], dtype=torch.long)
        return ids.to(self.device), warnings

    def complete(self, prompt: str, n: int, opts: SamplingOptions, *, seed: int | None = None,
                 gen: torch.Generator | None = None, stream=None, use_cache: bool = True,
                 best: bool = True) -> tuple[list[str], list[str]]:
        """``n`` continuations of ``prompt`` as one batch: ``(texts, warnings)``; ``best`` uses the best
        validation weights. ``gen`` (or ``seed``) drives the draws."""
        self.check_fitted()
        ids, warnings = self.prompt_ids(prompt)
        gen = gen if gen is not None else (torch.Generator().manual_seed(seed) if seed is not None else None)
        self.eval()
        with self.best_weights() if best else contextlib.nullcontext():
            texts = generate(self.decoder(self.nets["lm"]), ids, n, opts, eod_id=self.tokenizer.eod_id,
                             decode=self.tokenizer.decode, gen=gen, stream=stream, use_cache=use_cache,
                             banned=self.banned_tokens)
        return texts, warnings

    @property
    def banned_tokens(self) -> tuple[int, ...]:
        """Tokens sampling never draws: ``<unk>`` (no training text holds it) and, when the corpus was one
        document (generation starts from a newline, not from ``<eod>``), the end of document."""
        tok = self.tokenizer
        return tuple(i for i in (tok.unk_id, tok.eod_id if self.start_id != tok.eod_id else None) if i is not None)

    def generate(self, prompt: str = "", *, max_tokens: int | None = None, temperature: float | None = None,
                 top_k: int | None = None, top_p: float | None = None, repetition_penalty: float | None = None,
                 stop=None, seed: int | None = None) -> str:
        """The text that follows ``prompt`` (without the prompt); ``temperature=0`` is greedy."""
        opts = sampling_options(max_tokens, temperature, top_k, top_p, repetition_penalty, stop)
        return self.complete(prompt, 1, opts, seed=seed)[0][0]

    def sample(self, n: int, *, prompt: str = "", seed: int | None = None, **controls) -> list[str]:
        """``n`` texts continuing ``prompt`` (default: from the start of a document); ``controls`` as in
        :meth:`generate`."""
        self.check_count(n, "texts")
        return self.complete(prompt, n, sampling_options(**controls), seed=seed)[0]

    # -- weights --------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tracker = self.nets["tracker"]
        state = tracker.best_state() if tracker.has_best else self.trainable().state_dict()
        return {f"lm.{k}": v for k, v in state.items()}

    def weights_meta(self) -> dict[str, Any]:
        tracker = self.nets.get("tracker")
        best = float(tracker.best_loss) if tracker is not None and tracker.has_best else None
        return {"tokenizer": self.tokenizer.to_json(), "start_id": self.start_id, "best_validation_loss": best,
                "best_step": int(tracker.best_step) if best is not None else None}

    def restore_meta(self, meta: dict) -> None:
        self.tokenizer = tokenizer_from_json(meta["tokenizer"])
        self.start_id = int(meta["start_id"])

    @classmethod
    def from_weights(cls, model_config: dict, tensors: dict[str, torch.Tensor], meta: dict) -> "TextGenerator":
        model = cls(**model_config)
        model.restore_meta(meta)
        model._loading = True
        model.build()
        st.tensors_to_modules(tensors, {"lm": model.trainable()})
        model.eval()
        return model

    def save(self, path: str | Path) -> Path:
        """Save as a run directory (weights, config and a readable tokenizer.json)."""
        from genforge.core import io

        out = super().save(path)
        io.write_text(Path(out) / TOKENIZER_FILE, self.tokenizer.to_json())
        return out
