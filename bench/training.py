"""The pieces of the classifier's training loop: the step schedule, batches, and the objective.

**One budget per view.** Every method of a (dataset, view) trains on the same number of texts,
evaluates dev at the same fractions of that budget and may stop early only after the same minimum
share of it (:func:`schedule_for`): the budget is ``epochs`` passes over a G/E-sized set of the view
(``n_view * (1 + n_aug)`` items), at least ``min_steps`` batches of ``batch_size``; dev is scored
``evals`` times over it; patience counts evaluations. Plain batches hold ``batch_size`` texts, so
for them the budget is the same number of optimizer steps for every method. Grouped batches
(originals with all their pseudo samples, e.g. 16 + 64 = 80 texts) take fewer, larger steps for the
same texts (``budget_unit="texts"``, the default); ``"steps"`` gives them as many steps as a plain
batch gets, i.e. ``texts_per_step / batch_size`` times the texts and compute of every other method.

Before this protocol, patience counted epochs: an epoch of ``none`` is 5x shorter than an epoch of
a G/E set, so ``none`` was stopped after 30 of 640 planned steps on a 147-tweet view while its loss
was still falling (docs/design.md).

**Batches** come from an endless stream of shuffled passes over the items, so the learning-rate
schedule counts exactly the steps that run. Plain batches are length-bucketed (items of similar
length together, batch order shuffled) to cut padding; grouped batches (noise-resistant training)
hold ``originals_per_batch`` originals each with all its pseudo samples.

**The objective**: cross-entropy over every item (``ce_weighting="pooled"``) or the mean over the
originals plus the mean over the pseudo samples (``"balanced"``, the reference code's 1:1), plus
``nrt_weight`` times the contrastive term on the originals (paper Eq. 4) in its printed form (one
log outside the double sum) or per anchor (the log inside the sum over anchors, the suite's earlier
form). ``pseudo_grad="head"`` is the reference code's training: pseudo samples pass the encoder
without gradient and train only the classification head.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from bench.api.objective import NRT_FORMS


@dataclass(frozen=True)
class TrainSchedule:
    """The step budget and dev evaluations of one (dataset, view), the same for all its methods."""

    total_steps: int
    eval_every: int
    patience: int  # evaluations without a better dev macro-F1
    min_steps_before_stop: int
    texts_per_step: float = 0.0  # the mean batch size the steps were counted with

    def eval_steps(self) -> list[int]:
        steps = list(range(self.eval_every, self.total_steps + 1, self.eval_every))
        return steps if steps and steps[-1] == self.total_steps else [*steps, self.total_steps]


def schedule_for(budget_items: int, batch_size: int, epochs: float, min_steps: int, evals: int, patience: int,
                 min_train: float, max_steps: int = 0, texts_per_step: float | None = None) -> TrainSchedule:
    """``epochs`` passes over ``budget_items`` items (at least ``min_steps``, at most ``max_steps`` when
    set; both counted in batches of ``batch_size``), ``evals`` dev checks. ``texts_per_step`` (the
    mean batch of a grouped batching) spreads the same texts over fewer, larger steps."""
    per_pass = max(1, math.ceil(budget_items / batch_size))
    plain = max(int(min_steps), math.ceil(epochs * per_pass), 1)
    if max_steps:
        plain = min(plain, int(max_steps))
    size = float(texts_per_step or batch_size)
    total = max(1, round(plain * batch_size / size))
    every = max(1, math.ceil(total / max(1, int(evals))))
    return TrainSchedule(total, every, int(patience), int(math.ceil(min_train * total)), size)


def texts_per_grouped_step(items: Sequence[Item], originals_per_batch: int, batch_size: int) -> float:
    """The mean batch size of :func:`grouped_batches` over one pass (what its steps are counted in)."""
    k = max(1, int(originals_per_batch))
    n_orig = sum(it.original for it in items)
    orphans = sum(not it.original and it.parent < 0 for it in items)
    batches = math.ceil(n_orig / k) + math.ceil(orphans / max(1, batch_size))
    return len(items) / max(1, batches)


# ------------------------------------------------------------------------------------ items


@dataclass(frozen=True)
class Item:
    """One training example, tokenized: ids (no padding), label id, whether it is an original, and
    for a pseudo sample the index of its parent original (-1 when it has none in the view)."""

    ids: tuple[int, ...]
    label: int
    original: bool
    parent: int = -1


def plain_batches(items: Sequence[Item], batch_size: int, rng: random.Random, bucket: int = 50
                  ) -> Iterator[list[int]]:
    """Endless shuffled passes; within a pool of ``bucket`` batches, items of similar length share a
    batch (less padding) and the batches of the pool are yielded in random order."""
    n = len(items)
    while True:
        order = list(range(n))
        rng.shuffle(order)
        pool = batch_size * max(1, bucket)
        for start in range(0, n, pool):
            chunk = order[start:start + pool]
            if bucket > 1:
                chunk.sort(key=lambda i: len(items[i].ids))
            batches = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
            rng.shuffle(batches)
            yield from batches


def grouped_batches(items: Sequence[Item], originals_per_batch: int, batch_size: int, rng: random.Random
                    ) -> Iterator[list[int]]:
    """Endless passes of batches of ``originals_per_batch`` originals, each with all its pseudo
    samples (noise-resistant training compares originals in a batch); pseudo samples without a
    parent in the view come in plain batches of ``batch_size``."""
    kids: dict[int, list[int]] = {}
    originals, orphans = [], []
    for i, it in enumerate(items):
        if it.original:
            originals.append(i)
        elif it.parent >= 0:
            kids.setdefault(it.parent, []).append(i)
        else:
            orphans.append(i)
    k = max(1, int(originals_per_batch))
    while True:
        order = list(originals)
        rng.shuffle(order)
        batches = [[j for o in order[i:i + k] for j in (o, *kids.get(o, []))] for i in range(0, len(order), k)]
        batches += [orphans[i:i + batch_size] for i in range(0, len(orphans), batch_size)]
        rng.shuffle(batches)
        yield from batches


def collate(items: Sequence[Item], idx: Sequence[int], pad_id: int):
    """(input_ids, attention_mask, labels, is_original) tensors of the items ``idx``."""
    import torch

    rows = [items[i].ids for i in idx]
    n = max(len(r) for r in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    att = torch.zeros((len(rows), n), dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.tensor(row, dtype=torch.long)
        att[r, :len(row)] = 1
    y = torch.tensor([items[i].label for i in idx], dtype=torch.long)
    orig = torch.tensor([items[i].original for i in idx], dtype=torch.bool)
    return ids, att, y, orig


# ------------------------------------------------------------------------------------ objective


def contrastive_term(h, labels, tau: float, form: str = "printed"):
    """Paper Eq. 4 on the originals of a batch: N_i = the originals with another label than i.

    ``printed``: ``(1/K) log sum_i sum_{j in N_i} exp(cos(h_i, h_j) / tau)``, one log outside the
    double sum, as the equation is printed. ``per_anchor``: ``(1/K) sum_i log sum_{j in N_i} ...``,
    the log inside the sum over anchors, which multiplies the gradient by about K (the suite's form
    before; measured 2.9x at K=3, 16.5x at K=16). A batch with no cross-label pair contributes 0.
    Minimising either pushes representations of different labels apart.
    """
    import torch

    if form not in NRT_FORMS:
        raise ValueError(f"unknown contrastive form {form!r}; known {NRT_FORMS}")
    hn = torch.nn.functional.normalize(h.float(), dim=-1)
    sim = hn @ hn.T / tau
    neg = labels.unsqueeze(0) != labels.unsqueeze(1)
    if not neg.any():
        return h.sum() * 0.0
    sim = sim.masked_fill(~neg, float("-inf"))
    has = neg.any(1)
    if form == "per_anchor":
        return torch.logsumexp(sim[has], dim=1).sum() / h.shape[0]
    return torch.logsumexp(sim[has].reshape(-1), dim=0) / h.shape[0]


def cross_label_pairs(labels) -> int:
    """Unordered pairs of originals with different labels (what the contrastive term can use)."""
    counts = {}
    for y in labels.tolist():
        counts[y] = counts.get(y, 0) + 1
    n = sum(counts.values())
    return (n * n - sum(c * c for c in counts.values())) // 2


def cross_entropy(logits, y, orig, weighting: str):
    """``pooled``: the mean over every item; ``balanced``: mean over originals + mean over pseudo
    samples (1:1, the reference code), or the one that is present."""
    import torch

    if weighting == "pooled" or orig.all() or not orig.any():
        return torch.nn.functional.cross_entropy(logits, y)
    if weighting != "balanced":
        raise ValueError(f"unknown cross-entropy weighting {weighting!r}; known pooled, balanced")
    ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    return ce[orig].mean() + ce[~orig].mean()


def head_only_forward(model, ids, att):
    """Logits of a batch whose encoder gets no gradient: only the classification head learns from it
    (the reference code's treatment of pseudo samples). Generic over architectures: every parameter
    under the model's ``base_model_prefix`` is detached."""
    from torch.func import functional_call

    prefix = model.base_model_prefix + "."
    params = {n: (p.detach() if n.startswith(prefix) else p) for n, p in model.named_parameters()}
    return functional_call(model, params, (), {"input_ids": ids, "attention_mask": att}).logits
