#!/usr/bin/env bash
# Create the CrewAI virtualenv for the side-by-side benchmark (idempotent).
#
#     bash bench/side_by_side/setup_crewai.sh
#
# CrewAI is NOT a selfpub dependency: it lives in its own venv under
# build/bench-crewai/ (ignored by git). A stamp file records the pinned
# version; a second run with the same pin does nothing.
set -euo pipefail

CREWAI_VERSION="${CREWAI_VERSION:-1.15.30}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CREWAI_VENV:-$ROOT/build/bench-crewai}"
PYTHON="${CREWAI_PYTHON:-python3.11}"
STAMP="$VENV/.crewai-$CREWAI_VERSION"

if [[ -f "$STAMP" ]] && "$VENV/bin/python" -c "import crewai" 2>/dev/null; then
    echo "crewai $CREWAI_VERSION already installed in $VENV"
    exit 0
fi

start=$(date +%s)
if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
# pip.conf here lists local index folders that may not exist: drop those warnings only.
quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
quiet "$VENV/bin/python" -m pip install --quiet --upgrade pip
quiet "$VENV/bin/python" -m pip install --quiet "crewai==$CREWAI_VERSION"
rm -f "$VENV"/.crewai-*
touch "$STAMP"
echo "crewai $CREWAI_VERSION installed in $VENV in $(( $(date +%s) - start )) s"
"$VENV/bin/python" -c "import crewai, sys; print('crewai', crewai.__version__, 'python', sys.version.split()[0])"
