"""A batch_runs template as a two-task SLURM array on a real single-node cluster (.ci/start_slurm.sh)."""

import os
import shutil
import subprocess

import pytest

from conftest import REPO
from test_data import run_script


def cluster_is_up():
    if not shutil.which('sbatch'):
        return False
    result = subprocess.run(['sinfo', '-h', '-o', '%t'], capture_output=True, text=True)
    return result.returncode == 0 and any(state in result.stdout for state in ('idle', 'mix', 'alloc'))


def test_template_runs_as_a_slurm_array(tmp_path):
    if not cluster_is_up():
        if os.environ.get('MIST_REQUIRE_SLURM') == '1':
            pytest.fail('MIST_REQUIRE_SLURM=1 but no SLURM cluster answers; start one with .ci/start_slurm.sh')
        pytest.skip('no SLURM cluster here; start one with .ci/start_slurm.sh (as root)')
    data_dir = tmp_path / 'data'
    run_script('copyproblem.py', '--data_dir', data_dir, '--delay', '10', '--num_train_examples', '200',
               '--num_val_examples', '20', '--num_test_examples', '20')
    submit_dir = tmp_path / 'submit'
    submit_dir.mkdir()
    result = subprocess.run(
        ['sbatch', '--wait', '--array=0-1', '--time=10', str(REPO / 'batch_runs' / 'copyproblem.sh'),
         '--data_dir', str(data_dir), '--copy_delay', '10', '--num_opt_steps', '25', '--num_hidden_units', '8',
         '--debug', '1'], cwd=submit_dir, capture_output=True, text=True, timeout=600)
    logs = '\n'.join(path.read_text() for path in sorted(submit_dir.glob('slurm-*.out')))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    runs = sorted(path.name for path in (data_dir / 'results').iterdir())
    assert len(runs) == 2 and runs[0].endswith('_00') != runs[1].endswith('_00'), runs
    for run in runs:
        assert run.startswith('10_MISTLayer_tanh_0008_') and (data_dir / 'results' / run / 'best').is_dir()
        assert (data_dir / 'results' / run / 'val_status.txt').read_text().split()[2] == '25'
    assert 'trial 0' in logs and 'trial 1' in logs
