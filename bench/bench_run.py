"""The main job on the full shared data: `pintag run` (train → evaluate → sources held out → tag), timed stage by stage.

Writes bench/results/run.json: test accuracy, per-class accuracy, feature-extraction img/s (cold embedding cache),
head-training seconds, whole-run seconds, and the machine. Usage: python bench/bench_run.py [DATA] [--model NAME]
"""
import os, sys, json, time, tempfile, argparse
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
if (HERE.parent.parent/'shared'/'weights').is_dir(): os.environ.setdefault('PINTAG_WEIGHTS_DIR', str(HERE.parent.parent/'shared'/'weights'))

def main():
    p = argparse.ArgumentParser()
    p.add_argument('data', nargs='?', default=os.environ.get('PINTAG_FULL_DATA', str(HERE.parent.parent/'shared'/'data'/'pinterest_open')))
    p.add_argument('--model', default=None)
    a = p.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as runs:
        os.environ['PINTAG_CACHE'] = cache                      # cold cache: every embedding computed
        t0 = time.perf_counter()
        from pintag.cli import main as cli
        from pintag.data import read_json, environment_info
        out = Path(runs)/'run'
        args = ['run', a.data, '--out', str(out), '--json'] + (['--model', a.model] if a.model else [])
        import io, contextlib
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf): rc = cli(args)
        wall = time.perf_counter() - t0
        if rc: sys.exit(f'pintag run failed with exit code {rc}')
        res, cfg, metrics = json.loads(buf.getvalue()), read_json(out/'config.json'), read_json(out/'metrics.json')
        n_feat = cfg['n_images']['train'] + cfg['n_images']['val'] + cfg['n_images']['train']*len(cfg.get('train_views', []))  # + augmented training copies
        t = metrics['timing']
        result = dict(
            benchmark='pintag run (train → evaluate → leave-one-source-out → tag) on the full data, cold embedding cache',
            data=a.data, model=res['model'], weights=cfg['weights'], n_images=cfg['n_images'],
            test_accuracy=res['test_accuracy'], per_class=res['per_class'],
            feature_images=n_feat, features_s=t['features_s'], features_img_per_s=n_feat/t['features_s'],
            head_train_s=t['head_train_s'], head_epochs=t['epochs_run'],
            evaluate_s=metrics['test']['seconds'], evaluate_img_per_s=metrics['test']['n']/metrics['test']['seconds'],
            source_held_out=res.get('source_held_out'), unsure=res.get('unsure'),
            loso_s=metrics.get('loso', {}).get('seconds'),
            whole_run_s=wall, targets=dict(test_accuracy='>= 0.97', whole_run_s='< 180'),
            machine=environment_info(), loadavg_before=load0, loadavg_after=os.getloadavg())
    (HERE/'results').mkdir(exist_ok=True)
    (HERE/'results'/'run.json').write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ('machine', 'per_class')}, indent=2))

if __name__ == '__main__': main()
