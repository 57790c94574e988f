"""Issue 8: which approach tags photos from sources the model never saw?

For each candidate (features × head), on the full data: the usual test-split accuracy and the
leave-one-source-out accuracy (each source group held out in turn; see pintag.evaluate), per class.
Writes bench/results/generalise.json. Embeddings are cached (PINTAG_CACHE), so reruns are cheap.
"""
import os, sys, json, time
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
if (HERE.parent.parent/'shared'/'weights').is_dir(): os.environ.setdefault('PINTAG_WEIGHTS_DIR', str(HERE.parent.parent/'shared'/'weights'))
DATA = os.environ.get('PINTAG_FULL_DATA', str(HERE.parent.parent/'shared'/'data'/'pinterest_open'))

from pintag.data import load_dataset, environment_info
from pintag.evaluate import leave_one_source_out, fit_logreg

CANDIDATES = [  # (label, base(s), head fitter)
    ('mobilenet pooled, logreg C=1',                 'mobilenet',                 fit_logreg(1.0)),
    ('mobilenet pooled, logreg C=0.01 balanced',     'mobilenet',                 fit_logreg(0.01, 'balanced')),
    ('mobilenetv2 pooled, logreg C=0.1 balanced',    'mobilenetv2',               fit_logreg(0.1, 'balanced')),
    ('mobilenet+mobilenetv2, logreg C=0.1 balanced', ['mobilenet', 'mobilenetv2'], fit_logreg(0.1, 'balanced')),
    ('mobilenet ImageNet top, logreg C=0.01 balanced (default)', 'mobilenet_top', fit_logreg(0.01, 'balanced')),
    ('mobilenet ImageNet top + mobilenetv2, logreg C=0.01 balanced', ['mobilenet_top', 'mobilenetv2'], fit_logreg(0.01, 'balanced')),
]

def main():
    only = sys.argv[1:]
    ds = load_dataset(DATA)
    out = HERE/'results'/'generalise.json'
    res = json.loads(out.read_text()) if out.exists() else {}
    res.update(data=DATA, machine=environment_info(), loadavg=os.getloadavg())
    res.setdefault('candidates', {})
    for label, base, fit in CANDIDATES:
        if only and not any(o in label for o in only): continue
        t0 = time.perf_counter()
        r = leave_one_source_out(ds, base, fit)
        d = r.to_dict(); d.update(label=label, wall_s=time.perf_counter() - t0)
        res['candidates'][label] = d
        pc = {row['cls']: round(row.get('held_out', row.get('accuracy', float('nan'))), 3) for row in d['per_class']}
        print(f"{label}: split {d['split_accuracy']:.3f}  held-out {d['accuracy']:.3f}  balanced {d['balanced_accuracy']:.3f}  "
              f"with-data {d['accuracy_with_data_50']:.3f}  per class {pc}", flush=True)
        (HERE/'results').mkdir(exist_ok=True); out.write_text(json.dumps(res, indent=2))

if __name__ == '__main__': main()
