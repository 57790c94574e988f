"""Issue 8: which approach tags photos from sources the model never saw?

Every candidate is judged by leave-one-source-out accuracy on the full shared data (each source collection
held out in turn, a head fitted on all other images; see pintag.evaluate.leave_one_source_out), reported
per class beside the usual test-split accuracy. Candidates: features (pooled embeddings, bases side by
side, MobileNet's ImageNet top, the category prior), heads and class weights, augmentation of the training
images, test-time augmentation, and fine-tuning the top blocks.

    .venv/bin/python bench/bench_generalise.py                 # features, heads, augmentation, TTA (~15 min cold, ~3 min cached)
    .venv/bin/python bench/bench_generalise.py prior top       # only candidates whose label contains one of these words
    .venv/bin/python bench/bench_generalise.py --fine-tune coco2017 clothing-dataset caltech101   # fine-tuning, per held-out group (slow)

Writes bench/results/generalise.json (merged with earlier results). Embeddings, also of the augmented views,
are cached under PINTAG_CACHE, so reruns are cheap.
"""
import os, sys, json, time, argparse
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
if (HERE.parent.parent/'shared'/'weights').is_dir(): os.environ.setdefault('PINTAG_WEIGHTS_DIR', str(HERE.parent.parent/'shared'/'weights'))
DATA = os.environ.get('PINTAG_FULL_DATA', str(HERE.parent.parent/'shared'/'data'/'pinterest_open'))
OUT = HERE/'results'/'generalise.json'

import numpy as np, pandas as pd
from PIL import Image, ImageOps
from pintag.data import load_dataset, environment_info, to_rgb, write_json, read_json
from pintag.evaluate import (leave_one_source_out, fit_logreg, fit_mlp, embeddings, image_sources, SourceHeldOut,
                             classification_metrics)
from pintag.models import BASES, DEFAULT_MODEL, PRIOR_COLUMNS, CategoryPrior, EmbeddingCache, resolve_weights, build_base, zoom_out

def prior_only(items): return embeddings(items, 'mobilenet_prior')[:, -PRIOR_COLUMNS:]

def zero_shot(X, y, n_classes, seed=0):
    "No training at all: the category prior's largest column, mapped to the dataset's class order."
    names = CategoryPrior().names
    cols = [names.index(c) for c in CLASSES]
    return lambda Xn: np.exp(np.asarray(Xn)[:, cols])
zero_shot.label = 'none: argmax of the prior'

PRIOR = dict(C=0.003, class_weight='balanced', prior_weight=3.0)  # BASES['mobilenet_prior']
CANDIDATES = [  # (label, base(s) or features, head fitter)
    ('mobilenet pooled, logreg C=1',                        'mobilenet',                  fit_logreg(1.0)),
    ('mobilenet pooled, logreg C=0.01 balanced',            'mobilenet',                  fit_logreg(0.01, 'balanced')),
    ('mobilenet pooled, MLP head balanced',                 'mobilenet',                  fit_mlp(class_weight='balanced')),
    ('mobilenetv2 pooled, logreg C=0.1 balanced',           'mobilenetv2',                fit_logreg(0.1, 'balanced')),
    ('mobilenet+mobilenetv2, logreg C=0.1 balanced',        ['mobilenet', 'mobilenetv2'], fit_logreg(0.1, 'balanced')),
    ('mobilenet ImageNet top, logreg C=0.01 balanced',      'mobilenet_top',              fit_logreg(0.01, 'balanced')),
    ('mobilenet ImageNet top, logreg C=0.003 balanced',     'mobilenet_top',              fit_logreg(0.003, 'balanced')),
    ('mobilenet ImageNet top, logreg C=0.01 unweighted',    'mobilenet_top',              fit_logreg(0.01)),
    ('mobilenet ImageNet top + mobilenetv2, logreg C=0.01 balanced', ['mobilenet_top', 'mobilenetv2'], fit_logreg(0.01, 'balanced')),
    ('category prior alone, no training (zero-shot)',       prior_only,                   zero_shot),
    ('category prior alone (9 columns), logreg C=0.01 balanced', prior_only,              fit_logreg(0.01, 'balanced')),
    ('top + prior, prior weight 1, logreg C=0.003 balanced', 'mobilenet_prior',           fit_logreg(0.003, 'balanced')),
    ('top + prior, prior weight 3, logreg C=0.01 balanced',  'mobilenet_prior',           fit_logreg(0.01, 'balanced', prior_weight=3.0)),
    ('top + prior, prior weight 10, logreg C=0.003 balanced', 'mobilenet_prior',          fit_logreg(0.003, 'balanced', prior_weight=10.0)),
    ('top + prior, prior weight 3, logreg C=0.003 balanced',  'mobilenet_prior',          fit_logreg(**PRIOR)),
    ('top + prior, prior weight 3, logreg C=0.003 balanced, + zoomed-out training copies (mobilenet_prior)', 'mobilenet_prior', fit_logreg(**PRIOR),
     dict(train_views=BASES['mobilenet_prior']['train_views'])),
]

# Augmented views of an image (deterministic, so their embeddings can be cached like the originals')
def _crop(im, x0, y0, x1, y1): w, h = im.size; return im.crop((int(x0*w), int(y0*h), int(x1*w), int(y1*h)))
VIEWS = {
    'flip': ImageOps.mirror,
    'zoom75': lambda im: _crop(im, .125, .125, .875, .875),
    'zoom75_flip': lambda im: ImageOps.mirror(_crop(im, .125, .125, .875, .875)),
    'crop_tl': lambda im: _crop(im, 0, 0, .8, .8),
    'crop_br': lambda im: _crop(im, .2, .2, 1, 1),
    'gray': lambda im: ImageOps.grayscale(im).convert('RGB'),
    'pad70': zoom_out,  # the library's view, which mobilenet_prior trains with
}
GEOMETRIC = ['orig', 'flip', 'zoom75', 'zoom75_flip', 'crop_tl', 'crop_br']
ALL_VIEWS = GEOMETRIC + ['gray', 'pad70']

def view_embeddings(items, view:str, base:str='mobilenet_top')->np.ndarray:
    "Embeddings of one augmented view of every image, cached as base '<base>@<view>'."
    if view == 'orig': return embeddings(items, base)
    import tensorflow as tf
    from concurrent.futures import ThreadPoolExecutor
    cache = EmbeddingCache(f'{base}@{view}', resolve_weights(base))
    todo = cache.missing(items.sha256.tolist())
    if todo:
        feats = build_base(base); size = BASES[base]['size']
        fn = tf.function(lambda x: feats(x, training=False), reduce_retracing=True, autograph=False)
        def load(p):
            with Image.open(p) as im: im = to_rgb(im)
            return np.asarray(VIEWS[view](im).resize((size, size), Image.BILINEAR), np.float32)
        paths = items.drop_duplicates('sha256').set_index('sha256').loc[todo].path.tolist()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            out = [fn(np.stack(list(pool.map(load, paths[i:i+32])))).numpy() for i in range(0, len(paths), 32)]
        cache.add(todo, np.concatenate(out)); cache.save()
        print(f'  {base}@{view}: {len(todo)} images in {time.perf_counter()-t0:.0f} s', flush=True)
    return cache.get(items.sha256.tolist())

def with_prior(L:np.ndarray)->np.ndarray:
    "mobilenet_prior features from mobilenet_top ones (LogProbability inverted, then CategoryPrior)."
    return np.asarray(CategoryPrior()(np.exp(L).astype('float32') - 1e-6))

def held_out_with_views(ds, X:dict, train_views:list, test_views:list, fit, label:str)->SourceHeldOut:
    "Leave-one-source-out where the head trains on `train_views` of the other images and averages log-probabilities over `test_views`."
    items = ds.items.reset_index(drop=True); y = items.cls.map(ds.classes.index).values
    src = image_sources(ds).values; te = (items.split == 'test').values
    def predict(trm, tem):
        f = fit(np.concatenate([X[v][trm] for v in train_views]), np.concatenate([y[trm]]*len(train_views)), len(ds.classes))
        logp = np.mean([np.log(f(X[v][tem]) + 1e-9) for v in test_views], 0)
        p = np.exp(logp); return p/p.sum(1, keepdims=True)
    t0 = time.perf_counter(); pred, conf = np.zeros(len(y), int), np.zeros(len(y))
    for g in sorted(set(src)):
        h = src == g; p = predict(~h, h); pred[h], conf[h] = p.argmax(1), p.max(1)
    sp = predict(~te, te).argmax(1)
    preds = pd.DataFrame(dict(path=items.path, cls=items.cls, source=src, split=items.split, predicted=[ds.classes[i] for i in pred],
                              confidence=conf, correct=pred == y))
    return SourceHeldOut(preds, ds.classes, classification_metrics(y[te], sp, ds.classes), label, fit.label, time.perf_counter() - t0)

VIEW_CANDIDATES = [  # (label, base, train views, test views, fitter)
    ('ImageNet top, augmented training (flip)',                    'mobilenet_top',   ['orig', 'flip'], ['orig'], fit_logreg(0.003, 'balanced')),
    ('ImageNet top, augmented training (6 geometric views)',       'mobilenet_top',   GEOMETRIC, ['orig'],        fit_logreg(0.003, 'balanced')),
    ('ImageNet top, augmented training (all 8 views)',             'mobilenet_top',   ALL_VIEWS, ['orig'],        fit_logreg(0.003, 'balanced')),
    ('ImageNet top, test-time augmentation (6 geometric views)',   'mobilenet_top',   ['orig'], GEOMETRIC,        fit_logreg(0.003, 'balanced')),
    ('ImageNet top, augmented training and TTA (all 8 views)',     'mobilenet_top',   ALL_VIEWS, ALL_VIEWS,       fit_logreg(0.003, 'balanced')),
    ('top + prior, augmented training (flip)',                 'mobilenet_prior', ['orig', 'flip'], ['orig'], fit_logreg(**PRIOR)),
    ('top + prior, augmented training (greyscale)',            'mobilenet_prior', ['orig', 'gray'], ['orig'], fit_logreg(**PRIOR)),
    ('top + prior, augmented training (all 8 views)',          'mobilenet_prior', ALL_VIEWS, ['orig'],        fit_logreg(**PRIOR)),
    ('top + prior, test-time augmentation (flip)',             'mobilenet_prior', ['orig'], ['orig', 'flip'], fit_logreg(**PRIOR)),
    ('top + prior, test-time augmentation (6 geometric views)', 'mobilenet_prior', ['orig'], GEOMETRIC,       fit_logreg(**PRIOR)),
    ('top + prior, augmented training and TTA (all 8 views)',  'mobilenet_prior', ALL_VIEWS, ALL_VIEWS,       fit_logreg(**PRIOR)),
]

LABELS = [c[0] for c in CANDIDATES] + [c[0] for c in VIEW_CANDIDATES]

def fine_tune_held_out(ds, group:str, epochs:int=3)->dict:
    "Hold out one source group; linear head on frozen pooled MobileNet, then fine-tune its top blocks; held-out accuracy before and after."
    import keras
    from pintag.data import predict_batches
    from pintag.models import build_model, fit_linear_head, fine_tune
    items = ds.items.reset_index(drop=True); y = items.cls.map(ds.classes.index).values
    src = image_sources(ds).values; held = src == group
    if not held.any(): raise ValueError(f'no source group {group!r}; groups: {sorted(set(src))}')
    X = embeddings(items, 'mobilenet')
    idx = np.where(~held)[0]; np.random.default_rng(0).shuffle(idx); va, tr = idx[:len(idx)//10], idx[len(idx)//10:]
    t0 = time.perf_counter(); keras.utils.set_random_seed(0)
    model = build_model('mobilenet', len(ds.classes), hidden=())
    fit_linear_head(model.get_layer('head'), X[tr], y[tr], X[va], y[va], Cs=(0.01,), class_weight='balanced')
    before = np.asarray(model.get_layer('head')(X[held])).argmax(1) == y[held]
    h = fine_tune(model, 'mobilenet', items.iloc[tr], items.iloc[va], ds.classes, epochs=epochs, patience=1, progress=False)
    after = predict_batches(model, items.path[held].tolist(), 64).argmax(1) == y[held]
    per_class = lambda ok: {c: round(float(ok[y[held] == i].mean()), 3) for i, c in enumerate(ds.classes) if (y[held] == i).any()}
    return dict(held_out=group, n_held=int(held.sum()), n_train=len(tr), frozen=float(before.mean()), fine_tuned=float(after.mean()),
                frozen_per_class=per_class(before), fine_tuned_per_class=per_class(after), epochs_run=len(h['loss']),
                val_loss=h['val_loss'], seconds=time.perf_counter() - t0)

def summary(res:dict)->pd.DataFrame:
    "One row per candidate: split, held-out, balanced held-out and per-class held-out accuracy."
    rows = [dict(candidate=k, split=c['split_accuracy'], held_out=c['accuracy'], balanced=c['balanced_accuracy'],
                 **{r['cls']: r['accuracy'] for r in c['per_class']}) for k, c in res['candidates'].items()]
    return pd.DataFrame(rows).set_index('candidate').round(3)

def main():
    global CLASSES
    a = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    a.add_argument('only', nargs='*', help='run only candidates whose label contains one of these words')
    a.add_argument('--fine-tune', nargs='+', metavar='GROUP', help='fine-tuning with these source groups held out, instead')
    a = a.parse_args()
    ds = load_dataset(DATA); CLASSES = ds.classes
    res = read_json(OUT) if OUT.exists() else {}
    res.update(data=DATA, machine=environment_info(), default_model=DEFAULT_MODEL,
               measure='leave-one-source-out: each source group held out in turn, the head fitted on every other image')
    res.setdefault('candidates', {})
    def save():  # merge into what is on disk now: another run of this script may have written since
        disk = read_json(OUT) if OUT.exists() else {}
        for k in ('candidates', 'fine_tuning'): res[k] = {**disk.get(k, {}), **res.get(k, {})}
        res['candidates'] = {k: v for k, v in res['candidates'].items() if k in LABELS}  # drop candidates no longer defined
        OUT.parent.mkdir(exist_ok=True); write_json(OUT, {**disk, **res})
    if a.fine_tune:
        for g in a.fine_tune:
            r = fine_tune_held_out(ds, g); res.setdefault('fine_tuning', {})[g] = dict(r, loadavg=os.getloadavg())
            print(f"fine-tuning, {g} held out: {r['frozen']:.3f} frozen → {r['fine_tuned']:.3f} fine-tuned ({r['seconds']:.0f} s)", flush=True); save()
        return
    def record(label, r, kind):
        d = r.to_dict(); d.update(label=label, kind=kind, wall_s=r.seconds, loadavg=os.getloadavg())
        res['candidates'][label] = d
        pc = {row['cls']: round(row['accuracy'], 2) for row in d['per_class']}
        print(f"{label}: split {d['split_accuracy']:.3f}  held-out {d['accuracy']:.3f}  balanced {d['balanced_accuracy']:.3f}  {pc}", flush=True)
        save()
    wanted = lambda label: not a.only or any(o in label for o in a.only)
    for label, base, fit, *kw in CANDIDATES:
        if wanted(label): record(label, leave_one_source_out(ds, base, fit, **(kw[0] if kw else {})), 'features and head')
    views = [c for c in VIEW_CANDIDATES if wanted(c[0])]
    if views:
        items = ds.items.reset_index(drop=True)
        top = {v: view_embeddings(items, v) for v in ALL_VIEWS}
        X = {'mobilenet_top': top, 'mobilenet_prior': {v: with_prior(L) for v, L in top.items()}}
        for label, base, tr, ts, fit in views:
            record(label, held_out_with_views(ds, X[base], tr, ts, fit, f'{base} views'), 'test-time augmentation' if len(ts) > 1 else 'augmentation')
    print(summary(res).to_string())

if __name__ == '__main__': main()
