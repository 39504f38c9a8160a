#!/usr/bin/env bash
# Submit a study as a Ray job with the code's git commit in the runtime env, so result rows carry it.
#   cluster/submit.sh http://HEAD:8265 python experiments/data_efficiency.py --preset paper --data-root ... --storage-path s3://...
#
# Local head (http://127.0.0.1:PORT or http://localhost:PORT) and a repo .venv: the job's PATH starts
# with .venv/bin, so its `python` is the project's interpreter even when the head was started without
# the venv activated (otherwise the job would run the system python and die on `import pandas`).
# BEAT_RAY_JOB_BIN=/path/to/bin overrides that folder; BEAT_RAY_JOB_BIN= (empty) turns it off. Through
# a `ray dashboard` tunnel (also localhost) the prefix names a folder the remote head lacks, which the
# shell skips, so the image's python runs as before.
#
# Token authentication: our clusters run with RAY_AUTH_MODE=token (cluster/README.md, "Who may submit"),
# because the Jobs API runs whatever it is sent. Ray's client reads the token from $RAY_AUTH_TOKEN, else
# the file $RAY_AUTH_TOKEN_PATH, else ~/.ray/auth_token, and sends it only when RAY_AUTH_MODE=token; this
# script finds it in the same order, sets RAY_AUTH_MODE=token for the submission and says where it found
# it (RAY_AUTH_MODE=disabled in your environment turns that off, for a cluster without auth).
set -euo pipefail
address="$1"; shift
cd "$(dirname "$0")/.."
repo=$(pwd)
ray_cmd=ray
command -v ray >/dev/null 2>&1 || ray_cmd="$repo/.venv/bin/ray"
job_bin=""
case "$address" in
  http://127.0.0.1:*|http://localhost:*|127.0.0.1:*|localhost:*) [ -x "$repo/.venv/bin/python" ] && job_bin="$repo/.venv/bin" ;;
esac
job_bin="${BEAT_RAY_JOB_BIN-$job_bin}"
env_file=$(mktemp --suffix=.yaml)
trap 'rm -f "$env_file"' EXIT
# results/ and paper_figures/ are what studies write, not code (as beat_ray.train.results.git_info)
dirty=0; [ -n "$(git status --porcelain --untracked-files=no -- . ":(exclude)results" ":(exclude)paper_figures")" ] && dirty=1
{ cat cluster/runtime_env.yaml
  echo "  BEAT_RAY_GIT_COMMIT: \"$(git rev-parse HEAD)\""
  echo "  BEAT_RAY_GIT_DIRTY: \"$dirty\""
  # Ray expands ${PATH} to the job supervisor's own PATH when it sets env_vars
  if [ -n "$job_bin" ]; then echo "  PATH: \"$job_bin:\${PATH}\""; fi; } > "$env_file"
if [ -n "$job_bin" ]; then echo "submit.sh: the job's python is $job_bin/python (local address)" >&2; fi
token_from=""
if [ -n "${RAY_AUTH_TOKEN:-}" ]; then
  token_from='$RAY_AUTH_TOKEN'
elif [ -n "${RAY_AUTH_TOKEN_PATH:-}" ]; then
  if [ ! -s "$RAY_AUTH_TOKEN_PATH" ]; then
    echo "submit.sh: RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH is not a non-empty file; Ray would abort" >&2; exit 2
  fi
  token_from="$RAY_AUTH_TOKEN_PATH"
elif [ -s "${HOME:-/nonexistent}/.ray/auth_token" ]; then
  token_from="~/.ray/auth_token"
fi
if [ -n "$token_from" ]; then
  export RAY_AUTH_MODE="${RAY_AUTH_MODE:-token}"
  echo "submit.sh: Ray auth token from $token_from" >&2
else
  echo "submit.sh: no Ray auth token (looked at \$RAY_AUTH_TOKEN, \$RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token);" \
       "a cluster with token auth, as ours are, refuses the submission (cluster/README.md, \"Who may submit\")" >&2
fi
"$ray_cmd" job submit --address "$address" --runtime-env "$env_file" -- "$@"
