"""A second view: another network's pooled embedding beside the default's features (ImageNet classes + category prior).

The generalisation benchmark (bench_generalise.py) varies the default's mapping, C, prior weights and views, all from
MobileNet alone. This one adds a second network's pooled embedding (`--second`: MobileNetV2, 1280 columns, or InceptionV3,
2048 columns; its cached original and zoomed-out views) to those features and scores, on the full data:
  - plain leave-one-source-out for a grid of C × prior weight (each a head fitted without each source in turn), with
    the usual split beside it;
  - the NESTED figure (pintag.generalise.nested_source_held_out): per held-out source, the candidate chosen by an inner
    leave-one-source-out without it, among the default's own candidate and the grid here;
  - what a second forward pass costs, from bench/results/engines.json (the two models alone, bf16 and f32).
Writes bench/results/second_view.json (MobileNetV2) or second_view_<network>.json.
    .venv/bin/python bench/bench_second_view.py        # ~15-30 min on 2 cores with the embedding cache warm
    .venv/bin/python bench/bench_second_view.py --second inceptionv3
"""
import os, json, time, argparse
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
import numpy as np
HERE = Path(__file__).resolve().parent
TARGETS = dict(nested_accuracy=0.88, nested_per_class_min=0.75, split_accuracy=0.97, files_img_s_two_passes=180)

def feature_sets(items, second:str='mobilenetv2', views=('orig', 'zoom_out'))->dict:
    "{'current': the default's features, 'current+SECOND': the same with SECOND's pooled embedding before the prior}."
    from pintag.models import embeddings
    from pintag.generalise import mapped_features, MAPPINGS, FeatureSet
    fs = mapped_features(items, MAPPINGS['current'], views)
    extra = {v: embeddings(items, second, view=None if v == 'orig' else v) for v in views}
    both = {v: np.concatenate([fs.views[v][:, :1000], extra[v], fs.views[v][:, 1000:]], 1) for v in views}
    return {'current': fs, f'current+{second}': FeatureSet(both, fs.prior)}

def figures(r)->dict:
    "The headline figures of a `NestedHeldOut`."
    d = r.to_dict()
    per_class = {x['cls']: round(x['accuracy'], 4) for x in d['per_class']}
    return dict(accuracy=round(d['accuracy'], 4), balanced_accuracy=round(d['balanced_accuracy'], 4),
                split_accuracy=round(d['split_accuracy'], 4), min_class=min(per_class.values()), per_class=per_class)

def pass_cost(engines:dict, second:str='mobilenetv2')->dict:
    "Model-alone img/s of MobileNet (the default's network) and the second network, and of both in turn, per engine."
    one, two = engines['model'], engines['bases'][second]['model']
    both = lambda a, b: round(1 / (1 / a + 1 / b), 1)
    return {e: dict(mobilenet=one[e]['model_img_s'], **{second: two[e]['model_img_s']},
                    both=both(one[e]['model_img_s'], two[e]['model_img_s'])) for e in one if e in two}

def main():
    from pintag.core import full_data_dir, write_json, read_json
    from pintag.data import load_dataset, environment_info
    from pintag.generalise import Candidate, nested_source_held_out
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--Cs', nargs='*', type=float, default=[0.001, 0.0003, 0.0001])
    ap.add_argument('--prior-weights', nargs='*', type=float, default=[3.0, 10.0, 30.0])
    ap.add_argument('--nested-top', type=int, default=3, help='grid candidates (best plain figure first) in the nested choice')
    ap.add_argument('--second', default='mobilenetv2', choices=['mobilenetv2', 'inceptionv3', 'vgg16'],
                    help='the network whose pooled embedding is the second view')
    ap.add_argument('--out', help='default bench/results/second_view.json, or second_view_<network>.json')
    a = ap.parse_args()
    a.out = a.out or str(HERE/'results'/('second_view.json' if a.second == 'mobilenetv2' else f'second_view_{a.second}.json'))
    t0, load0 = time.perf_counter(), os.getloadavg()
    ds = load_dataset(full_data_dir()); items = ds.items.reset_index(drop=True)
    feats = feature_sets(items, a.second); name = [k for k in feats if k != 'current'][0]
    default = Candidate()
    grid = [Candidate(name, C, pw) for C in a.Cs for pw in a.prior_weights]
    fits, plain = {}, {}
    for cand in [default] + grid:
        plain[cand.label] = figures(nested_source_held_out(ds, [cand], feats, fits=fits, progress=False))
        print(f"{cand.label:64s} plain LOSO {plain[cand.label]['accuracy']:.4f} (balanced "
              f"{plain[cand.label]['balanced_accuracy']:.4f}, min class {plain[cand.label]['min_class']:.3f}) "
              f"split {plain[cand.label]['split_accuracy']:.4f}", flush=True)
    best = sorted(grid, key=lambda c: -plain[c.label]['accuracy'])[:a.nested_top]
    nested = nested_source_held_out(ds, [default] + best, feats, fits=fits, progress=False)
    d = nested.to_dict()
    out = dict(benchmark=f'second view: {a.second} pooled embedding beside the default features', data=str(ds.root),
               n_images=len(items), second=a.second, targets=TARGETS, default=default.label, plain=plain,
               nested=dict(figures(nested), candidates=[c.label for c in [default] + best], chosen=d['chosen'],
                           measure=d['measure']),
               forward_passes=pass_cost(read_json(HERE/'results'/'engines.json'), a.second),
               machine=environment_info(), loadavg_before=load0, loadavg_after=os.getloadavg(),
               seconds=round(time.perf_counter() - t0, 1))
    n = out['nested']
    out['met'] = dict(nested_accuracy=n['accuracy'] >= TARGETS['nested_accuracy'],
                      nested_per_class_min=n['min_class'] >= TARGETS['nested_per_class_min'],
                      split_accuracy=n['split_accuracy'] >= TARGETS['split_accuracy'],
                      files_img_s_two_passes=out['forward_passes']['openvino bf16']['both'] >= TARGETS['files_img_s_two_passes'])
    write_json(a.out, out)
    print(json.dumps({k: out[k] for k in ('nested', 'forward_passes', 'met')}, indent=1))

if __name__ == '__main__': main()
