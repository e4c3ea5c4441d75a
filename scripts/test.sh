#!/usr/bin/env bash
# Set up (see setup_env.sh) and run the whole test suite, MPI tests included.
source "$(dirname "$0")/setup_env.sh"
# The viewer's browser tests drive Debian's headless Chromium; install it when missing and we may
# (root with apt-get). Without a browser those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if ! phase "insitu-inr tests" "chromium and chromium-driver (Debian packages) for the viewer tests" \
      bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null'; then
    echo "insitu-inr tests: could not install chromium; the browser tests will skip" >&2
  fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
echo "insitu-inr tests: pytest tests $* (the whole suite takes several minutes on 2 cores)"
start=$SECONDS
rc=0
"$VPY" -m pytest tests "$@" || rc=$?
echo "insitu-inr tests: pytest exit $rc in $((SECONDS - start)) s"
exit "$rc"
