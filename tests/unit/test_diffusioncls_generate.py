"""DiffusionCLS: importance-weight alignment, text splicing and restoring with a tiny BERT."""

from __future__ import annotations

import pytest
import torch

from methods.diffusioncls.generate import (
    DiffusionGenerator,
    GenItem,
    banned_token_ids,
    draw_item_mask,
    restore,
    splice,
)
from methods.diffusioncls.importance import (
    classifier_batch,
    cls_attention,
    diffusion_batch,
    importance_weights,
    place_weights,
    tokenize_texts,
)

TEXTS = ["@united my flight was Cancelled again!!", "great crew, thanks", "ok"]


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    clf = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2).eval()
    mlm = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir).eval()
    return tok, clf, mlm


def test_splice_keeps_original_characters():
    text = "@United, my flight is LATE :("
    from transformers import AutoTokenizer

    from bench.api.hub import locate

    tok = AutoTokenizer.from_pretrained(locate("minilm"))
    tt = tokenize_texts(tok, [text], 60)[0]
    assert splice(text, tt.offsets, [None] * len(tt.ids)) == text
    i = tok.convert_ids_to_tokens(tt.ids).index("late")
    reps = [None] * len(tt.ids)
    reps[i] = "early"
    assert splice(text, tt.offsets, reps) == "@United, my flight is early :("
    reps[i] = "##s"  # a continuation piece attaches to the previous token
    assert splice(text, tt.offsets, reps) == "@United, my flight iss :("
    # truncation keeps the tail verbatim
    short = tokenize_texts(tok, [text], 3)[0]
    assert short.truncated > 0
    assert splice(text, short.offsets, [None] * 3) == text


def test_weights_are_aligned_with_the_masked_tokens(tiny):
    tok, clf, _ = tiny
    toks = tokenize_texts(tok, TEXTS, 60)
    ws = importance_weights(clf, tok, toks)
    for t, w in zip(toks, ws):
        assert len(w) == len(t.ids)
        # same numbers as the classifier's own view of the text: position 1 + j is token j
        enc = tok(t.text, return_tensors="pt")
        assert enc["input_ids"][0, 1:-1].tolist() == t.ids
        a = cls_attention(clf, enc["input_ids"], enc["attention_mask"])[0]
        assert torch.allclose(w, a[1:1 + len(t.ids)])
        assert float(a.sum()) == pytest.approx(1.0, abs=1e-5)
    ids, att, tt, maskable, start = diffusion_batch(tok, toks, [tok.cls_token_id] * len(toks))
    assert start == 3
    placed = place_weights(ws, ids.shape, start)
    for r, (t, w) in enumerate(zip(toks, ws)):
        assert ids[r, start:start + len(t.ids)].tolist() == t.ids
        assert torch.equal(placed[r, start:start + len(t.ids)], w)
        assert maskable[r].nonzero().squeeze(1).tolist() == list(range(start, start + len(t.ids)))
        assert ids[r, start + len(t.ids)] == tok.sep_token_id and ids[r, 2] == tok.sep_token_id
        assert tt[r, :3].eq(0).all() and tt[r, 3:start + len(t.ids) + 1].eq(1).all()
    # padding gets weight 0
    cids, catt = classifier_batch(tok, toks)
    a = cls_attention(clf, cids, catt)
    assert a[catt == 0].abs().max() == 0
    # without the label prompt the text starts right after [CLS]
    _, _, tt0, m0, s0 = diffusion_batch(tok, toks, None)
    assert s0 == 1 and tt0.eq(0).all() and m0[0, 1:1 + len(toks[0].ids)].all()


def test_restore_changes_only_masked_positions_and_never_predicts_specials(tiny):
    tok, _, mlm = tiny
    toks = tokenize_texts(tok, TEXTS, 60)
    ids, att, tt, maskable, start = diffusion_batch(tok, toks, None)
    g = torch.Generator().manual_seed(0)
    mask = (torch.rand(ids.shape, generator=g) < 0.5) & maskable
    banned = banned_token_ids(tok)
    for decoding, top_k in (("greedy", 0), ("iterative", 0), ("iterative", 5)):
        new = restore(mlm, ids, att, tt, mask, banned, tok.mask_token_id, decoding, passes=3, top_k=top_k,
                      generator=torch.Generator().manual_seed(1))
        assert torch.equal(new[~mask], ids[~mask])
        assert not torch.isin(new[mask], torch.tensor(banned)).any()
        again = restore(mlm, ids, att, tt, mask, banned, tok.mask_token_id, decoding, passes=3, top_k=top_k,
                        generator=torch.Generator().manual_seed(1))
        assert torch.equal(new, again)


def test_generator_is_deterministic_and_reports_provenance(tiny):
    tok, clf, mlm = tiny
    toks = tokenize_texts(tok, TEXTS, 60)
    ws = importance_weights(clf, tok, toks)
    items = [GenItem(t, w, "pos", step, seed) for t, w in zip(toks, ws) for step, seed in ((13, 1), (16, 1))]
    gen = DiffusionGenerator(mlm, tok, None, T=32, decoding="iterative", passes=2, batch_size=4, seed=0)
    a = gen.generate(items)
    b = gen.generate(list(items))
    assert [o.text for o in a] == [o.text for o in b]
    for o in a:
        assert sum(o.mask) >= 1  # min_masked
        assert o.masked_text.count("[MASK]") == sum(o.mask)
        assert 0 < o.info["mask_rate"] <= 1 and o.info["step"] in (13, 16)
    # shared seed: the step-16 mask contains the step-13 mask (nested)
    for i in range(0, len(a), 2):
        m13, m16 = torch.tensor(a[i].mask), torch.tensor(a[i + 1].mask)
        assert torch.all(m16 | ~m13)
    # "ok" is one token: at step 13 of 32 it is masked only by min_masked
    m = draw_item_mask(GenItem(toks[2], ws[2], "pos", 13, 5), 32, 0.5, "marginal", min_masked=0)
    assert m.dtype == torch.bool and len(m) == len(toks[2].ids)


def test_splice_writes_chinese_replacements_without_spaces():
    text = "我爱北京天安门, ok"
    offsets = [(i, i + 1) for i in range(7)] + [(9, 11)]
    reps = [None, "喜", None, None, "天", None, None, None]
    assert splice(text, offsets, reps) == "我喜北京天安门, ok"
    reps = [None] * 7 + ["no"]
    assert splice(text, offsets, reps) == "我爱北京天安门, no"
    # an English word replacement glued to Latin text still gets its space
    assert splice("abc", [(0, 3)], ["x"]) == "x"
    assert splice("ab", [(0, 1), (1, 2)], [None, "cd"]) == "a cd"
