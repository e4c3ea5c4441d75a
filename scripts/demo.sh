#!/usr/bin/env bash
# The main job: set up .venv (see setup_env.sh), then run the advection-diffusion proxy on 4 MPI
# ranks with in situ compression into the temporal cache, a trigger that looks back 20 cycles,
# scenes every 10 cycles and a Cinema database at the end, all on the embedded runtime.
# Output (default demo_run/): run.cache, PNGs, trigger_frames/, advection.cdb, quality.png,
# summary.json, timings.json. Extra arguments go to the simulation (e.g. --grid 64 --steps 20).
source "$(dirname "$0")/setup_env.sh"
# 4 ranks share the machine's cores: one OpenMP thread each
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ranks="${DEMO_RANKS:-4}" output="${DEMO_OUTPUT:-demo_run}"
echo "insitu-inr demo: advection proxy on ${ranks} MPI ranks (128^3, 40 steps${*:+, $*}) -> ${output}/ (1-2 min on 2 cores)"
start=$SECONDS
rc=0
mpiexec -n "$ranks" "$VPY" -m sims.advection --grid 128 --steps 40 --runtime embedded --output "$output" "$@" || rc=$?
echo "insitu-inr demo: $([ "$rc" = 0 ] && echo finished || echo "FAILED (exit $rc)") in $((SECONDS - start)) s"
exit "$rc"
