"""The diffusion LM of DiffusionCLS (once per cell): build, train, save/load, restore.

:func:`train_diffusion_lm`: a ``*ForMaskedLM`` whose encoder is the proxy classifier's fine-tuned
encoder and whose MLM head comes from the masked LM of :func:`methods.common.mlm.adapted_mlm_dir`,
with one new special token per label, trained time-agnostically: per sequence t ~ U{1..T}, tokens
masked by the label-aware schedule, cross-entropy on the masked positions only.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.api.io import seal
from methods.common.mlm import hf_quiet

# ------------------------------------------------------------------------------ the diffusion LM


def label_token(label: str) -> str:
    return f"<LABEL-{label}>"


DLM_INITS = ("proxy", "mlm")


def build_diffusion_lm(proxy, mlm_dir: Path, labels: Sequence[str], label_prompt: bool = True,
                       init: str = "proxy"):
    """``*ForMaskedLM`` = the proxy's fine-tuned encoder + the MLM head of ``mlm_dir``.

    ``init="proxy"`` is the paper's recipe. ``init="mlm"`` keeps the masked LM's own encoder
    (the head was trained on it): with a hub BERT the two barely differ, but the offline MiniLM's
    head was trained on *adapted* top layers that the proxy does not have, so under ``"proxy"``
    the head reads hidden states it never saw (measured in ``scripts/probe_diffusion_lm.py``).

    With ``label_prompt`` one special token per label is added; its embedding starts as the
    mean embedding of the label's word pieces (e.g. "negative"). Returns (model, tokenizer,
    {label: token id} or None).
    """
    import copy

    import torch
    from transformers import AutoModelForMaskedLM

    hf_quiet()
    if init not in DLM_INITS:
        raise ValueError(f"unknown diffusion-LM init {init!r}; known {DLM_INITS}")
    model = AutoModelForMaskedLM.from_pretrained(mlm_dir)
    if init == "proxy":
        enc_state = proxy.model.base_model.state_dict()
        missing, unexpected = model.base_model.load_state_dict(enc_state, strict=False)
        unexpected = [k for k in unexpected if not k.startswith("pooler.")]
        if missing or unexpected:
            raise RuntimeError(f"the proxy's encoder does not fit the masked LM at {mlm_dir}: "
                               f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    model.tie_weights()  # the decoder follows the proxy's (fine-tuned) input embeddings
    tok = copy.deepcopy(proxy.tokenizer)
    label_ids = None
    if label_prompt:
        names = [label_token(lab) for lab in labels]
        tok.add_special_tokens({"additional_special_tokens": names}, replace_additional_special_tokens=False)
        model.resize_token_embeddings(len(tok))
        emb = model.get_input_embeddings().weight
        with torch.no_grad():
            for lab, name in zip(labels, names):
                pieces = tok(str(lab).replace("_", " "), add_special_tokens=False)["input_ids"]
                pieces = [p for p in pieces if p != tok.unk_token_id] or list(range(min(1000, emb.shape[0])))
                emb[tok.convert_tokens_to_ids(name)] = emb[pieces].mean(0)
        label_ids = {lab: tok.convert_tokens_to_ids(label_token(lab)) for lab in labels}
    return model, tok, label_ids


def load_diffusion_lm(directory: Path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    hf_quiet()
    meta = json.loads((Path(directory) / "diffusion_lm.json").read_text())
    model = AutoModelForMaskedLM.from_pretrained(directory).eval()
    tok = AutoTokenizer.from_pretrained(directory)
    return model, tok, meta


def save_diffusion_lm(directory: Path, model, tok, meta: dict[str, Any]) -> None:
    directory = Path(directory)
    tmp = directory.with_name(directory.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "diffusion_lm.json").write_text(json.dumps(meta, indent=2, default=str))
    seal(tmp)
    if directory.exists():
        shutil.rmtree(directory)
    tmp.rename(directory)


def masked_lm_logits(model, input_ids, attention_mask, token_type_ids, positions):
    """MLM logits at the True entries of ``positions`` only (the vocab projection is the costly part)."""
    h = model.base_model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids).last_hidden_state
    return model.cls(h[positions]) if hasattr(model, "cls") else model.get_output_embeddings()(h[positions])


DLM_COVERAGE = ("groups", "random")


def training_pairs(n: int, T: int, coverage: str, n_groups: int, rng: random.Random) -> list[tuple[int, int]]:
    """One epoch of (sequence index, diffusion step), shuffled.

    ``random``: each sequence once, at a step drawn from 1..T (one step per sentence per epoch).
    ``groups``: each sequence once per step group, at a step drawn within the group (the reference
    code trains every sentence at every group each epoch: ``n_groups`` times the training).
    """
    if coverage == "random":
        pairs = [(i, rng.randint(1, T)) for i in range(n)]
    elif coverage == "groups":
        size = T // n_groups
        pairs = [(i, rng.randint(g * size + 1, (g + 1) * size)) for g in range(n_groups) for i in range(n)]
    else:
        raise ValueError(f"unknown diffusion-LM coverage {coverage!r}; known {DLM_COVERAGE}")
    rng.shuffle(pairs)
    return pairs


def planned_steps(n: int, *, epochs: int, batch_size: int, coverage: str, n_groups: int, max_steps: int = 0) -> int:
    """Optimizer steps :func:`train_diffusion_lm` takes on ``n`` sequences: what its time grows with
    (linear in ``n`` until ``max_steps`` caps it), so the grid's ETA can price a fit it has not run."""
    per_epoch = n * (n_groups if coverage == "groups" else 1)
    total = int(epochs) * -(-per_epoch // int(batch_size))
    return min(total, int(max_steps)) if max_steps else total


def train_diffusion_lm(model, tok, toks, weights, label_ids: Sequence[int] | None, *, T: int, lam: float,
                       schedule: str, epochs: int, lr: float, batch_size: int, seed: int,
                       coverage: str = "random", n_groups: int = 8, max_steps: int = 0,
                       weight_decay: float = 0.01, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Time-agnostic training: each (sequence, step) pair of :func:`training_pairs` is masked by the
    schedule at that step; cross-entropy on the masked tokens. ``max_steps`` caps the optimizer steps
    (the learning-rate schedule spans the capped total).

    ``toks`` are :class:`~methods.diffusioncls.importance.TextTokens`, ``weights`` their
    importance weights, ``label_ids`` the label-prompt token id per sequence (None: no prompt).
    Every sequence with a text token gets at least one masked token.
    """
    import torch

    torch.manual_seed(int(seed))  # dropout draws from the global generator
    gen = torch.Generator().manual_seed(int(seed))
    rng = random.Random(int(seed))
    epoch_pairs = [training_pairs(len(toks), T, coverage, n_groups, rng) for _ in range(int(epochs))]
    total = planned_steps(len(toks), epochs=epochs, batch_size=batch_size, coverage=coverage, n_groups=n_groups,
                          max_steps=max_steps)
    opt, sched = _dlm_optimizer(model, lr, weight_decay, total)
    every = max(1, total // 20)
    history, step = [], 0
    t0, c0 = time.perf_counter(), time.process_time()
    model.train()
    for epoch, pairs in enumerate(epoch_pairs):
        losses, masked = [], []
        for b in range(0, len(pairs), batch_size):
            if step >= total:
                break
            loss, rate = _dlm_step(model, tok, toks, weights, label_ids, pairs[b:b + batch_size], T, lam, schedule,
                                   gen)
            if loss is None:
                continue
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            masked.append(rate)
            step += 1
            if progress and step % every == 0:  # about 20 lines over the training
                progress(f"diffusion LM step {step}/{total} loss {sum(losses[-every:]) / len(losses[-every:]):.3f}")
        history.append({"epoch": epoch + 1, "loss": sum(losses) / max(1, len(losses)),
                        "mask_rate": sum(masked) / max(1, len(masked)), "steps": len(losses)})
        if progress:
            progress(f"diffusion LM epoch {epoch + 1}/{epochs} loss {history[-1]['loss']:.3f}")
    model.eval()
    return {"history": history, "train_seconds": time.perf_counter() - t0,
            "train_cpu_seconds": time.process_time() - c0, "steps": step, "sequences": len(toks),
            "coverage": coverage, "pairs_per_epoch": len(epoch_pairs[0]) if epoch_pairs else 0}


def _dlm_optimizer(model, lr: float, weight_decay: float, total: int):
    import torch

    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {"params": [p for k, p in model.named_parameters() if not any(x in k for x in no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for k, p in model.named_parameters() if any(x in k for x in no_decay)], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(params, lr=lr)
    warm = max(1, total // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    return opt, sched


def _dlm_step(model, tok, toks, weights, label_ids, pairs, T, lam, schedule, gen):
    """The loss of one batch of (sequence, step) pairs, and its mask rate (None when nothing is masked)."""
    import torch

    from methods.diffusioncls.importance import diffusion_batch, place_weights
    from methods.diffusioncls.schedule import draw_mask

    idx = [i for i, _ in pairs]
    lids = None if label_ids is None else [label_ids[i] for i in idx]
    ids, att, tt, maskable, start = diffusion_batch(tok, [toks[i] for i in idx], lids)
    w = place_weights([weights[i] for i in idx], ids.shape, start)
    t = torch.tensor([s for _, s in pairs])
    m = ensure_one_masked(draw_mask(schedule, t, T, w, lam, maskable, generator=gen), maskable, gen)
    if not m.any():
        return None, 0.0
    dev = model.device
    ids, att, tt, m = ids.to(dev), att.to(dev), tt.to(dev), m.to(dev)
    logits = masked_lm_logits(model, ids.masked_fill(m, tok.mask_token_id), att, tt, m)
    return torch.nn.functional.cross_entropy(logits, ids[m]), float(m.sum() / maskable.sum().clamp_min(1))


def restoration_accuracy(model, tok, toks, weights, label_ids: Sequence[int] | None, *, T: int, lam: float,
                         schedule: str, steps: Sequence[int], seed: int = 1, batch_size: int = 64) -> dict[str, Any]:
    """How well a diffusion LM restores texts masked at ``steps`` (one greedy pass, the reference
    decoding): top-1 accuracy over masked tokens, and the share of the single most frequent
    prediction (a collapsed LM fills every slot with the same token, e.g. ".")."""
    import collections

    import torch

    from methods.diffusioncls.importance import diffusion_batch, place_weights
    from methods.diffusioncls.schedule import draw_mask

    gen = torch.Generator().manual_seed(int(seed))
    right = total = 0
    preds: collections.Counter = collections.Counter()
    model.eval()
    with torch.no_grad():
        for b in range(0, len(toks), batch_size):
            idx = list(range(b, min(len(toks), b + batch_size)))
            lids = None if label_ids is None else [label_ids[i] for i in idx]
            ids, att, tt, maskable, start = diffusion_batch(tok, [toks[i] for i in idx], lids)
            w = place_weights([weights[i] for i in idx], ids.shape, start)
            for step in steps:
                t = torch.full((len(idx),), int(step))
                m = ensure_one_masked(draw_mask(schedule, t, T, w, lam, maskable, generator=gen), maskable, gen)
                x = ids.masked_fill(m, tok.mask_token_id)
                pred = masked_lm_logits(model, x.to(model.device), att.to(model.device), tt.to(model.device),
                                        m.to(model.device)).argmax(-1).cpu()
                right += int((pred == ids[m]).sum())
                total += int(m.sum())
                preds.update(pred.tolist())
    top, top_n = preds.most_common(1)[0] if preds else (None, 0)
    return {"accuracy": right / max(1, total), "masked_tokens": total,
            "top_prediction": tok.convert_ids_to_tokens(top) if top is not None else None,
            "top_prediction_share": top_n / max(1, total), "distinct_predictions": len(preds)}


def ensure_one_masked(mask, maskable, generator=None):
    """Rows with maskable tokens but no mask get one masked token, chosen uniformly."""
    import torch

    need = maskable.any(1) & ~(mask & maskable).any(1)
    if need.any():
        r = torch.rand(mask.shape, generator=generator).masked_fill(~maskable, -1.0)
        pick = r.argmax(1)
        mask = mask.clone()
        rows = need.nonzero().squeeze(1)
        mask[rows, pick[rows]] = True
    return mask
