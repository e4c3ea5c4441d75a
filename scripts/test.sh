#!/usr/bin/env bash
# Set up (see setup_env.sh) and run the whole test suite, MPI tests included.
source "$(dirname "$0")/setup_env.sh"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
exec "$VPY" -m pytest tests "$@"
