#!/usr/bin/env bash
# Create .venv-bench: the system python + torch, plus the peer codecs used by the benchmarks.
#
# The peers are installed with --no-deps, so that pip never pulls torchaudio (it breaks next to a
# CPU-only torch) or descript-audiotools. benchmarks/peers.py loads their model code without the
# package __init__ files that import those. Only pure-Python import-time deps are added, pinned.
# Nothing here becomes a dependency of fsq_audio.
#
# Usage: bash benchmarks/setup_peers.sh [VENV_DIR]   (default: .venv-bench at the repo root)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${1:-$repo_root/.venv-bench}"
python="${PYTHON:-python3}"

log() { echo "$(date '+%H:%M:%S') setup_peers: $*" >&2; }

"$python" -c "import torch, fsq_audio" 2>/dev/null || {
  log "the system python needs torch and fsq_audio (pip install -e . at the repo root) first"
  exit 1
}

if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv (--system-site-packages: it sees the system torch and fsq_audio)"
  "$python" -m venv --system-site-packages "$venv"
fi

# The peers themselves, then the pure-Python modules they import (vector-quantize-pytorch -> einx,
# loguru, torch-einops-utils; einx -> frozendict; sympy and einops come with the system python).
log "installing peers with --no-deps"
"$venv/bin/pip" install --quiet --no-deps \
  "encodec==0.1.1" \
  "descript-audio-codec==1.0.0" \
  "vector-quantize-pytorch==1.32.0" \
  "einx==0.4.3" \
  "frozendict==2.5.1" \
  "loguru==0.7.3" \
  "torch-einops-utils==0.2.0"

if "$venv/bin/python" -c "import torchaudio" 2>/dev/null; then
  log "note: torchaudio is importable in $venv; the stock encodec/dac classes will be used"
fi

cd "$repo_root"
log "checking that the peers build"
"$venv/bin/python" - <<'EOF'
import sys, warnings
sys.path.insert(0, ".")
warnings.filterwarnings("ignore")
from benchmarks import peers
from vector_quantize_pytorch import FSQ
for build in (peers.encodec_24khz, peers.dac_16khz):
    r = build()
    print(f"  {r.name}: {r.params / 1e6:.1f} M params, {r.sample_rate} Hz ({r.note})")
print(f"  vector_quantize_pytorch.FSQ: {FSQ([8, 5, 5, 5]).codebook_size} codes")
EOF
log "done: run the benchmarks with $venv/bin/python benchmarks/<script>.py"
