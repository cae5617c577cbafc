"""A tiny BERT built from a config (no download) and a learnable synthetic task, for the
Hugging Face Trainer tests (one process and DDP)."""

from __future__ import annotations

import importlib

import torch

# the integration first: it repairs torchvision, which transformers imports
importlib.import_module("budgetopt.integration.transformers")
transformers = importlib.import_module("transformers")


def dataset(n: int, seed: int) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 32, (n, 8), generator=g)
    labels = (ids[:, 0] < 16).long()  # learnable: the first token's half of the vocabulary
    return [{"input_ids": i, "labels": y} for i, y in zip(ids, labels)]


def tiny_bert() -> torch.nn.Module:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=16, num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def accuracy(prediction) -> dict:
    logits, labels = prediction
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}
