"""The vocabulary of classifier options a method may ask for (``Augmenter.classifier_options``).

The harness's training loop implements them (:mod:`bench.training`); methods name them. Keeping the
allowed values here lets both sides validate against one list without a method importing the harness.
"""

NRT_FORMS = ("printed", "per_anchor")  # Eq. 4 as printed (log outside the double sum) | log per anchor
NRT_REPRS = ("cls", "pooler")  # the representation the contrastive term compares
CE_WEIGHTINGS = ("pooled", "balanced")  # mean over every item | originals 1:1 pseudo samples
BUDGET_UNITS = ("texts", "steps")  # grouped batches: the view's texts in fewer steps | as many steps as plain
PSEUDO_GRADS = ("full", "head")  # pseudo samples train the whole model | the classification head only

# classifier settings a method sets for its own cells (``classifier_options``): records that differ only
# in these were trained under the same protocol and may be compared; any other difference may not
METHOD_OPTIONS = ("nrt_weight", "nrt_tau", "nrt_form", "nrt_repr", "group_batches", "originals_per_batch",
                  "ce_weighting", "pseudo_grad", "budget_unit")
