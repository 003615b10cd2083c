"""``char-lstm``: the character LSTM of the tutorials (char-rnn and its PyTorch ports), kept faithful.

An embedding, a 2-layer LSTM (dropout between the layers) and a linear head; trained with Adam-style
updates on random windows of 100 characters, each from a zero state, with the gradient norm clipped
at 5 as char-rnn does. Generation carries the hidden state, so a new character costs one LSTM step.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from genforge.core.registry import register
from genforge.text.models.base import TextConfig, TextGenerator


class CharLSTMConfig(TextConfig):
    block_size: int = Field(100, ge=2, description="characters per training sequence (char-rnn's seq_length)")
    batch_size: int = Field(64, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    grad_clip: float = Field(5.0, ge=0)
    embedding_dim: int = Field(64, ge=1)
    hidden_size: int = Field(256, ge=1)
    num_layers: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


class CharLSTM(nn.Module):
    """ids (B, T) -> logits (B, T, vocab); ``forward_state`` also takes and returns the (h, c) state."""

    def __init__(self, vocab_size: int, embedding_dim: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_size, num_layers, batch_first=True,
                            dropout=dropout if num_layers > 1 else 0.0)
        self.head = nn.Linear(hidden_size, vocab_size)

    def forward_state(self, idx: torch.Tensor, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.forward_state(idx)[0]


class LSTMDecoder:
    """The sampling loop's view of a :class:`CharLSTM`: the hidden state is carried; no context limit."""

    context = None

    def __init__(self, lm: CharLSTM):
        self.lm = lm

    def start(self, ids: torch.Tensor):
        logits, state = self.lm.forward_state(ids)
        return logits[:, -1], state

    def step(self, ids: torch.Tensor, state):
        logits, state = self.lm.forward_state(ids, state)
        return logits[:, -1], state


@register
class CharLSTMModel(TextGenerator):
    name = "char-lstm"
    description = "the tutorials' character LSTM: embedding, 2-layer LSTM, linear head (the baseline)"
    Config = CharLSTMConfig
    arch_keys = ("embedding_dim", "hidden_size", "num_layers")

    def make_lm(self, vocab_size: int) -> CharLSTM:
        c = self.config
        return CharLSTM(vocab_size, c.embedding_dim, c.hidden_size, c.num_layers, c.dropout)

    def decoder(self, lm: CharLSTM) -> LSTMDecoder:
        return LSTMDecoder(lm)
