"""Evaluation figures on the full shared data: 10-fold CV of MobileNet, runtime of every transfer model,
and leave-one-source-out accuracy per source and per class.

Writes bench/results/evaluate.json with the figures, the machine and the load average (the machine is shared).
Usage: python bench/bench_evaluate.py [DATA] [--skip-runtime] [--skip-mlp] [--result PATH]
"""
import os, sys, json, time, argparse
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent

def main():
    p = argparse.ArgumentParser()
    p.add_argument('data', nargs='?', default=os.environ.get('PINTAG_FULL_DATA', str(HERE.parent.parent/'shared'/'data'/'pinterest_open')))
    p.add_argument('--skip-runtime', action='store_true', help='leave out the runtime table')
    p.add_argument('--skip-mlp', action='store_true', help='cross-validate with logistic regression only')
    p.add_argument('--result', default=str(HERE/'results'/'evaluate.json'), help='where to write the figures (a trial run: elsewhere)')
    a = p.parse_args()
    load0 = os.getloadavg(); t_all = time.perf_counter()
    from pintag.core import write_json
    from pintag.data import load_dataset, environment_info
    from pintag.models import embeddings
    from pintag.evaluate import (cross_validate, fit_logreg, fit_mlp, runtime_table, leave_one_source_out,
                                 pick_unsure_threshold, markdown_table)
    ds = load_dataset(a.data)
    out = dict(benchmark='07_evaluate on the full shared data', data=str(ds.root), n_images=len(ds.items),
               n_per_split=ds.items.split.value_counts().to_dict(), classes=ds.classes)

    # embeddings first (cached after the first run), so the CV and LOSO timings are the heads' alone
    t0 = time.perf_counter()
    for b in ('mobilenet', 'mobilenetv2'): embeddings(ds.items, b)
    out['embeddings_s'] = time.perf_counter() - t0

    # 10-fold stratified CV of MobileNet on cached embeddings
    cv = {}
    fits = [('logreg', fit_logreg())] + ([] if a.skip_mlp else [('mlp', fit_mlp())])
    for name, fit in fits:
        r = cross_validate(ds, 'mobilenet', fit, folds=10)
        cv[name] = {k: r[k] for k in ('fit', 'folds', 'n', 'fold_accuracies', 'accuracy_mean', 'accuracy_std', 'fit_s',
                                      'confusion_mean', 'confusion_mean_normalised')}
        print(f"10-fold CV mobilenet + {r['fit']}: {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} in {r['fit_s']:.1f} s", flush=True)
    if 'mlp' in cv: cv['mlp_time_vs_logreg'] = cv['mlp']['fit_s']/cv['logreg']['fit_s']
    out['cv_mobilenet'] = cv

    # runtime: batch-1 latency and batched throughput, model alone on in-memory images
    if not a.skip_runtime:
        rt = runtime_table(('mobilenet', 'mobilenetv2', 'vgg16', 'inceptionv3', 'resnet50'), batch_size=32, n_single=20, n_batches=3)
        out['runtime'] = dict(measured='fused model (preprocessing + base + head) on in-memory float images, after warm-up; '
                                       'latency = median of 20 batch-1 calls; throughput = 3 batches of 32',
                              baseline='mobilenet (latency_vs_first)', table=json.loads(rt.reset_index().to_json(orient='records')),
                              loadavg_after=os.getloadavg())
        print(markdown_table(rt[['weights', 'params_m', 'latency_ms_p50', 'latency_ms_p90', 'img_s', 'latency_vs_first']], 2), flush=True)

    # leave-one-source-out, beside the usual split, with the same head fitter
    loso = {}
    for base in ('mobilenet', 'mobilenetv2', ['mobilenet', 'mobilenetv2']):
        r = leave_one_source_out(ds, base, fit_logreg())
        d = r.to_dict()
        d['unsure_threshold_on_held_out'] = pick_unsure_threshold(r.predictions.confidence, r.predictions.correct, 0.9)
        loso[r.base] = d
        print(f"\nLOSO {r.base} + {r.fit}: held out {r.accuracy:.4f} (balanced {r.balanced_accuracy:.4f}, where >= 50 left {r.accuracy_with_data(50):.4f}) vs split {r.split['accuracy']:.4f}, {r.seconds:.1f} s")
        print(markdown_table(r.per_class, 3)); print(markdown_table(r.by_source, 3), flush=True)
    out['loso'] = loso
    out['loso_summary'] = {k: dict(held_out=v['accuracy'], balanced=v['balanced_accuracy'], with_data_50=v['accuracy_with_data_50'], split=v['split_accuracy'],
                                   per_class={c['cls']: round(c['accuracy'], 4) for c in v['per_class']}) for k, v in loso.items()}
    out.update(total_s=time.perf_counter() - t_all, machine=environment_info(), loadavg_before=load0, loadavg_after=os.getloadavg())
    write_json(a.result, json.loads(json.dumps(out, default=float)))
    print(json.dumps(dict(cv={k: (v['accuracy_mean'], v['accuracy_std'], v['fit_s']) for k, v in cv.items() if isinstance(v, dict)},
                          loso=out['loso_summary'], total_s=out['total_s'], load=(load0, out['loadavg_after'])), indent=1))

if __name__ == '__main__': main()
