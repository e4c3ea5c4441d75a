# Shared set-up of the README's two commands (sourced by demo.sh and test.sh).
# Creates .venv if missing (reused otherwise), installs the CPU build of torch
# first (an unpinned torch would pull a multi-GB CUDA build), then the project
# with its native extension. Reaches nothing but the package registries.
# Each phase prints one line: what it does, then how long it took.
set -Eeuo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
step=""
trap 'echo "insitu-inr setup: FAILED while: ${step} (see the output above)" >&2' ERR

# phase PREFIX DESCRIPTION COMMAND...: print "PREFIX: DESCRIPTION ... " first (a slow phase says what it is
# doing), run COMMAND with its output held back, finish the line with the seconds it took, then show what
# COMMAND printed (pip's warnings), so each phase stays one readable line.
phase() {
  local prefix="$1" what="$2" start=$SECONDS log rc=0
  shift 2
  step="$what"
  log="$(mktemp)"
  printf '%s: %s ... ' "$prefix" "$what"
  "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" = 0 ]; then echo "$((SECONDS - start)) s"; else echo "failed after $((SECONDS - start)) s"; fi
  cat "$log" >&2
  rm -f "$log"
  return "$rc"
}

setup_start=$SECONDS
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  phase "insitu-inr setup" "creating .venv with ${PYTHON}" "$PYTHON" -m venv .venv
fi
VPY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"

phase "insitu-inr setup" "pip (upgrade)" "$VPY" -m pip install --quiet --upgrade pip

if ! "$VPY" -c "import torch" >/dev/null 2>&1; then
  phase "insitu-inr setup" "torch 2.13.0 (CPU)" "$VPY" -m pip install --quiet "torch==2.13.0"
else
  echo "insitu-inr setup: torch $("$VPY" -c 'import torch; print(torch.__version__)') already in .venv"
fi

phase "insitu-inr setup" "build tools (scikit-build-core, pybind11, cmake, ninja)" \
  "$VPY" -m pip install --quiet "scikit-build-core>=0.10" "pybind11>=2.12" cmake ninja

phase "insitu-inr setup" "insitu-inr + native extensions (pip install -e .[test])" \
  "$VPY" -m pip install --quiet --no-build-isolation -e ".[test]"

step="checking the install"
"$VPY" -c "import inr, insitu, ascent_filters, sims; from inr import _native" \
  || { echo "insitu-inr setup: the native extension inr._native did not import" >&2; exit 1; }
echo "insitu-inr setup: ready in $((SECONDS - setup_start)) s"
trap - ERR
