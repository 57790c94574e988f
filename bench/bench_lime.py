"""LIME settings on the full data: seconds per explanation, top-5 stability over 3 seeds, deletion AUC (issue 7).

Trains a MobileNet run on the full shared data (embeddings are cached, so this is quick) unless `--run` names one,
explains one test image per class (`--images`) with every setting, and writes bench/results/lime.json.
The baseline is stock LIME as the seed ran it (quickshift, 1000 samples, the model called 10 images at a time
through `model.predict`), timed in the same process on the first images.
    .venv/bin/python bench/bench_lime.py [--run RUN] [--images 8] [--heavy-images 4] [--settings slic25-300 ...]
"""
import os, sys, time, json, argparse, tempfile
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np

SETTINGS = {  # name: (segmentation, n_segments, num_samples, what LIME fits)
    'quickshift-1000': ('quickshift', None, 1000, 'prob'),  # LIME's defaults
    'slic50-500': ('slic', 50, 500, 'prob'),
    'slic50-300': ('slic', 50, 300, 'prob'),
    'slic25-500': ('slic', 25, 500, 'prob'),
    'slic25-300': ('slic', 25, 300, 'prob'),
    'slic25-150': ('slic', 25, 150, 'prob'),
    'slic50-300-logodds': ('slic', 50, 300, 'logodds'),
    'slic25-300-logodds': ('slic', 25, 300, 'logodds'),
    'slic25-200-logodds': ('slic', 25, 200, 'logodds'),
    'slic25-150-logodds': ('slic', 25, 150, 'logodds'),
    'slic25-100-logodds': ('slic', 25, 100, 'logodds'),
}
TARGET_SECONDS, TARGET_STABILITY = 5.0, 0.8

def choose(rows):
    "The fastest setting (CPU time if measured for all candidates, else wall time) whose mean stability minus its standard error reaches the target and whose deletion beats random."
    for r in rows.values():
        st = [x['stability'] for x in r['per_image']]
        r['stability_se'] = round(float(np.std(st, ddof=1) / np.sqrt(len(st))), 4) if len(st) > 1 else None
    ok = [n for n, r in rows.items() if r['stability_se'] is not None and r['stability_mean'] - r['stability_se'] >= TARGET_STABILITY
          and r['deletion_auc_mean'] <= r['random_deletion_auc_mean']]
    cands = ok or list(rows)
    key = 'cpu_seconds_mean' if all('cpu_seconds_mean' in rows[n] for n in cands) else 'seconds_mean'
    return min(cands, key=lambda n: rows[n][key])

def pick_images(full, n, seed=0):
    from pintag.data import load_dataset
    test = load_dataset(full).split('test')
    rng = np.random.default_rng(seed)
    per_class = [g.path.iloc[rng.integers(len(g))] for _, g in test.groupby('cls')]
    extra = [p for p in test.path.iloc[rng.permutation(len(test))] if p not in per_class]
    return (per_class + extra)[:n]

def stock_lime_seconds(model, paths, size, cpu=False):
    "Seconds (wall, or CPU with `cpu`) per explanation of unmodified LIME: quickshift, 1000 samples, batches of 10 through model.predict."
    from lime.lime_image import LimeImageExplainer
    from pintag.data import load_image
    clock = time.process_time if cpu else time.perf_counter
    out = []
    for p in paths:
        img = load_image(p, size); t0 = clock()
        LimeImageExplainer(random_state=0).explain_instance(img, lambda x: model.predict(x, verbose=0), top_labels=1, num_samples=1000)
        out.append(clock() - t0)
    return out

def cpu_timing(base, settings, paths, baseline_images):
    "CPU seconds (all threads) of stock LIME and of each setting's LIME run alone: on 2 idle cores, wall time is about CPU/2 to CPU."
    from pintag.explain import Explainer
    stock = stock_lime_seconds(base.model, paths[:baseline_images], base.size, cpu=True)
    out = dict(stock_lime_cpu_seconds=round(float(np.mean(stock)), 2), settings={})
    for name in settings:
        seg, nseg, ns, target = SETTINGS[name]
        ex = Explainer(base.model, base.classes, segmentation=seg, n_segments=nseg or 0, num_samples=ns, target=target)
        ex.lime(paths[0], num_samples=ex.classify.batch_size)
        es = [ex.lime(p, seed=0) for p in paths]
        cpu = float(np.mean([e.cpu_seconds for e in es]))
        out['settings'][name] = dict(cpu_seconds_mean=round(cpu, 3), wall_seconds_mean=round(float(np.mean([e.seconds for e in es])), 3),
                                     estimated_idle_2core_seconds=[round(cpu / 2, 2), round(cpu, 2)], speedup_cpu_vs_stock=round(out['stock_lime_cpu_seconds'] / cpu, 1),
                                     load=os.getloadavg()[0])
        print(name, out['settings'][name], flush=True)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', help='an existing Keras run folder (default: train one on the full data)')
    ap.add_argument('--images', type=int, default=8, help='test images explained per setting')
    ap.add_argument('--baseline-images', type=int, default=2, help='images timed with stock LIME')
    ap.add_argument('--heavy-images', type=int, default=4, help='images explained by settings with 1000 samples (the slowest)')
    ap.add_argument('--settings', nargs='*', default=list(SETTINGS), help=f'subset of {list(SETTINGS)}')
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'lime.json'))
    ap.add_argument('--merge', action='store_true', help='keep the other settings already in --out (each row records its own load and stock-LIME time)')
    ap.add_argument('--cpu-timing', nargs='*', default=None, help='only measure CPU seconds of stock LIME and these settings (merged into --out)')
    a = ap.parse_args()
    import keras
    from pintag.data import environment_info, write_json, PROJECT_ROOT
    from pintag.models import train
    from pintag.explain import Explainer, DEFAULTS
    load_start = os.getloadavg()
    full = Path(os.environ.get('PINTAG_FULL_DATA', PROJECT_ROOT.parent/'shared'/'data'/'pinterest_open'))
    keras.utils.set_random_seed(0)
    run = Path(a.run) if a.run else train(full, out=Path(tempfile.mkdtemp(prefix='bench-lime-'))/'run', epochs=60)
    base = Explainer.from_run(run)
    paths = pick_images(full, a.images)
    print(f'run {run}; {len(paths)} images; load {load_start}', flush=True)
    if a.cpu_timing is not None:
        res = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
        res['cpu_timing'] = dict(cpu_timing(base, a.cpu_timing or [res.get('chosen', 'slic25-150-logodds')], paths, max(a.baseline_images, 1)),
                                 images=len(paths), load=dict(start=load_start, end=os.getloadavg()))
        for n, t in res['cpu_timing']['settings'].items():
            if n in res.get('settings', {}): res['settings'][n]['cpu_seconds_mean'] = t['cpu_seconds_mean']
        if res.get('settings'): res['chosen'] = choose(res['settings'])
        res['library_default'] = {k: DEFAULTS[k] for k in ('segmentation', 'n_segments', 'num_samples', 'target')}
        write_json(a.out, res); print(f"chosen: {res.get('chosen')}; wrote {a.out}"); return
    t_stock = stock_lime_seconds(base.model, paths[:a.baseline_images], base.size)
    baseline_s = float(np.mean(t_stock))
    print(f'stock LIME: {baseline_s:.1f} s per explanation', flush=True)
    old = json.loads(Path(a.out).read_text()) if a.merge and Path(a.out).exists() else {}
    rows = {k: v for k, v in old.get('settings', {}).items() if k not in a.settings}
    for name in a.settings:
        seg, nseg, ns, target = SETTINGS[name]
        ex = Explainer(base.model, base.classes, segmentation=seg, n_segments=nseg or 0, num_samples=ns, target=target)
        ex.lime(paths[0], num_samples=ex.classify.batch_size)  # trace the model once, outside the timings
        per, load_before = [], os.getloadavg()[0]
        for p in (paths[:a.heavy_images] if ns >= 1000 else paths):
            e = ex.explain(p, seed=0)
            d = e.to_dict()
            per.append(dict(image=str(Path(p).relative_to(full)), predicted=e.cls, probability=round(float(e.probs[e.label]), 4),
                            seconds=e.seconds, seconds_trust=e.seconds_trust, n_superpixels=e.n_segments, stability=e.stability,
                            deletion_auc=d['deletion_auc'], random_deletion_auc=d['random_deletion_auc'], drop_top5=d['drop_top'],
                            deletion_auc_logodds=d['deletion_auc_logodds'], random_deletion_auc_logodds=d['random_deletion_auc_logodds'],
                            drop_top5_logodds=d['drop_top_logodds'],
                            gradcam_iou=d['gradcam_agreement']['iou'], gradcam_iou_chance=d['gradcam_agreement']['iou_chance'],
                            gradcam_ratio=d['gradcam_agreement']['ratio']))
        m = lambda k: round(float(np.mean([r[k] for r in per if r[k] is not None])), 4)
        rows[name] = dict(segmentation=seg, n_segments=nseg, num_samples=ns, target=target, images=len(per), seconds_mean=m('seconds'),
                          seconds_max=round(max(r['seconds'] for r in per), 3), seconds_trust_mean=m('seconds_trust'),
                          stock_lime_seconds=round(baseline_s, 2), speedup_vs_stock=round(baseline_s / m('seconds'), 2), superpixels_mean=m('n_superpixels'),
                          stability_mean=m('stability'), stability_min=round(min(r['stability'] for r in per), 4),
                          deletion_auc_mean=m('deletion_auc'), random_deletion_auc_mean=m('random_deletion_auc'),
                          drop_top5_mean=m('drop_top5'), deletion_auc_logodds_mean=m('deletion_auc_logodds'),
                          random_deletion_auc_logodds_mean=m('random_deletion_auc_logodds'), drop_top5_logodds_mean=m('drop_top5_logodds'), gradcam_iou_mean=m('gradcam_iou'), gradcam_iou_chance_mean=m('gradcam_iou_chance'),
                          gradcam_ratio_mean=m('gradcam_ratio'), load_before=load_before, load_after=os.getloadavg()[0], per_image=per)
        r = rows[name]
        print(f"{name:16s} {r['seconds_mean']:6.2f} s (x{r['speedup_vs_stock']:.1f})  superpixels {r['superpixels_mean']:5.1f}  stability {r['stability_mean']:.3f}"
              f"  deletion AUC {r['deletion_auc_mean']:.3f} vs random {r['random_deletion_auc_mean']:.3f}"
              f" (log-odds {r['deletion_auc_logodds_mean']:.2f} vs {r['random_deletion_auc_logodds_mean']:.2f})  Grad-CAM IoU {r['gradcam_iou_mean']:.3f}"
              f" (chance {r['gradcam_iou_chance_mean']:.3f})  load {r['load_after']:.1f}", flush=True)
    chosen = choose(rows)
    runs = old.get('runs', []) + [dict(settings=a.settings, load=dict(start=load_start, end=os.getloadavg()), stock_lime_seconds=[round(t, 2) for t in t_stock])]
    res = dict(benchmark='lime', run=str(run), data=str(full), images=len(paths), baseline=dict(name='stock LIME (quickshift, 1000 samples, model.predict in batches of 10)',
               seconds=[round(t, 2) for t in t_stock], seconds_mean=round(baseline_s, 2)),
               target=dict(seconds=TARGET_SECONDS, stability=TARGET_STABILITY), settings=rows, chosen=chosen,
               choice_rule='fastest (CPU seconds if measured for every candidate, else wall seconds) with mean stability - standard error >= 0.8 and deletion AUC <= random',
               library_default={k: DEFAULTS[k] for k in ('segmentation', 'n_segments', 'num_samples', 'target')},
               notes='seconds: the LIME explanation alone (segmentation + sampling + model calls + fit) for seed 0; seconds_trust: the 2 extra '
                     'seeds for stability, the deletion curves (LIME order and 3 random orders) and Grad-CAM. stability: mean pairwise '
                     'Jaccard of the top-5 pixel masks over seeds 0, 1, 2. deletion AUC: area under P(class) as superpixels are '
                     'replaced by their mean colour in LIME order (lower = more faithful), vs random order; *_logodds: the same curves in log-odds '
                     '(mean log-odds along the curve; rows without them predate the log-odds target). The machine is shared '
                     'with other jobs: see load.',
               env=environment_info(), load=dict(start=load_start, end=os.getloadavg()), cpu_count=os.cpu_count(), runs=runs)
    write_json(a.out, res)
    print(f'chosen: {chosen}; wrote {a.out}')

if __name__ == '__main__': main()
