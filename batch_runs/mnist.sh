#!/usr/bin/env bash
#SBATCH --job-name=mnist
#SBATCH --cpus-per-task=2
#SBATCH --time=24:00:00
#SBATCH --output=slurm-%A_%a.out
#SBATCH --requeue
# One trial of the learning-rate search for mnist with the paper's settings, the learning rate drawn
# log-uniformly in [1e-4, 1e1). Extra arguments go to mnist_train.py and override these.
#   bash batch_runs/mnist.sh [--layer_type LSTMLayer]                  # one trial, here
#   sbatch --array=0-19 [--gres=gpu:1] batch_runs/mnist.sh [...]        # 20 trials on a cluster
# The array index is the trial number. A requeued or repeated trial resumes its results directory.
set -euo pipefail
# Under SLURM this file runs from a spool copy: find the submitted one through the job's command.
script=${BASH_SOURCE[0]}
if [ -n "${SLURM_JOB_ID:-}" ] && command -v scontrol >/dev/null; then
  script=$(scontrol show job "$SLURM_JOB_ID" | sed -n 's/^ *Command=\([^ ]*\).*/\1/p' | head -n 1)
  cd "${SLURM_SUBMIT_DIR:-.}"
fi
source "$(dirname "$script")/_common.sh"
exec python3 "$repo/mnist_train.py" --layer_type MISTLayer --activation_type tanh --permute 1 \
  --optimizer ClippingMomentumOptimizer --learning_rate "$learning_rate" --trial "$trial" "$@"
