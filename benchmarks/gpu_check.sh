#!/usr/bin/env bash
# One command on one NVIDIA GPU (at most about 8 minutes): the scorer against the reference
# algorithm on the same GPU, a batch_tokens sweep with peak memory, and the values' agreement.
# Needs only torch and transformers there, plus benchmarks/gpu_assets (tokenizer and P3 samples,
# written here by `python benchmarks/gpu_check.py --prepare` and carried with the working tree).
#   benchmarks/gpu_check.sh              # on the GPU
#   benchmarks/gpu_check.sh --dry-run    # the same code paths on the CPU with a tiny model
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1
exec python benchmarks/gpu_check.py "$@"
