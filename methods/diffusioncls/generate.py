"""Conditional sample generation: mask an original at a diffusion step, restore it with the LM.

For each (original, step t) the text is masked by the label-aware schedule (see
:mod:`methods.diffusioncls.schedule`), prefixed with its label prompt, and restored by the
diffusion LM:

* ``"greedy"`` (the reference code): ONE forward pass, argmax at every masked position;
* ``"iterative"`` (DiffusionBERT-style): ``passes`` forward passes; each pass predicts every
  still-masked position and commits the most confident ``ceil(remaining / passes_left)`` of
  them, so later tokens are predicted in the context of earlier ones. ``top_k > 0`` samples
  among the k most likely tokens (with ``temperature``) instead of taking the argmax.

Special tokens, label tokens, [MASK], [PAD] and [UNK] are never predicted. Everything is
batched. Mask draws come from per-item seeds (so a pseudo sample does not depend on what else
is in its batch); top-k sampling uses one torch generator per batch, seeded by the caller.

The output text is spliced back into the original string (:func:`splice`): unchanged tokens
keep their original characters (case, @handles, emoji that the tokenizer maps to [UNK]), so a
pseudo sample whose tokens were all restored unchanged is byte-identical to its parent and is
counted as such, never passed off as new.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from methods.diffusioncls.importance import TextTokens, diffusion_batch
from methods.diffusioncls.schedule import SCHEDULES, cumulative_mask, marginal_mask, mask_prob

DECODINGS = ("greedy", "iterative")


@dataclass
class GenItem:
    """One pseudo sample to make: the original's tokens and weights, the step, the mask seed."""

    toks: TextTokens
    weights: Any  # 1-D tensor, one weight per text token
    label: str
    step: int
    mask_seed: int


@dataclass
class GenOut:
    item: GenItem
    mask: list[bool]  # per text token
    new_ids: list[int]
    text: str
    masked_text: str
    info: dict[str, Any] = field(default_factory=dict)


def draw_item_mask(item: GenItem, T: int, lam: float, schedule: str, min_masked: int = 1):
    """The text-token mask of one item (1-D bool tensor), from its own seed."""
    import torch

    n = len(item.toks.ids)
    if n == 0:
        return torch.zeros(0, dtype=torch.bool)
    w = torch.as_tensor(item.weights, dtype=torch.float32)[:n]
    if schedule == "marginal":
        rng = random.Random(item.mask_seed)
        u = torch.tensor([rng.random() for _ in range(n)])
        m = marginal_mask(u, item.step, T, w, lam)
        score = u - mask_prob(item.step, T, w, lam)  # forced masks: the tokens closest to their threshold
    elif schedule == "cumulative":
        g = torch.Generator().manual_seed(item.mask_seed % (2**63))
        m = cumulative_mask(item.step, T, w.unsqueeze(0), lam, generator=g)[0]
        score = -w
    else:
        raise ValueError(f"unknown schedule {schedule!r}; known {SCHEDULES}")
    k = min(int(min_masked), n)
    if int(m.sum()) < k:
        for j in torch.argsort(score)[:k].tolist():
            m[j] = True
    return m


def banned_token_ids(tokenizer) -> list[int]:
    ids = set(tokenizer.all_special_ids)
    ids.update(tokenizer.convert_tokens_to_ids(t) for t in tokenizer.additional_special_tokens)
    for t in (tokenizer.pad_token_id, tokenizer.mask_token_id, tokenizer.unk_token_id,
              tokenizer.cls_token_id, tokenizer.sep_token_id):
        if t is not None:
            ids.add(int(t))
    return sorted(i for i in ids if i is not None and i >= 0)


def restore(model, input_ids, attention_mask, token_type_ids, mask, banned: Sequence[int], mask_token_id: int,
            decoding: str = "greedy", passes: int = 4, top_k: int = 0, temperature: float = 1.0,
            generator=None):
    """Fill the True positions of ``mask`` (input_ids there may be anything; they become [MASK]).

    Returns new input ids (only masked positions change).
    """
    import torch

    from methods.diffusioncls.diffusion_lm import masked_lm_logits

    if decoding not in DECODINGS:
        raise ValueError(f"unknown decoding {decoding!r}; known {DECODINGS}")
    dev = model.device
    x = input_ids.to(dev).clone()
    attention_mask = attention_mask.to(dev)
    token_type_ids = token_type_ids.to(dev)
    remaining = mask.to(dev).clone()
    x[remaining] = int(mask_token_id)
    banned_t = torch.tensor(list(banned), dtype=torch.long, device=dev)
    n_passes = 1 if decoding == "greedy" else max(1, int(passes))
    with torch.no_grad():
        for p in range(n_passes):
            if not remaining.any():
                break
            logits = masked_lm_logits(model, x, attention_mask, token_type_ids, remaining).float()
            logits[:, banned_t] = float("-inf")
            if top_k and top_k > 0:
                k = min(int(top_k), logits.shape[-1])
                vals, idx = torch.topk(logits / max(float(temperature), 1e-6), k, dim=-1)
                probs = torch.softmax(vals, -1)
                choice = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(dev)
                pred = idx.gather(1, choice.unsqueeze(1)).squeeze(1)
                conf = probs.gather(1, choice.unsqueeze(1)).squeeze(1)
            else:
                probs = torch.softmax(logits, -1)
                conf, pred = probs.max(-1)
            if decoding == "greedy":
                x[remaining] = pred
                remaining[:] = False
                break
            # commit the most confident ceil(remaining / passes_left) positions of each row
            conf_full = torch.full(x.shape, float("-inf"), device=dev)
            conf_full[remaining] = conf
            pred_full = torch.zeros_like(x)
            pred_full[remaining] = pred
            left = n_passes - p
            n_rem = remaining.sum(1)
            n_take = torch.ceil(n_rem.float() / left).long()
            rank = torch.argsort(torch.argsort(conf_full, dim=1, descending=True), dim=1)
            take = remaining & (rank < n_take.unsqueeze(1))
            x[take] = pred_full[take]
            remaining &= ~take
    return x.cpu()


def _wide(ch: str) -> bool:
    """A CJK ideograph, kana, hangul or full-width form: scripts written without word spaces."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def splice(text: str, offsets: Sequence[tuple[int, int]], replacements: Sequence[str | None],
           truncated_tail: bool = True) -> str:
    """Rebuild ``text`` replacing token j by WordPiece string ``replacements[j]`` (None = keep).

    Gaps between tokens come from the original; a replacement starting with ``##`` attaches to
    the previous token; a whole-word replacement that lands inside a word gets a space, except
    next to CJK (wide) characters, which are written without spaces. The
    characters after the last token (including any truncated tail) are kept verbatim.
    """
    out: list[str] = []
    prev = offsets[0][0] if offsets else 0
    out.append(text[:prev])
    for (s, e), rep in zip(offsets, replacements):
        gap = text[prev:s]
        if rep is None:
            out.append(gap + text[s:e])
        elif rep.startswith("##") and len(rep) > 2:
            out.append(rep[2:])
        else:
            joined = out and out[-1] and out[-1][-1].isalnum() and not _wide(out[-1][-1])
            word = rep[:1].isalnum() and not _wide(rep[:1])
            if gap == "" and joined and word:
                gap = " "
            out.append(gap + rep)
        prev = e
    out.append(text[prev:] if truncated_tail else "")
    return "".join(out)


class DiffusionGenerator:
    """Batched conditional generation with a trained diffusion LM."""

    def __init__(self, model, tokenizer, label_ids: dict[str, int] | None, *, T: int = 32, lam: float = 0.5,
                 schedule: str = "marginal", decoding: str = "greedy", passes: int = 4, top_k: int = 0,
                 temperature: float = 1.0, min_masked: int = 1, batch_size: int = 64, seed: int = 0):
        self.model = model.eval()
        self.tok = tokenizer
        self.label_ids = label_ids
        self.T, self.lam, self.schedule = int(T), float(lam), schedule
        self.decoding, self.passes, self.top_k, self.temperature = decoding, int(passes), int(top_k), float(temperature)
        self.min_masked = int(min_masked)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.banned = banned_token_ids(tokenizer)
        if decoding not in DECODINGS:
            raise ValueError(f"unknown decoding {decoding!r}; known {DECODINGS}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; known {SCHEDULES}")

    def generate(self, items: Sequence[GenItem], batch_seed: int = 0) -> list[GenOut]:
        import torch

        # longest first keeps padding low; results are returned in input order
        order = sorted(range(len(items)), key=lambda i: -len(items[i].toks.ids))
        done: dict[int, GenOut] = {}
        for b in range(0, len(order), self.batch_size):
            idx = order[b:b + self.batch_size]
            batch = [items[i] for i in idx]
            lids = None if self.label_ids is None else [self.label_ids[it.label] for it in batch]
            ids, att, tt, maskable, start = diffusion_batch(self.tok, [it.toks for it in batch], lids)
            mask = torch.zeros_like(maskable)
            for r, it in enumerate(batch):
                m = draw_item_mask(it, self.T, self.lam, self.schedule, self.min_masked)
                mask[r, start:start + len(m)] = m
            gen = torch.Generator().manual_seed(hash_seed(self.seed, batch_seed, b))
            new = restore(self.model, ids, att, tt, mask, self.banned, self.tok.mask_token_id, self.decoding, self.passes,
                          self.top_k, self.temperature, gen)
            for r, (i, it) in enumerate(zip(idx, batch)):
                n = len(it.toks.ids)
                m = mask[r, start:start + n].tolist()
                new_ids = new[r, start:start + n].tolist()
                reps = [self.tok.convert_ids_to_tokens(t) if mm and t != o else None
                        for mm, t, o in zip(m, new_ids, it.toks.ids)]
                text = splice(it.toks.text, it.toks.offsets, reps) if n else it.toks.text
                masked_text = splice(it.toks.text, it.toks.offsets,
                                     [self.tok.mask_token if mm else None for mm in m]) if n else it.toks.text
                n_masked = sum(m)
                done[i] = GenOut(it, m, new_ids, text, masked_text, {
                    "step": it.step, "T": self.T, "mask_rate": n_masked / max(1, n), "n_masked": n_masked,
                    "n_changed": sum(1 for x in reps if x is not None), "n_tokens": n,
                    "truncated_tokens": it.toks.truncated,
                })
        return [done[i] for i in range(len(items))]


def hash_seed(*parts: Any) -> int:
    from bench.api import stable_hash

    return int(stable_hash(list(parts), 12), 16)


__all__ = ["DECODINGS", "DiffusionGenerator", "GenItem", "GenOut", "restore", "splice", "draw_item_mask",
           "banned_token_ids"]
