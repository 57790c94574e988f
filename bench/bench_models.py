"""Transfer models on the full shared data: feature extraction (cold cache), heads, the original study's grid,
fine-tuning, MobileNet end to end, and tagging speed.

    .venv/bin/python bench/bench_models.py                      # every base's own model (long on 2 cores)
    .venv/bin/python bench/bench_models.py --models mobilenet   # one model (a key of MODELS); merges into the results file

Writes bench/results/models.json: per model, the figures and the load average while it ran; at the top,
the machine (pintag.data.environment_info()) and the targets. Speeds of the Tagger are also given as a
ratio against `model.predict()` measured in the same process.
"""
from __future__ import annotations
import os, sys, time, argparse, tempfile, shutil, contextlib, io, datetime
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGETS = dict(mobilenet_end_to_end_s=120, mobilenet_test_accuracy=0.97, tag_batched_img_s=50, tag_one_image_ms=40)

def load(): return [round(x, 2) for x in os.getloadavg()]

def accuracy(probs, y)->float: return float((np.asarray(probs).argmax(1) == y).mean())

@contextlib.contextmanager
def fresh_cache():
    "A cold embedding cache for the duration of a block."
    d, old = tempfile.mkdtemp(prefix='pintag-bench-cache-'), os.environ.get('PINTAG_CACHE')
    os.environ['PINTAG_CACHE'] = d
    try: yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
        if old is None: os.environ.pop('PINTAG_CACHE', None)
        else: os.environ['PINTAG_CACHE'] = old

def weights_for(name:str):
    "'auto' when the model's offline weights file exists, else None (random init: no download here)."
    from pintag.models import weights_file
    wdir = os.environ.get('PINTAG_WEIGHTS_DIR')
    return 'auto' if wdir and (Path(wdir)/weights_file(name)).is_file() else None

def bench_base(name:str, data:Path, ds, epochs:int, grid:bool)->dict:
    "Cold feature extraction, MLP and linear heads, and the grid for one base."
    import keras
    from pintag import models as M
    w = weights_for(name)
    res = dict(load_start=load())
    if M.EmbeddingCache(name, M.resolve_weights(name, w)).missing(ds.items.sha256.tolist()) != list(dict.fromkeys(ds.items.sha256)):
        raise RuntimeError(f'{name}: embedding cache is not cold')
    t0 = time.perf_counter(); feats = M.build_base(name, w); res['build_s'] = time.perf_counter() - t0
    res['weights'] = feats.weights_used
    res['weights_note'] = ('ImageNet' if w else 'RANDOM INIT (no offline ImageNet file here): not a transfer-learning result')
    print(f'[{name}] weights: {feats.weights_used}', file=sys.stderr, flush=True)
    n = len(ds.items)
    t0 = time.perf_counter(); emb = M.embed_splits(feats, ds, name); secs = time.perf_counter() - t0
    res.update(features_images=n, features_s=secs, features_img_s=n/secs, embedding_size=int(emb['train'][0].shape[1]))
    print(f'[{name}] features: {n} images in {secs:.0f} s ({n/secs:.1f} img/s)', file=sys.stderr, flush=True)
    (Xtr, ytr), (Xva, yva), (Xte, yte) = emb['train'], emb['val'], emb['test']
    keras.utils.set_random_seed(0)
    head = M.build_head(Xtr.shape[1], len(ds.classes))
    t0 = time.perf_counter(); h = M.train_head(head, Xtr, ytr, Xva, yva, epochs=epochs, progress=False)
    res['mlp'] = dict(head_s=time.perf_counter() - t0, epochs_run=len(h['loss']),
                      val_accuracy=accuracy(head(Xva, training=False), yva), test_accuracy=accuracy(head(Xte, training=False), yte))
    lin = M.build_head(Xtr.shape[1], len(ds.classes), hidden=())
    spec = M.model_spec(name)
    lin_kw = {k: spec[k] for k in ('Cs', 'class_weight') if k in spec}  # as `train` fits it
    t0 = time.perf_counter(); s = M.fit_linear_head(lin, Xtr, ytr, Xva, yva, **lin_kw)
    res['linear'] = dict(head_s=time.perf_counter() - t0, C=s['best_C'], C_val_accuracy=dict(zip(map(str, s['C']), s['C_val_accuracy'])),
                         val_accuracy=accuracy(lin(Xva, training=False), yva), test_accuracy=accuracy(lin(Xte, training=False), yte))
    print(f"[{name}] mlp test {res['mlp']['test_accuracy']:.3f} ({res['mlp']['head_s']:.0f} s), "
          f"linear test {res['linear']['test_accuracy']:.3f} ({res['linear']['head_s']:.0f} s)", file=sys.stderr, flush=True)
    if grid:
        t0 = time.perf_counter()
        g = M.grid_search(data, name, weights=w, epochs=epochs, embeddings=emb, progress=False)
        res['grid_s'] = time.perf_counter() - t0
        res['grid'] = g.drop(columns=['model', 'weights']).to_dict('records')
        best = g.sort_values(['best_val_accuracy', 'val_accuracy'], ascending=False).iloc[0]
        res['grid_best'] = dict(batch_size=int(best.batch_size), lr=float(best.lr), best_val_accuracy=float(best.best_val_accuracy),
                                test_accuracy=float(best.test_accuracy))
        print(f'[{name}] grid ({res["grid_s"]:.0f} s):\n{g.drop(columns=["model", "weights"]).round(4).to_string(index=False)}', file=sys.stderr, flush=True)
    res['load_end'] = load()
    return res

def bench_end_to_end(data:Path, out:Path, head:str='mlp')->dict:
    "MobileNet as `pintag train` runs it, from a cold cache: features + head, then evaluate on test images."
    from pintag.models import train
    from pintag.evaluate import evaluate
    from pintag.data import read_json
    res = dict(load_start=load())
    t0 = time.perf_counter(); run = train(data, 'mobilenet', out, head=head, progress=False); total = time.perf_counter() - t0
    m = read_json(run/'metrics.json')
    ev = evaluate(run)
    res.update(head=head, train_total_s=total, features_s=m['timing']['features_s'], head_s=m['timing']['head_train_s'],
               features_plus_head_s=m['timing']['features_s'] + m['timing']['head_train_s'], epochs_run=m['timing']['epochs_run'],
               val_accuracy=m['val_accuracy'], test_accuracy=ev['accuracy'], n_test=ev['n'], evaluate_s=ev['seconds'],
               per_class_test_accuracy={c: round(v['accuracy'], 4) for c, v in ev['per_class'].items()}, load_end=load())
    print(f"[mobilenet end to end, {head} head] {res['features_plus_head_s']:.0f} s features+head, test accuracy {res['test_accuracy']:.4f}", file=sys.stderr, flush=True)
    return res

def bench_fine_tune(name:str, data:Path, out:Path, epochs:int)->dict:
    "Head (on the embeddings cached by `bench_base`), then fine-tuning of the top blocks: the report `train` writes, plus timing."
    from pintag.models import train
    from pintag.data import read_json
    res = dict(load_start=load())
    t0 = time.perf_counter(); run = train(data, name, out, fine_tune=True, fine_tune_epochs=epochs, progress=False); total = time.perf_counter() - t0
    m = read_json(run/'metrics.json')
    res.update(total_s=total, features_s=m['timing']['features_s'], head_s=m['timing']['head_train_s'], **m['fine_tune'], load_end=load())
    res['fine_tune_s'] = res.pop('seconds')
    print(f"[{name} fine-tune] {res['fine_tune_s']:.0f} s, val {res['val_accuracy_before']:.4f} → {res['val_accuracy_after']:.4f}, "
          f"test {res['test_accuracy_before']:.4f} → {res['test_accuracy_after']:.4f}, kept: {res['kept']}", file=sys.stderr, flush=True)
    return res

def bench_tagging(run:Path, paths:list, n_single:int=30)->dict:
    "Tagger batched img/s and one-image latency, against load_image + model.predict() in the same process."
    from pintag.engine import Tagger
    from pintag.data import load_image
    from pintag.cli import main
    res = dict(load_start=load(), images=len(paths))
    t0 = time.perf_counter(); tagger = Tagger.from_run(run); res['load_model_s'] = time.perf_counter() - t0
    model, size = tagger.model, tagger.size
    tagger.tag(paths[:64]); model.predict(np.stack([load_image(p, size) for p in paths[:64]]).astype('float32'), batch_size=32, verbose=0)
    def best_of(fn, k=3): return min(_timed(fn) for _ in range(k))
    t_tag = best_of(lambda: tagger.tag(paths))
    t_pred = best_of(lambda: model.predict(np.stack([load_image(p, size) for p in paths]).astype('float32'), batch_size=32, verbose=0))
    res.update(tagger_batched_img_s=len(paths)/t_tag, predict_batched_img_s=len(paths)/t_pred)
    res['batched_speedup_vs_predict'] = res['tagger_batched_img_s']/res['predict_batched_img_s']
    for p in paths[:5]: tagger.tag([p]); model.predict(load_image(p, size)[None].astype('float32'), verbose=0)
    one = [_timed(lambda: tagger.tag([p])) for p in paths[:n_single]]
    one_pred = [_timed(lambda: model.predict(load_image(p, size)[None].astype('float32'), verbose=0)) for p in paths[:n_single]]
    res.update(tagger_one_image_ms_median=1e3*float(np.median(one)), tagger_one_image_ms_p90=1e3*float(np.percentile(one, 90)),
               predict_one_image_ms_median=1e3*float(np.median(one_pred)))
    res['one_image_speedup_vs_predict'] = res['predict_one_image_ms_median']/res['tagger_one_image_ms_median']
    buf = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(buf): rc = main(['tag', str(run), *map(str, paths), '--json'])
    res['cli'] = dict(rc=rc, seconds_incl_model_load=time.perf_counter() - t0, lines=len(buf.getvalue().splitlines()))
    res['cli']['img_s_incl_model_load'] = len(paths)/res['cli']['seconds_incl_model_load']
    res['load_end'] = load()
    print(f"[tagging] Tagger {res['tagger_batched_img_s']:.1f} img/s batched (predict {res['predict_batched_img_s']:.1f}), "
          f"one image {res['tagger_one_image_ms_median']:.1f} ms (predict {res['predict_one_image_ms_median']:.1f} ms); "
          f"pintag tag {res['cli']['img_s_incl_model_load']:.1f} img/s incl. model load", file=sys.stderr, flush=True)
    return res

def _timed(fn)->float:
    t0 = time.perf_counter(); fn(); return time.perf_counter() - t0

def comparison(results:dict)->list:
    "One row per base: the closing note's table."
    rows = []
    for name, r in results.get('models', {}).items():
        ft = results.get('fine_tune', {}).get(name)
        rows.append(dict(model=name, weights=Path(r['weights']).name, features_img_s=round(r['features_img_s'], 1),
                         mlp_head_s=round(r['mlp']['head_s'], 1), mlp_test_accuracy=round(r['mlp']['test_accuracy'], 4),
                         linear_head_s=round(r['linear']['head_s'], 1), linear_test_accuracy=round(r['linear']['test_accuracy'], 4),
                         fine_tune=(f"test {ft['test_accuracy_before']:.4f} → {ft['test_accuracy_after']:.4f} in {ft['fine_tune_s']:.0f} s, "
                                    f"{'kept' if ft['helped'] else 'not kept'}") if ft else 'not run',
                         grid_best=(f"bs {r['grid_best']['batch_size']}, lr {r['grid_best']['lr']:g}: val {r['grid_best']['best_val_accuracy']:.4f}, "
                                    f"test {r['grid_best']['test_accuracy']:.4f}") if 'grid_best' in r else 'not run'))
    return rows

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--models', nargs='*', default=['mobilenet', 'mobilenetv2', 'vgg16', 'inceptionv3', 'resnet50'])
    p.add_argument('--fine-tune', nargs='*', default=['mobilenet'], help='bases to fine-tune (slow: end to end on images)')
    p.add_argument('--fine-tune-epochs', type=int, default=2)
    p.add_argument('--epochs', type=int, default=60, help='head epochs (early stopping on val loss)')
    p.add_argument('--no-grid', action='store_true'); p.add_argument('--no-end-to-end', action='store_true')
    p.add_argument('--no-tagging', action='store_true')
    p.add_argument('--data', default=os.environ.get('PINTAG_FULL_DATA', str(ROOT.parent/'shared'/'data'/'pinterest_open')))
    p.add_argument('--out', default=str(ROOT/'bench'/'results'/'models.json'))
    a = p.parse_args(argv)
    from pintag.data import load_dataset, environment_info, write_json, read_json
    data, out = Path(a.data), Path(a.out)
    results = read_json(out) if out.exists() else {}
    def save():
        results.update(env=environment_info(), targets=TARGETS, data=str(data), n_images=n_images, updated=datetime.datetime.now().isoformat(timespec='seconds'),
                       note='2 CPU cores shared with other sessions: see load_start/load_end (1/5/15-min load averages) per section')
        results['comparison'] = comparison(results)
        write_json(out, results)
    ds = load_dataset(data)
    n_images = {s: int((ds.items.split == s).sum()) for s in ('train', 'val', 'test')}
    work = Path(tempfile.mkdtemp(prefix='pintag-bench-runs-'))
    try:
        with fresh_cache():  # cold for every base; bench_base fills it, fine-tuning reuses it
            for name in a.models:
                results.setdefault('models', {})[name] = bench_base(name, data, ds, a.epochs, not a.no_grid); save()
            if not a.no_end_to_end:
                for head in ('mlp', 'linear'):
                    with fresh_cache(): results.setdefault('mobilenet_end_to_end', {})[head] = bench_end_to_end(data, work/f'mobilenet-{head}', head)
                    save()
                if not a.no_tagging:
                    results['tagging'] = bench_tagging(work/'mobilenet-mlp', ds.split('test').path.tolist()[:256]); save()
            for name in a.fine_tune:
                results.setdefault('fine_tune', {})[name] = bench_fine_tune(name, data, work/f'{name}-ft', a.fine_tune_epochs); save()
    finally: shutil.rmtree(work, ignore_errors=True)
    import pandas as pd
    print(pd.DataFrame(results['comparison']).to_string(index=False))
    print(f'written: {out}')

if __name__ == '__main__': main()
