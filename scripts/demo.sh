#!/usr/bin/env bash
# The demo: set up the venv and Fashion-MNIST, then INT8 QAT of a ResNet with an FP32-vs-INT8 report.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
bash scripts/setup.sh
OMP_WAIT_POLICY=PASSIVE .venv/bin/netsculpt demo "$@"
