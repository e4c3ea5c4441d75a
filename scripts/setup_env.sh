# Shared set-up of the README's two commands (sourced by demo.sh and test.sh).
# Creates .venv if missing (reused otherwise), installs the CPU build of torch
# first (an unpinned torch would pull a multi-GB CUDA build), then the project
# with its native extension. Reaches nothing but the package registries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step=""
trap 'echo "insitu-inr setup: FAILED while: ${step} (see the output above)" >&2' ERR

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  step="creating .venv with ${PYTHON}"
  "$PYTHON" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"

step="upgrading pip"
"$VPY" -m pip install --quiet --upgrade pip

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  step="installing torch==2.13.0 (CPU build)"
  "$VPY" -m pip install --quiet "torch==2.13.0"
fi

step="installing build tools (scikit-build-core, pybind11, cmake, ninja)"
"$VPY" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja

step="installing insitu-inr and building its native extension (pip install -e .[test])"
"$VPY" -m pip install --quiet --no-build-isolation -e ".[test]"

step="checking the install"
"$VPY" -c "import inr, insitu, ascent_filters, sims; from inr import _native" \
  || { echo "insitu-inr setup: the native extension inr._native did not import" >&2; exit 1; }
trap - ERR
