#!/usr/bin/env bash
# One-command set-up of a fresh Debian/Ubuntu machine (Python >= 3.10): system tools, PyTorch, sfc.
#   bash envs/setup.sh
# System packages: ffmpeg (museval -> musdb -> stempeg needs ffmpeg/ffprobe at import time). Set
# SFC_SKIP_APT=1 to skip apt-get. The SLURM workflow test installs Debian's Slurm itself on first use: a
# slurm-client without a running controller slows every Snakemake start by ~9 s (plugin probe).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || need_apt+=(ffmpeg)
if [ "${#need_apt[@]}" -gt 0 ] && [ "${SFC_SKIP_APT:-0}" != 1 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: apt-get install ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# torch first and pinned: on the CPU machines of this project 2.13.0 resolves to a local CPU build.
python3 -m pip install -q "torch==2.13.0"
python3 -m pip install -q -e ".[dev]"

# mamba-ssm's pure-PyTorch reference for the CPU parity test (tests/models/test_mamba.py): the pinned
# release built without its CUDA extensions (--no-deps: no triton/transformers). MAMBA_FORCE_BUILD must be
# TRUE (else pip fetches a CUDA wheel). On a CUDA machine install the kernels instead: pip install -e ".[gpu]".
MAMBA_SSM=2.3.2.post1
have_mamba=$(python3 -c "from importlib.metadata import version; print(version('mamba_ssm'))" 2>/dev/null || true)
if [ "$have_mamba" != "$MAMBA_SSM" ]; then
  if python3 -c "import sys, torch; sys.exit(torch.cuda.is_available())"; then
    python3 -m pip install -q einops wheel setuptools packaging
    MAMBA_FORCE_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE python3 -m pip install -q \
      --no-build-isolation --no-deps "mamba-ssm==$MAMBA_SSM"
  else
    echo "setup: CUDA present: mamba-ssm ${have_mamba:-absent}; for the fused kernels: pip install -e '.[gpu]'"
  fi
fi
python3 -c "import sfc, torch, museval; print('setup: sfc', sfc.__version__, '| torch', torch.__version__)"
