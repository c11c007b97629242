"""Summarize a learning-rate search: one row per run, best validation score first.

    python3 batch_runs/summarize.py ~/Data/CopyProblem/results [--plot curves.png]

Reads each run's params.json, val_status.txt and, if present, test_result.txt. With --plot, draws
the validation curves, one panel per layer type, each run coloured by its learning rate.
"""

import argparse
import json
import pathlib
import sys


def read_runs(results_dir):
    runs = []
    for params_path in sorted(pathlib.Path(results_dir).expanduser().glob('*/params.json')):
        run_dir = params_path.parent
        steps, values = [], []
        status = run_dir / 'val_status.txt'
        for line in (status.read_text().splitlines() if status.exists() else []):
            fields = line.split()
            if len(fields) == 5:
                steps.append(int(fields[2]))
                values.append(float(fields[3]))
        test_path = run_dir / 'test_result.txt'
        best = min(range(len(values)), key=values.__getitem__) if values else None
        runs.append({'name': run_dir.name, 'params': json.loads(params_path.read_text()), 'steps': steps,
                     'values': values, 'best_val': values[best] if values else float('inf'),
                     'best_step': steps[best] if values else None,
                     'test': test_path.read_text().strip() if test_path.exists() else ''})
    return sorted(runs, key=lambda run: run['best_val'])


def plot(runs, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    layer_types = sorted({run['params']['layer_type'] for run in runs})
    figure, axes = plt.subplots(1, len(layer_types), figsize=(5 * len(layer_types), 4), squeeze=False, sharey=True)
    rates = [run['params']['learning_rate'] for run in runs]
    norm = matplotlib.colors.LogNorm(min(rates), max(rates) * 1.0001)
    for axis, layer_type in zip(axes[0], layer_types):
        for run in runs:
            if run['params']['layer_type'] == layer_type and run['steps']:
                axis.plot(run['steps'], run['values'], color=plt.cm.viridis(norm(run['params']['learning_rate'])),
                          label=f'{run["params"]["learning_rate"]:.2g}')
        axis.set_title(layer_type)
        axis.set_xlabel('step')
        axis.legend(title='learning rate', fontsize='small')
    axes[0][0].set_ylabel('validation score')
    figure.tight_layout()
    figure.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('results_dir', type=pathlib.Path)
    parser.add_argument('--plot', type=pathlib.Path, default=None, help='a PNG file for the validation curves')
    args = parser.parse_args()
    runs = read_runs(args.results_dir)
    if not runs:
        sys.exit(f'summarize.py: no runs (folders with params.json) in {args.results_dir}.')
    print(f'{"run":<48} {"layer":<12} {"learning rate":>13} {"best val":>9} {"at step":>8} {"test":>9}')
    for run in runs:
        params = run['params']
        print(f'{run["name"]:<48} {params["layer_type"]:<12} {params["learning_rate"]:>13.6f} '
              f'{run["best_val"]:>9.4f} {str(run["best_step"]):>8} {run["test"]:>9}')
    if args.plot:
        plot(runs, args.plot)
        print(f'Wrote {args.plot}')


if __name__ == '__main__':
    main()
