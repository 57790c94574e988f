"""The main job on the full shared data: `pintag run` (train → evaluate → sources held out → tag), timed stage by stage,
then the run's nested leave-one-source-out estimate (`pintag.generalise.nested_estimate`) and per-class unsure thresholds.

Writes bench/results/run.json: test accuracy, per-class accuracy, feature-extraction img/s, head-training seconds,
whole-run seconds, the plain and the nested held-out figures, the per-class unsure thresholds, and the machine.
By default the embedding cache is the shared PINTAG_CACHE (warm: the figures then time the run, not MobileNet; how
many images were still uncached is recorded); --cold times every embedding from scratch in a fresh cache.

    python bench/bench_run.py [DATA] [--model NAME] [--cold] [--no-nested]
"""
import os, sys, json, time, tempfile, argparse, io, contextlib
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
if (HERE.parent.parent/'shared'/'weights').is_dir(): os.environ.setdefault('PINTAG_WEIGHTS_DIR', str(HERE.parent.parent/'shared'/'weights'))

def uncached(data:str, model:str)->int:
    "How many of the data's images the embedding cache still lacks for `model` (original view)."
    from pintag.data import load_dataset
    from pintag.models import EmbeddingCache, resolve_weights
    items = load_dataset(data).items
    return len(EmbeddingCache(model, resolve_weights(model)).missing(items.sha256.tolist()))

def nested_figures(run:Path)->dict:
    "The run's nested estimate, timed, and per-class unsure thresholds on its plain held-out predictions."
    from pintag.generalise import nested_estimate, pick_unsure_thresholds, unsure_held_out
    t0 = time.perf_counter(); est = nested_estimate(run); secs = time.perf_counter() - t0
    plain = next(iter(est.candidates.values()))  # the run's own settings, each source held out
    return dict(nested=dict(accuracy=est.accuracy, balanced_accuracy=est.balanced_accuracy,
                            per_class={c: round(float(a), 4) for c, a in est.held_out.per_class.accuracy.items()},
                            settings=list(est.candidates), chosen=est.to_dict()['chosen'], n_fits=est.n_fits, seconds=secs,
                            plain_at_run_settings=plain.accuracy, selection_time=est.selection_time),
                unsure_per_class=dict(pick_unsure_thresholds(plain.predictions), held_out=unsure_held_out(plain.predictions)))

def main():
    p = argparse.ArgumentParser()
    p.add_argument('data', nargs='?', default=os.environ.get('PINTAG_FULL_DATA', str(HERE.parent.parent/'shared'/'data'/'pinterest_open')))
    p.add_argument('--model', default=None)
    p.add_argument('--cold', action='store_true', help='a fresh embedding cache: time every embedding')
    p.add_argument('--no-nested', action='store_true', help='skip the nested estimate')
    a = p.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as cache, tempfile.TemporaryDirectory() as runs:
        if a.cold or not os.environ.get('PINTAG_CACHE'): os.environ['PINTAG_CACHE'] = cache
        from pintag.cli import main as cli
        from pintag.data import read_json, environment_info
        from pintag.models import DEFAULT_MODEL
        missing = uncached(a.data, a.model or DEFAULT_MODEL)
        t0 = time.perf_counter()
        out = Path(runs)/'run'
        args = ['run', a.data, '--out', str(out), '--json'] + (['--model', a.model] if a.model else [])
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf): rc = cli(args)
        wall = time.perf_counter() - t0
        if rc: sys.exit(f'pintag run failed with exit code {rc}')
        res, cfg, metrics = json.loads(buf.getvalue()), read_json(out/'config.json'), read_json(out/'metrics.json')
        n_feat = cfg['n_images']['train'] + cfg['n_images']['val'] + cfg['n_images']['train']*len(cfg.get('train_views', []))  # + augmented training copies
        t = metrics['timing']
        result = dict(
            benchmark='pintag run (train → evaluate → leave-one-source-out → tag) on the full data, then its nested estimate',
            data=a.data, model=res['model'], weights=cfg['weights'], n_images=cfg['n_images'],
            cache='cold (fresh)' if a.cold else f'warm (shared PINTAG_CACHE; {missing} images not yet embedded)',
            test_accuracy=res['test_accuracy'], per_class=res['per_class'],
            feature_images=n_feat, features_s=t['features_s'], features_img_per_s=n_feat/t['features_s'],
            head_train_s=t['head_train_s'], head_epochs=t['epochs_run'],
            evaluate_s=metrics['test']['seconds'], evaluate_img_per_s=metrics['test']['n']/metrics['test']['seconds'],
            source_held_out=res.get('source_held_out'), unsure=res.get('unsure'),
            loso_s=metrics.get('loso', {}).get('seconds'),
            whole_run_s=wall, targets=dict(test_accuracy='>= 0.97', whole_run_s='< 180'))
        if not a.no_nested: result.update(nested_figures(out))
        result.update(machine=environment_info(), loadavg_before=load0, loadavg_after=os.getloadavg())
    (HERE/'results').mkdir(exist_ok=True)
    (HERE/'results'/'run.json').write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k not in ('machine', 'per_class', 'unsure_per_class')}, indent=2))

if __name__ == '__main__': main()
