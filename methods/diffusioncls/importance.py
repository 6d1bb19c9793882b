"""Importance weights (paper Eq. 1) and the one tokenization they are aligned with.

``w_i = (1/H) sum_h s_i^h``: the attention from the [CLS] query to token i in the classifier's
LAST layer, averaged over its H heads (``outputs.attentions[-1].mean(1)[:, 0, :]``).

Alignment. The classifier reads ``[CLS] text [SEP]``; the diffusion LM reads
``[CLS] <LABEL-x> [SEP] text [SEP]`` (or ``[CLS] text [SEP]`` without the label prompt). The
reference code computes weights on one and masks the other, which shifts every weight by a
position. Here a text is tokenized ONCE (:func:`tokenize_texts`: WordPiece ids with character
offsets, no special tokens); the classifier input and the diffusion input are both built from
those ids, and the weight of text token j is read at classifier position ``1 + j`` and
placed at diffusion position ``text_start + j``. [CLS], [SEP], the label prompt and padding
are never maskable; their weights are dropped.

``norm`` chooses how the text-token weights enter the schedule: ``"none"`` (the paper: the raw
attention share, so the weights of a sentence's tokens sum to at most 1 and ``lam * w`` moves a mean
token's masking probability by about 1/n of ``lam``), ``"sum"`` (renormalised over the text tokens),
``"max"`` (the most important token has weight 1), ``"mean"`` (mean 1 per sentence) or ``"centred"``
(zero mean, scaled to [-1, 1], like DiffusionBERT's centred entropy term: the mean masking rate stays
t/T while label-bearing tokens go earlier and the others later).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NORMS = ("none", "sum", "max", "mean", "centred")


@dataclass
class TextTokens:
    """One text, tokenized once: WordPiece ids (truncated to the budget) and their char offsets."""

    text: str
    ids: list[int]
    offsets: list[tuple[int, int]]
    truncated: int = 0  # tokens dropped beyond the budget (their text is kept verbatim on output)


def tokenize_texts(tokenizer, texts: Sequence[str], max_text_tokens: int) -> list[TextTokens]:
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, truncation=False)
    out = []
    for t, ids, offs in zip(texts, enc["input_ids"], enc["offset_mapping"]):
        n = min(len(ids), max_text_tokens)
        out.append(TextTokens(t, list(ids[:n]), [tuple(o) for o in offs[:n]], len(ids) - n))
    return out


def classifier_batch(tokenizer, toks: Sequence[TextTokens]):
    """``[CLS] ids [SEP]`` rows, right-padded: (input_ids, attention_mask)."""
    import torch

    n = max(len(t.ids) for t in toks) + 2
    ids = torch.full((len(toks), n), tokenizer.pad_token_id, dtype=torch.long)
    att = torch.zeros((len(toks), n), dtype=torch.long)
    for i, t in enumerate(toks):
        row = [tokenizer.cls_token_id, *t.ids, tokenizer.sep_token_id]
        ids[i, :len(row)] = torch.tensor(row)
        att[i, :len(row)] = 1
    return ids, att


def cls_attention(model, input_ids, attention_mask):
    """Last-layer [CLS]-query attention averaged over heads, shape (batch, seq); padding -> 0."""
    import torch
    from transformers.utils import logging as hf_logging

    was_training = model.training
    model.eval()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the sdpa -> eager fallback warning
    try:
        with torch.no_grad():
            out = model(input_ids=input_ids.to(model.device), attention_mask=attention_mask.to(model.device),
                        output_attentions=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        model.train(was_training)
    if not getattr(out, "attentions", None) or out.attentions[-1] is None:
        raise RuntimeError("the classifier returned no attentions; load it with attn_implementation='eager'")
    w = out.attentions[-1].float().mean(1)[:, 0, :].cpu()
    return w * attention_mask.to(w.dtype)


def normalise(w, norm: str):
    if norm == "none":
        return w
    if norm == "sum":
        return w / w.sum().clamp_min(1e-12)
    if norm == "max":
        return w / w.max().clamp_min(1e-12) if w.numel() else w
    if norm == "mean":  # mean 1 per sentence: lam * w moves a mean token by lam at mid-schedule
        return w / w.mean().clamp_min(1e-12) if w.numel() else w
    if norm == "centred":  # DiffusionBERT-like: zero mean, the most extreme token at +-1
        c = w - w.mean() if w.numel() else w
        return c / c.abs().max().clamp_min(1e-12) if w.numel() else w
    raise ValueError(f"unknown importance norm {norm!r}; known {NORMS}")


def importance_weights(model, tokenizer, toks: Sequence[TextTokens], norm: str = "none",
                       batch_size: int = 64) -> list:
    """Per text, a 1-D tensor of weights for its text tokens (aligned with ``toks[i].ids``)."""
    out = []
    for i in range(0, len(toks), batch_size):
        chunk = toks[i:i + batch_size]
        ids, att = classifier_batch(tokenizer, chunk)
        w = cls_attention(model, ids, att)
        for j, t in enumerate(chunk):
            out.append(normalise(w[j, 1:1 + len(t.ids)].clone(), norm))
    return out


def diffusion_batch(tokenizer, toks: Sequence[TextTokens], label_token_ids: Sequence[int] | None):
    """Diffusion-LM inputs: with label ids ``[CLS] <LABEL> [SEP] text [SEP]`` (token types 0/1),
    without ``[CLS] text [SEP]``. Returns input_ids, attention_mask, token_type_ids, maskable
    (True exactly at text tokens) and ``text_start``."""
    import torch

    start = 3 if label_token_ids is not None else 1
    n = max(len(t.ids) for t in toks) + start + 1
    ids = torch.full((len(toks), n), tokenizer.pad_token_id, dtype=torch.long)
    att = torch.zeros((len(toks), n), dtype=torch.long)
    tt = torch.zeros((len(toks), n), dtype=torch.long)
    maskable = torch.zeros((len(toks), n), dtype=torch.bool)
    for i, t in enumerate(toks):
        prefix = [tokenizer.cls_token_id]
        if label_token_ids is not None:
            prefix += [int(label_token_ids[i]), tokenizer.sep_token_id]
        row = [*prefix, *t.ids, tokenizer.sep_token_id]
        ids[i, :len(row)] = torch.tensor(row)
        att[i, :len(row)] = 1
        if label_token_ids is not None:
            tt[i, start:len(row)] = 1
        maskable[i, start:start + len(t.ids)] = True
    return ids, att, tt, maskable, start


def place_weights(weights: Sequence, shape, start: int):
    """Text-token weights -> a (batch, seq) tensor aligned with :func:`diffusion_batch` rows."""
    import torch

    w = torch.zeros(shape, dtype=torch.float32)
    for i, wi in enumerate(weights):
        w[i, start:start + len(wi)] = torch.as_tensor(wi, dtype=torch.float32)
    return w
