#!/usr/bin/env bash
# Outlier scoring on a lent GPU: correctness, then timing, in one prepared call (bench/gpu/score.py).
#
# 1. Here, once (needs pip and the package index; .whl/ is git-ignored):
#        bash bench/gpu/check.sh --fetch-wheels
# 2. On the device machine (the device tool), from the repository root, carrying the wheels:
#        run(command="bash bench/gpu/check.sh", carry=[".whl"], timeout_s=540)
#    Files come back from $OUT: score_gpu.json and log.txt.
#
# The device image has torch, torchvision, timm, numpy, pyarrow, pandas, scipy, pillow and
# huggingface_hub; the wheels below are what rs5m.pipeline.outlier.scores and open_clip need beyond those (Python 3.12).
set -euo pipefail

WHEELS=(
  pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5
  typing_extensions==4.16.0 duckdb==2.0.1 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4
  braceexpand==0.1.7
)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
  exit 0
fi

[[ -d .whl ]] || { echo "no .whl/: run 'bash bench/gpu/check.sh --fetch-wheels' here first" >&2; exit 2; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH="$PWD:/tmp/site" PYTHONUNBUFFERED=1 NO_ALBUMENTATIONS_UPDATE=1
OUT="${OUT:-bench/out}"
mkdir -p "$OUT"

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 -c "import torch, open_clip; print('torch', torch.__version__, 'open_clip', open_clip.__version__, \
'cuda', torch.cuda.is_available(), 'cpus', __import__('os').cpu_count())"
  # correctness first, small: ours vs naive on the same images, bf16 vs fp32 (exits non-zero on an error)
  python3 bench/gpu/score.py --models ViT-B-32 --images 512 --out "$OUT/score_gpu_check.json"
  # timing: both models at batch 256 in bf16, ours vs naive in the same run
  python3 bench/gpu/score.py --models ViT-B-32 convnext_xxlarge --images 8192 --batch-size 256 \
    --precision bf16 --workers "$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))" --out "$OUT/score_gpu.json"
} 2>&1 | tee "$OUT/log.txt"
