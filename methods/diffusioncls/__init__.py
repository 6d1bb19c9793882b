"""DiffusionCLS (Chen et al., EMNLP 2024): label-aware masked-diffusion LM augmentation.

Pipeline, one module per stage (nothing heavy is imported here):

* :mod:`.importance` - proxy [CLS] attention weights (Eq. 1), aligned with the masked text;
* :mod:`.schedule`   - the label-aware noise schedule (Eq. 2-3), marginal and reference variants;
* :mod:`.diffusion_lm` - the diffusion LM (proxy encoder + the MLM head of
  :func:`methods.common.mlm.adapted_mlm_dir` + label-prompt tokens) and its time-agnostic training;
* :mod:`.generate`   - conditional generation: mask at a step group, restore (greedy / iterative);
* :mod:`.method`     - the :class:`~methods.diffusioncls.method.DiffusionCLS` augmenter (offline and
  reflective generation, noise-resistant training options, ablations).
"""
