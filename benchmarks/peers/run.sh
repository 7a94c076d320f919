#!/usr/bin/env bash
# The peer comparison: paperfeed, txtai, LanceDB and Chroma on BEIR SciFact with one model.
#
#   benchmarks/peers/run.sh [compare.py options: --runs, --index-threads, --query-threads,
#                            --beir, --out, --queries N, --keep]
#
# The peers live in their own virtualenv (benchmarks/peers/.venv, git-ignored), built here
# from requirements.txt with constraints.txt, which pins torch to the 2.13.0 CPU build: an
# unpinned torch would pull a CUDA build and gigabytes of nvidia wheels. That wheel comes
# from a local wheel folder (PEERS_FIND_LINKS, default /opt/wheels) or the index pip is set
# up with. paperfeed itself runs from the project's .venv (README, command 1 or 2).
# Results: a table on stdout and benchmarks/peers/results.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
find_links="${PEERS_FIND_LINKS:-/opt/wheels}"

if [ ! -x "$repo/.venv/bin/python" ]; then
  echo "paperfeed's .venv is missing: install the project first (README, 'Set up')" >&2
  exit 1
fi

# Rebuild the peers' environment only when its pinned inputs changed.
stamp="$(cat "$here/requirements.txt" "$here/constraints.txt" | sha256sum | cut -c1-16)"
if [ ! -f "$venv/.stamp" ] || [ "$(cat "$venv/.stamp")" != "$stamp" ]; then
  echo "building the peers' virtualenv in $venv (a few minutes, once)" >&2
  rm -rf "$venv"
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
  links=()
  if [ -d "$find_links" ]; then links=(--find-links "$find_links"); fi
  if ! "$venv/bin/pip" install -q "${links[@]}" -c "$here/constraints.txt" \
      -r "$here/requirements.txt" >"$venv/install.log" 2>&1; then
    tail -n 30 "$venv/install.log" >&2
    echo "installing the peers failed (full log: $venv/install.log)" >&2
    exit 1
  fi
  echo "$stamp" >"$venv/.stamp"
fi

PEERS_PYTHON="$venv/bin/python" exec "$repo/.venv/bin/python" "$here/compare.py" "$@"
