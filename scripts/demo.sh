#!/usr/bin/env bash
# Set up (see setup_env.sh) and run the main job.
source "$(dirname "$0")/setup_env.sh"
exec "$VPY" -m sims.fit_demo "$@"
