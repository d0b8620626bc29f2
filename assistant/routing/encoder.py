"""`BertSentenceEncoder`: a sentence-transformers BERT model (the shipped all-MiniLM-L6-v2) in plain torch.

Importing sentence-transformers pulls in transformers' model-loading machinery (torch._dynamo,
torch.distributed, sympy) and scikit-learn: about 5 s on the 2-core dev box, over half of the
app's start-up, for a 6-layer BERT whose forward pass fits on a screen. This module runs the
same folder — `model.safetensors`, `tokenizer.json` (through `tokenizers`), mean pooling,
normalization — with torch alone. `routing.load_embedder` uses it for folders laid out exactly
so (`BertSentenceEncoder.supports`) and SentenceTransformer for anything else;
tests/assistant/test_encoder.py checks both give the same vectors.

Only `encode` is offered, taking the arguments `routing.embed` passes to SentenceTransformer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn

__all__ = ["BertSentenceEncoder"]

_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


class _Layer(nn.Module):
    """One post-norm BERT encoder layer."""

    def __init__(self, hidden: int, heads: int, inner: int, eps: float):
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value, self.attn_out = (nn.Linear(hidden, hidden) for _ in range(4))
        self.attn_norm = nn.LayerNorm(hidden, eps=eps)
        self.up, self.down = nn.Linear(hidden, inner), nn.Linear(inner, hidden)
        self.out_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        split = lambda y: y.view(b, t, self.heads, h // self.heads).transpose(1, 2)  # noqa: E731
        context = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        x = self.attn_norm(x + self.attn_out(context.transpose(1, 2).reshape(b, t, h)))
        return self.out_norm(x + self.down(F.gelu(self.up(x))))


class BertSentenceEncoder(nn.Module):
    """Token, position and type embeddings, BERT layers, mean pooling over real tokens, unit length."""

    def __init__(self, folder: Path | str):
        super().__init__()
        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        hidden, eps = config["hidden_size"], config["layer_norm_eps"]
        self.word = nn.Embedding(config["vocab_size"], hidden)
        self.position = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_type = nn.Embedding(config["type_vocab_size"], hidden)
        self.embed_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )
        self.load_state_dict(_renamed(load_file(folder / "model.safetensors"), len(self.layers)))
        self.eval()
        max_length = json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()  # tokenizer.json pads to 128; each text runs alone, unpadded

    @staticmethod
    def supports(folder: Path | str) -> bool:
        """True for a sentence-transformers folder holding a BERT with mean pooling and normalization."""
        folder = Path(folder)
        try:
            modules = [m["type"] for m in json.loads((folder / "modules.json").read_text())]
            config = json.loads((folder / "config.json").read_text())
            pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return False
        modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
        return (
            modules == _MODULES
            and config.get("model_type") == "bert"
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and modes == {"pooling_mode_mean_tokens"}
            and (folder / "model.safetensors").is_file()
            and (folder / "tokenizer.json").is_file()
        )

    @torch.inference_mode()
    def forward(self, ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1]).unsqueeze(0)
        x = self.embed_norm(self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids)))
        mask = attention.bool()[:, None, None, :]  # keys a query may attend to
        for layer in self.layers:
            x = layer(x, mask)
        weights = attention.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return F.normalize(pooled, dim=1)

    def encode(self, texts: list[str], **_) -> np.ndarray:
        """(n, hidden) float32 unit vectors, one text per forward pass.

        No padding, so a text's vector never depends on the texts beside it (with int8 layers
        the activation scale is taken per call, and padding would shift it). SentenceTransformer's
        `batch_size` and other arguments are accepted and ignored.
        """
        out = np.zeros((len(texts), self.word.embedding_dim), dtype=np.float32)
        for row, encoding in enumerate(self.tokenizer.encode_batch(list(texts))):
            ids = torch.tensor([encoding.ids])
            out[row] = self(ids, torch.ones_like(ids)).numpy()[0]
        return out


def _renamed(weights: dict, layers: int) -> dict:
    """Hugging Face BertModel tensor names → this module's (the pooler and position_ids are unused)."""
    names = {
        "embeddings.word_embeddings.weight": "word.weight",
        "embeddings.position_embeddings.weight": "position.weight",
        "embeddings.token_type_embeddings.weight": "token_type.weight",
        "embeddings.LayerNorm.weight": "embed_norm.weight",
        "embeddings.LayerNorm.bias": "embed_norm.bias",
    }
    parts = {
        "attention.self.query": "query",
        "attention.self.key": "key",
        "attention.self.value": "value",
        "attention.output.dense": "attn_out",
        "attention.output.LayerNorm": "attn_norm",
        "intermediate.dense": "up",
        "output.dense": "down",
        "output.LayerNorm": "out_norm",
    }
    for i in range(layers):
        for theirs, ours in parts.items():
            for kind in ("weight", "bias"):
                names[f"encoder.layer.{i}.{theirs}.{kind}"] = f"layers.{i}.{ours}.{kind}"
    prefix = "bert." if any(k.startswith("bert.") for k in weights) else ""
    return {ours: weights[prefix + theirs] for theirs, ours in names.items()}
