"""Back-translation: translate to a pivot language and back.

Engines
-------
* ``marian`` (the paper's, the Shleifer 2019 recipe): MarianMT round trip by hub id,
  ``Helsinki-NLP/opus-mt-{src}-{pivot}`` then ``opus-mt-{pivot}-{src}``; default pivot ``de`` for
  English and ``en`` for Chinese. ``models`` overrides the ids (a list of ``[forward, backward]``
  pairs, one per pivot; local directories work). Decoding ``beam`` (deterministic) or ``sample``
  (forward pass sampled, backward pass beam), batched.
* ``apertium`` (offline stand-in): the rule-based Apertium English<->Spanish round trip
  (``apertium -u eng-spa | apertium -u spa-eng``), many sentences per subprocess call, one per
  line; @handles and URLs are swapped for placeholders that Apertium passes through untouched
  (otherwise it translates "@united" to "@Unido"). Installed by ``scripts/setup-apertium.sh``.
  Only English; other installed pairs can be added with ``apertium_pivots`` (e.g. ``["spa", "cat"]``).
* ``auto`` (default): ``marian`` when its models load, else ``apertium`` for English, else
  :class:`MethodUnavailable` (e.g. Chinese offline: no engine).

More than one pseudo sample per original: a deterministic engine (beam search, Apertium) gives
the same output every time, so copy ``k`` goes through pivot ``k`` (``pivots`` /
``apertium_pivots``); with fewer distinct pivots than requested copies, or when two pivots give
the same text, the extra copies are NOT padded with duplicates: they are reported as shortfall
(``AugmentResult.shortfall``) and counted in ``stats['duplicates_dropped']``. With
``decoding='sample'`` Marian gives distinct samples per copy (duplicates are dropped the same way).
Outputs identical to their input are kept and counted (``identical_to_parent``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from bench.api import Augmenter, Example, MethodMeta, MethodParams, MethodUnavailable, Synthetic, param
from bench.api.hub import ModelNotAvailable
from bench.api.hub import locate as locate_model
from methods.common.lm import generate_seq2seq, load_lm

DEFAULT_PIVOTS = {"en": ["de"], "zh": ["en"]}
_PROTECT_RE = re.compile(r"(https?://\S+|www\.\S+|@\w+|#\w+)")
_PLACEHOLDER = "QQZ{}QQ"
_PLACEHOLDER_RE = re.compile(r"QQZ(\d+)QQ")


def apertium_modes() -> set[str]:
    """The translation directions Apertium has installed (empty when it is not installed)."""
    exe = shutil.which("apertium")
    if exe is None:
        return set()
    try:
        res = subprocess.run([exe, "-l"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in res.stdout.splitlines() if line.strip()}


def _run_apertium(mode: str, lines: list[str]) -> list[str] | None:
    """Translate lines (one sentence per line) in ONE subprocess call; None when the line count
    does not come back intact (then the caller retries line by line)."""
    res = subprocess.run(["apertium", "-u", mode], input="\n".join(lines) + "\n", capture_output=True,
                         text=True, timeout=600)
    if res.returncode != 0:
        raise RuntimeError(f"apertium {mode} failed: {res.stderr.strip()[:300]}")
    out = res.stdout.split("\n")
    if out and out[-1] == "":
        out = out[:-1]
    return out if len(out) == len(lines) else None


def protect(text: str) -> tuple[str, list[str]]:
    """Replace @handles, #hashtags and URLs by placeholders Apertium leaves alone."""
    kept: list[str] = []

    def sub(m: re.Match) -> str:
        kept.append(m.group(0))
        return _PLACEHOLDER.format(len(kept) - 1)

    return _PROTECT_RE.sub(sub, text), kept


def restore(text: str, kept: list[str]) -> str:
    return _PLACEHOLDER_RE.sub(lambda m: kept[int(m.group(1))] if int(m.group(1)) < len(kept) else "", text)


def apertium_round_trip(texts: list[str], pivot: str = "spa", source: str = "eng", chunk: int = 256,
                        protect_tokens: bool = True) -> tuple[list[str], list[str]]:
    """(back-translations, pivot texts) for ``texts``, batched, order-preserving."""
    clean = [" ".join(t.split()) for t in texts]  # one line per sentence
    if protect_tokens:
        pairs = [protect(t) for t in clean]
        src, kept = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        src, kept = clean, [[] for _ in clean]
    fwd_mode, bwd_mode = f"{source}-{pivot}", f"{pivot}-{source}"
    back: list[str] = []
    mid: list[str] = []
    for i in range(0, len(src), chunk):
        part = src[i:i + chunk]
        m = _run_apertium(fwd_mode, part)
        if m is None:
            m = [(_run_apertium(fwd_mode, [s]) or [""])[0] for s in part]
        b = _run_apertium(bwd_mode, m)
        if b is None:
            b = [(_run_apertium(bwd_mode, [s]) or [""])[0] for s in m]
        mid.extend(m)
        back.extend(b)
    back = [" ".join(restore(b, k).split()) for b, k in zip(back, kept)]
    mid = [" ".join(restore(m, k).split()) for m, k in zip(mid, kept)]
    return back, mid


@dataclass(frozen=True)
class BackTranslationParams(MethodParams):
    engine: str = param("auto", choices=("auto", "marian", "apertium"))
    pivots: tuple[str, ...] | None = param(None, doc="Marian pivot languages; default en -> de, zh -> en")
    model_template: str = "Helsinki-NLP/opus-mt-{src}-{tgt}"
    models: tuple[tuple[str, ...], ...] | None = param(None, doc="explicit [[forward, backward], ...] per pivot")
    decoding: str = param("beam", choices=("beam", "sample"), doc="sample: forward pass sampled, backward beam")
    num_beams: int = 4
    top_k: int = 50
    top_p: float = 0.95
    temperature: float = 1.0
    batch_size: int = 16
    max_new_tokens: int = 128
    apertium_pivots: tuple[str, ...] = ("spa",)
    protect_tokens: bool = param(True, doc="Apertium: keep @handles, #hashtags, URLs verbatim")


class BackTranslation(Augmenter):
    meta = MethodMeta(
        name="backtranslation",
        version="1",
        description="round-trip translation through a pivot language (MarianMT; offline: Apertium en<->es)",
        languages=("en", "zh"),
        citation="Sennrich, Haddow & Birch (2016), Improving Neural Machine Translation Models with "
        "Monolingual Data. ACL. Recipe: Shleifer (2019), Low Resource Text Classification with ULMFit "
        "and Backtranslation. arXiv:1903.09244.",
        paper_model="MarianMT Helsinki-NLP/opus-mt-en-de + opus-mt-de-en (zh: opus-mt-zh-en + opus-mt-en-zh)",
    )
    Params = BackTranslationParams
    p: BackTranslationParams

    def __init__(self, seed: int = 0, **params: Any):
        super().__init__(seed, **params)
        self._engine: str | None = None
        self._fallback_reason: str | None = None
        self._marian: list[tuple[str, Any, Any, Any, Any, str, str]] = []  # pivot, fm, ft, bm, bt, f_id, b_id
        self._apertium: list[str] = []
        self._last: dict[str, Any] = {}

    # ---------------------------------------------------------------- engine
    def _pairs(self, lang: str) -> list[tuple[str, str, str]]:
        if self.p.models:
            return [(f"pivot{i}", str(f), str(b)) for i, (f, b) in enumerate(self.p.models)]
        pivots = self.p.pivots or DEFAULT_PIVOTS.get(lang, ["en"])
        tpl = self.p.model_template
        return [(p, tpl.format(src=lang, tgt=p), tpl.format(src=p, tgt=lang)) for p in pivots]

    def _load_marian(self, lang: str) -> None:
        loaded = []
        for pivot, f_id, b_id in self._pairs(lang):
            fm, ft = load_lm(f_id, "seq2seq")
            bm, bt = load_lm(b_id, "seq2seq")
            loaded.append((pivot, fm, ft, bm, bt, f_id, b_id))
        self._marian = loaded

    def _setup_apertium(self, lang: str) -> None:
        if lang != "en":
            raise MethodUnavailable(f"backtranslation: Apertium has no {lang}<->X pair installed here")
        modes = apertium_modes()
        if not modes:
            raise MethodUnavailable("backtranslation: `apertium` is not installed (run scripts/setup-apertium.sh)")
        pivots = [p for p in self.p.apertium_pivots if f"eng-{p}" in modes and f"{p}-eng" in modes]
        if not pivots:
            raise MethodUnavailable(f"backtranslation: none of the Apertium pairs {list(self.p.apertium_pivots)} "
                                    f"is installed (have: {sorted(modes)})")
        self._apertium = pivots

    def _ensure_engine(self) -> None:
        if self._engine is not None:
            return
        lang = self.language or "en"
        engine = self.p.engine
        if engine in ("auto", "marian"):
            try:
                self._load_marian(lang)
                self._engine = "marian"
                return
            except (ModelNotAvailable, OSError) as err:
                if engine == "marian":
                    raise MethodUnavailable(f"backtranslation: MarianMT models not available: {err}") from None
                self._fallback_reason = f"MarianMT not available ({err})"
        try:
            self._setup_apertium(lang)
        except MethodUnavailable as err:
            if self._fallback_reason:
                raise MethodUnavailable(f"{err}; and {self._fallback_reason}") from None
            raise
        self._engine = "apertium"

    def _fit(self, train: list[Example], context) -> None:
        self._ensure_engine()

    def _resource_key(self, context) -> dict[str, Any]:
        """The MarianMT models fit would load (found, not loaded), else the Apertium pairs installed."""
        lang = context.language
        if self.p.engine in ("auto", "marian"):
            try:
                return {"marian": [[m, locate_model(m)] for _, f, b in self._pairs(lang) for m in (f, b)]}
            except ModelNotAvailable as err:
                if self.p.engine == "marian":
                    raise MethodUnavailable(f"backtranslation: MarianMT models not available: {err}") from None
        modes = apertium_modes() if lang == "en" else []
        return {"apertium": sorted(m for m in modes if any(p in m for p in self.p.apertium_pivots))}

    def substitutes(self) -> list[dict[str, str]]:
        if self._engine == "apertium":
            return [{"role": "back-translation engine", "paper": self.meta.paper_model or "",
                     "used": "Apertium rule-based MT, " + ", ".join(f"eng-{p} / {p}-eng" for p in self._apertium)
                             + " (Debian apertium, apertium-eng-spa)"}]
        return []

    # ---------------------------------------------------------------- generation
    def _marian_round_trip(self, texts: list[str], slot: int, copies: int, pivot_idx: int) -> list[list[tuple[str, str]]]:
        pivot, fm, ft, bm, bt, _f, _b = self._marian[pivot_idx]
        p = self.p
        sample = p.decoding == "sample"
        common = {"batch_size": p.batch_size, "max_new_tokens": p.max_new_tokens}
        mids = generate_seq2seq(fm, ft, texts, copies, seed=self.seed * 1000 + slot, do_sample=sample,
                                num_beams=1 if sample else p.num_beams, top_k=p.top_k, top_p=p.top_p,
                                temperature=p.temperature, **common)
        flat = [m for ms in mids for m in ms]
        backs = generate_seq2seq(bm, bt, flat, 1, seed=self.seed * 1000 + slot + 1, do_sample=False,
                                 num_beams=p.num_beams, **common)
        out, j = [], 0
        for ms in mids:
            out.append([(backs[j + k][0], ms[k]) for k in range(len(ms))])
            j += len(ms)
        return out

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        self._ensure_engine()
        out: list[Synthetic] = []
        dropped = 0
        no_pivot = 0
        sampling = self._engine == "marian" and self.p.decoding == "sample"
        n_pivots = len(self._marian) if self._engine == "marian" else len(self._apertium)
        # copy k of every example goes through pivot k % n_pivots; deterministic engines skip k >= n_pivots
        max_n = max(n for _, n in pairs)
        results: dict[str, list[tuple[str, str, str, int]]] = {e.id: [] for e, _ in pairs}
        for pi in range(n_pivots):
            # number of copies this pivot must make per example
            want = []
            for _e, n in pairs:
                c = len(range(pi, n, n_pivots)) if sampling else (1 if pi < n else 0)
                want.append(c)
            groups: dict[int, list[Example]] = {}
            for (e, _), c in zip(pairs, want):
                if c:
                    groups.setdefault(c, []).append(e)
            for c, exs in sorted(groups.items()):
                texts = [e.text for e in exs]
                if self._engine == "marian":
                    outs = self._marian_round_trip(texts, slot=pi * 7919 + c, copies=c, pivot_idx=pi)
                    pname = self._marian[pi][0]
                else:
                    pname = self._apertium[pi]
                    back, mid = apertium_round_trip(texts, pivot=pname,
                                                    protect_tokens=self.p.protect_tokens)
                    outs = [[(b, m)] for b, m in zip(back, mid)]
                for e, o in zip(exs, outs):
                    results[e.id].extend((b, m, pname, pi) for b, m in o)
        if not sampling:
            no_pivot = sum(max(0, n - n_pivots) for _, n in pairs)
        for e, n in pairs:
            seen: set[str] = set()
            k = 0
            for back, mid, pname, pi in results[e.id]:
                if back in seen or not back.strip():
                    dropped += 1
                    continue
                seen.add(back)
                out.append(self.synth(e, back, **self._provenance(pname, pi), pivot_text=mid, k=k))
                k += 1
                if k >= n:
                    break
        self._last = {"engine": self._engine, "duplicates_dropped": dropped, "copies_without_pivot": no_pivot,
                      "pivots": [m[0] for m in self._marian] if self._engine == "marian" else list(self._apertium),
                      "max_requested_per_parent": max_n}
        if self._fallback_reason:
            self._last["fallback_reason"] = self._fallback_reason
        return out

    def _provenance(self, pivot: str, pi: int) -> dict[str, Any]:
        if self._engine == "marian":
            _p, _fm, _ft, _bm, _bt, f_id, b_id = self._marian[pi]
            return {"engine": "marian", "pivot": pivot, "model": [f_id, b_id],
                    "decoding": self.p.decoding, "substitute": False}
        return {"engine": "apertium", "pivot": pivot, "model": [f"apertium eng-{pivot}", f"apertium {pivot}-eng"],
                "decoding": "rule-based", "substitute": True}

    def _stats(self, pairs, synth) -> dict[str, Any]:
        stats = super()._stats(pairs, synth)
        stats.update(self._last)
        return stats
