# Sourced by the templates, from this folder: the repository, the trial and its learning rate.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
trial=${SLURM_ARRAY_TASK_ID:-${TRIAL:-0}}
# Under SLURM the draw is seeded by the array job and the trial, so a requeued trial draws the same
# learning rate and resumes its own results directory.
seed_flag=()
if [ -n "${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-}}" ]; then
  seed_flag=(--seed "${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}$trial")
fi
learning_rate=${LEARNING_RATE:-$(python3 "$repo/batch_runs/print_learning_rate.py" random -4 1 "${seed_flag[@]}")}
echo "$(date -u +%FT%TZ) trial $trial, learning rate $learning_rate, repository $repo"
