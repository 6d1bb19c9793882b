"""Augmentation methods. One module per method, one line per registration.

Adding a baseline: write ``methods/mymethod.py`` with an ``Augmenter`` subclass (from
``bench.api``) and add one ``METHODS.register(...)`` line below; or ship it in your own package and
declare it in the ``lowres_aug_bench.methods`` entry-point group (see README, "Adding a
baseline"). Targets are imported lazily.
"""

from bench.api.registry import Registry

PLUGIN_GROUP = "lowres_aug_bench.methods"
METHODS = Registry("method")

METHODS.register("none", "methods.none:NoAugmentation", "raw PLM: no augmentation (the baseline every delta is against)")
METHODS.register("resample", "methods.resample:Resample", "oversample minority classes by copying originals (B/D)")
METHODS.register("eda", "methods.eda:EDA", "EDA: synonym replacement, random insertion, swap, deletion (WordNet / jieba+Cilin)")
METHODS.register("aeda", "methods.aeda:AEDA", "AEDA: insert random punctuation marks")
METHODS.register("backtranslation", "methods.backtranslation:BackTranslation", "round-trip translation (MarianMT; offline: Apertium en<->es)")
METHODS.register("lambada", "methods.lambada:Lambada", "LAMBADA: fine-tuned causal LM (gpt2; offline: SmolLM2-135M + LoRA), keep what the proxy classifier is surest of")
METHODS.register("genius", "methods.genius:Genius", "GENIUS: label-aware sketch -> text (genius-large; offline: SmolLM2-135M + LoRA on sketch->text)")
METHODS.register("genius-f", "methods.genius:GeniusF", "GeniusAug-f: GENIUS, dropping pseudo samples with proxy probability <= 0.7")
METHODS.register("nlpaug-mlm", "methods.nlpaug_wrappers:NlpaugMLM", "nlpaug ContextualWordEmbsAug: masked-LM word substitution (suite MiniLM with a trained MLM head)")
METHODS.register("nlpaug-glove", "methods.nlpaug_wrappers:NlpaugGlove", "nlpaug WordEmbsAug: GloVe 6B 50d nearest-neighbour word substitution")
METHODS.register("diffusioncls", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS: label-aware masked-diffusion LM augmentation + noise-resistant training", tags=("ablations",))
METHODS.register("diffusioncls-wo-da", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS w/o D.A.: no pseudo samples, noise-resistant training only", params={"generate": False}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-wo-lap", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS w/o L.A.P.: no label prompt", params={"label_prompt": False}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-wo-nrt", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS w/o N.R.T.: plain cross-entropy", params={"nrt_weight": 0.0}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-wo-las", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS w/o label-aware schedule: lambda = 0 (linear)", params={"lam": 0.0}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-reflective", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS with reflective (online) generation from the classifier being trained", params={"generation": "reflective"}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-ref", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS trained as the reference code trains: pseudo samples train the classification head only, originals 1:1 pseudo samples, no contrastive term", params={"nrt_weight": 0.0, "ce_weighting": "balanced", "pseudo_grad": "head"}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.register("diffusioncls-las-centred", "methods.diffusioncls.method:DiffusionCLS", "DiffusionCLS with the label-aware schedule's weights centred and scaled to [-1, 1] per sentence (DiffusionBERT-like; the paper's raw weights move masking by ~1-2 points)", params={"importance_norm": "centred"}, tags=("variant", "ablations"), variant_of="diffusioncls")
METHODS.add_entry_points(PLUGIN_GROUP)
