"""Shared toolkits for augmenters (not methods themselves): lexicons, causal-LM helpers, the
masked-LM adaptation, inference engines. They import only the bottom layer (``bench.api``)."""
