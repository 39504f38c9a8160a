#!/usr/bin/env bash
# Submit a study as a Ray job with the code's git commit in the runtime env, so result rows carry it.
#   cluster/submit.sh http://HEAD:8265 python experiments/data_efficiency.py --preset paper --data-root ... --storage-path s3://...
set -euo pipefail
address="$1"; shift
cd "$(dirname "$0")/.."
env_file=$(mktemp --suffix=.yaml)
trap 'rm -f "$env_file"' EXIT
dirty=0; [ -n "$(git status --porcelain --untracked-files=no)" ] && dirty=1
{ cat cluster/runtime_env.yaml
  echo "  BEAT_RAY_GIT_COMMIT: \"$(git rev-parse HEAD)\""
  echo "  BEAT_RAY_GIT_DIRTY: \"$dirty\""; } > "$env_file"
exec ray job submit --address "$address" --runtime-env "$env_file" -- "$@"
