"""Engines: Keras vs OpenVINO (f32, bf16) on the default model and on other bases, from image files on disk.

Trains the default model (`mobilenet_prior`) on the full shared data unless `--run` names a run (its embeddings are
cached, so this is quick), then measures in this one process, engine against engine:
  - load time (Keras: load + trace; OpenVINO: convert + compile, then from the cached IR),
  - the model alone on decoded images: batch-1 latency (p50) and batched throughput,
  - end to end from the JPEG files of the full test split through `pintag.engine.Tagger` (threads decode the next
    batch while the engine runs this one), with the time of each stage, and one image end to end,
  - top-1 agreement with Keras f32 and the largest |Δp| over the whole test split,
  - the same for MobileNetV2, InceptionV3 and VGG16 (fused models from `build_model(base, 8)`, random head),
  - `pintag tag RUN DIR --engine E` as a subprocess, start-up included (if the command takes --engine; otherwise
    the Tagger in a fresh `python` process, start-up included, and the JSON says so).
Writes bench/results/engines.json with the load average and the machine.
    .venv/bin/python bench/bench_engines.py [--run RUN] [--bases mobilenetv2 inceptionv3 vgg16] [--base-files 256]
"""
import os, sys, time, json, argparse, tempfile, subprocess, cProfile, pstats, io
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
from pathlib import Path
import numpy as np

TARGETS = dict(files_img_s=180, files_vs_keras=2.4, model_latency_ms_p50=5.0, file_latency_ms_p50=15.0, top1_agreement=0.995)

def load():
    return [round(x, 2) for x in os.getloadavg()]

def test_files(full):
    from pintag.core import IMAGE_EXTS
    files = sorted(p for p in (Path(full)/'test').rglob('*') if p.suffix.lower() in IMAGE_EXTS)
    return [str(p) for p in files], [p.parent.name for p in files]

def latency(predict, items, n=40):
    "Median and 90th percentile (ms) of batch-1 calls, after two warm-up calls."
    predict(items[:1]); predict(items[1:2])
    t = []
    for i in range(n):
        x = items[i % len(items):i % len(items) + 1]
        t0 = time.perf_counter(); predict(x); t.append(time.perf_counter() - t0)
    return dict(p50=float(np.median(t) * 1000), p90=float(np.percentile(t, 90) * 1000))

def throughput(predict, x, batch=32, reps=4):
    "Images/s of full batches on in-memory images (median of `reps` passes over 4 batches)."
    predict(x[:batch])
    rates, cpu = [], []
    for _ in range(reps):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(4): predict(x[(i * batch) % (len(x) - batch + 1):][:batch])
        rates.append(4 * batch / (time.perf_counter() - t0)); cpu.append((time.process_time() - c0) / (4 * batch) * 1000)
    return float(np.median(rates)), float(np.median(cpu))

def engines_for(run_or_model, precisions=('f32', 'bf16')):
    "{'keras f32': engine, 'openvino f32': engine, 'openvino bf16': engine (if the CPU has bf16)}, with load seconds."
    from pintag.engine import load_engine, KerasEngine, bf16_supported, OpenVINOEngine, to_openvino, openvino_ir
    out, secs = {}, {}
    t0 = time.perf_counter(); out['keras f32'] = load_engine(run_or_model, 'keras'); secs['keras f32'] = time.perf_counter() - t0
    if isinstance(run_or_model, (str, Path)):
        for f in (Path(run_or_model)/'.engine').glob('*'): f.unlink()
        t0 = time.perf_counter(); out['openvino f32'] = load_engine(run_or_model, 'openvino'); secs['openvino f32 (first: convert + compile + check)'] = time.perf_counter() - t0
        t0 = time.perf_counter(); out['openvino f32'] = load_engine(run_or_model, 'openvino'); secs['openvino f32'] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter(); ir = to_openvino(run_or_model); secs['openvino convert'] = time.perf_counter() - t0
        t0 = time.perf_counter(); out['openvino f32'] = OpenVINOEngine(ir, 'f32'); secs['openvino f32'] = time.perf_counter() - t0
    if 'bf16' in precisions and bf16_supported():
        model = ir if not isinstance(run_or_model, (str, Path)) else openvino_ir(run_or_model)
        t0 = time.perf_counter(); out['openvino bf16'] = OpenVINOEngine(model, 'bf16'); secs['openvino bf16'] = time.perf_counter() - t0
    return out, secs

def model_table(engines, x, n_lat=40, reps=4):
    "Batch-1 latency and batched throughput of every engine on in-memory images, interleaved engine by engine."
    rows = {k: dict(latency=[], img_s=[], cpu=[]) for k in engines}
    for _ in range(2):
        for k, e in engines.items():
            rows[k]['latency'].append(latency(e.predict, x, n_lat // 2)['p50'])
            rate, cpu = throughput(e.predict, x, reps=reps // 2); rows[k]['img_s'].append(rate); rows[k]['cpu'].append(cpu)
    base, base_cpu = np.median(rows['keras f32']['img_s']), np.median(rows['keras f32']['cpu'])
    return {k: dict(model_latency_ms_p50=round(float(np.median(r['latency'])), 2), model_img_s=round(float(np.median(r['img_s'])), 1),
                    model_img_s_vs_keras=round(float(np.median(r['img_s']) / base), 2),
                    model_cpu_ms_per_image=round(float(np.median(r['cpu'])), 2),
                    model_cpu_vs_keras=round(float(base_cpu / np.median(r['cpu'])), 2)) for k, r in rows.items()}

def files_pass(tagger, files):
    "One pass of a Tagger over image files: probabilities, seconds, and the time of each stage."
    for k in tagger.stats: tagger.stats[k] = 0 if k == 'images' else 0.0
    t0, c0 = time.perf_counter(), time.process_time(); p = tagger.predict_proba(files); secs = time.perf_counter() - t0
    return p, secs, dict({k: round(v, 3) for k, v in tagger.stats.items()}, cpu_s=round(time.process_time() - c0, 3))

def files_table(engines, classes, files, labels, rounds=4):
    "End to end from files for every engine (interleaved rounds): img/s, stages, one image p50, agreement with Keras, accuracy."
    from pintag.engine import Tagger, agreement
    taggers = {k: Tagger(e, classes, batch_size=32) for k, e in engines.items()}
    res = {k: dict(rates=[], stages=None, probs=None) for k in engines}
    for k, t in taggers.items(): t.predict_proba(files[:64])  # warm-up
    for _ in range(rounds):
        for k, t in taggers.items():
            p, secs, stages = files_pass(t, files)
            res[k]['rates'].append(len(files) / secs); res[k]['stages'], res[k]['probs'] = stages, p
    y = np.array([classes.index(c) for c in labels]) if labels else None
    ref = res['keras f32']['probs']; base = np.median(res['keras f32']['rates'])
    out = {}
    for k, t in taggers.items():
        one = latency(lambda paths: t.predict_proba(paths), files, 40)
        out[k] = dict(files_img_s=round(float(np.median(res[k]['rates'])), 1), files_img_s_all=[round(r, 1) for r in res[k]['rates']],
                      files_cpu_ms_per_image=round(res[k]['stages']['cpu_s'] / len(files) * 1000, 2),
                      files_img_s_if_2_idle_cores=round(2 * len(files) / res[k]['stages']['cpu_s'], 1),
                      files_vs_keras=round(float(np.median(res[k]['rates']) / base), 2), stages_last_pass=res[k]['stages'],
                      file_latency_ms_p50=round(one['p50'], 2), file_latency_ms_p90=round(one['p90'], 2),
                      **{f'vs_keras_{a}': v for a, v in agreement(ref, res[k]['probs']).items()},
                      **({'accuracy': round(float(np.mean(res[k]['probs'].argmax(1) == y)), 4)} if y is not None else {}))
        out[k]['vs_keras_top1_flipped'] = int(round((1 - out[k]['vs_keras_top1_agreement']) * len(files)))
    return out

def decode_figures(files, size=(224, 224)):
    "Decoding alone: one thread (ms per image), the Tagger's reader threads (img/s); and a large phone-sized JPEG."
    from pintag.core import load_image
    from pintag.engine import ReadAhead
    from PIL import Image
    t0 = time.perf_counter()
    for f in files[:200]: load_image(f, size)
    one = (time.perf_counter() - t0) / 200 * 1000
    reader = ReadAhead(size, 32)
    t0 = time.perf_counter()
    for _ in reader(files): pass
    threads = len(files) / (time.perf_counter() - t0)
    big = Path(tempfile.mkdtemp())/'big.jpg'
    with Image.open(files[0]) as im: im.convert('RGB').resize((4000, 3000), Image.BICUBIC).save(big, quality=90)
    t0 = time.perf_counter()
    for _ in range(5): load_image(big, size)
    big_ms = (time.perf_counter() - t0) / 5 * 1000
    t0 = time.perf_counter()
    for _ in range(5):
        with Image.open(big) as im:
            im.draft('RGB', (size[1] * 3, size[0] * 3)); np.asarray(im.convert('RGB').resize(size[::-1], Image.BILINEAR, reducing_gap=3.0))
    draft_ms = (time.perf_counter() - t0) / 5 * 1000
    return dict(one_thread_ms_per_image=round(one, 2), reader_threads_img_s=round(threads, 1), reader_workers=reader.workers,
                phone_jpeg_4000x3000_ms=round(big_ms, 1), phone_jpeg_with_draft_ms=round(draft_ms, 1))

def cli_has_engine():
    from pintag.cli import make_parser
    p = make_parser()
    sub = next(a for a in p._actions if a.__class__.__name__ == '_SubParsersAction')
    return '--engine' in sub.choices['tag'].format_help()

def tag_subprocess(run, folder, engine):
    "Seconds for tagging a folder in a fresh process, start-up included: `pintag tag` if it takes --engine, else the Tagger."
    env = {**os.environ, 'TQDM_DISABLE': '1', 'TF_CPP_MIN_LOG_LEVEL': '3'}
    if cli_has_engine(): cmd = [str(Path(sys.executable).parent/'pintag'), 'tag', str(run), str(folder), '--engine', engine, '--json']
    else: cmd = [sys.executable, '-c', 'import sys; from pathlib import Path; from pintag.engine import Tagger; '
                 'fs = sorted(str(p) for p in Path(sys.argv[2]).rglob("*.jpg")); '
                 'print(len(Tagger.from_run(sys.argv[1], engine=sys.argv[3]).tag(fs)))', str(run), str(folder), engine]
    t0 = time.perf_counter(); r = subprocess.run(cmd, capture_output=True, text=True, env=env); secs = time.perf_counter() - t0
    if r.returncode: raise RuntimeError(f"{cmd[:3]} failed: {r.stderr.strip().splitlines()[-1:]}")
    return secs

def profile_pass(tagger, files):
    "Where one Tagger pass spends its time: the top functions by cumulative time."
    pr = cProfile.Profile(); pr.enable(); tagger.predict_proba(files); pr.disable()
    s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats('cumulative').print_stats(12)
    return [l.strip() for l in s.getvalue().splitlines() if l.strip() and ('{' in l or '(' in l)][:14]

def other_bases(bases, files, n_files):
    from pintag.models import build_model
    from pintag.engine import Tagger
    out = {}
    for base in bases:
        t0 = time.perf_counter(); model = build_model(base, 8); build_s = time.perf_counter() - t0
        engines, secs = engines_for(model)
        size = engines['keras f32'].size
        from pintag.core import load_image
        x = np.stack([load_image(f, size) for f in files[:64]])
        row = dict(weights=str(getattr(model, 'weights_used', '')).split('/')[-1], input_size=list(size), build_s=round(build_s, 1),
                   load_s={k: round(v, 2) for k, v in secs.items()}, load=load())
        row['model'] = model_table(engines, x, n_lat=20, reps=2)
        row['files'] = files_table(engines, [str(i) for i in range(8)], files[:n_files], None, rounds=1)
        out[base] = row
        print(base, json.dumps({k: (v['model_img_s'], v['model_latency_ms_p50']) for k, v in row['model'].items()}),
              json.dumps({k: (v['files_img_s'], v['vs_keras_top1_agreement']) for k, v in row['files'].items()}), load(), flush=True)
        del engines, model
    return out

def targets_met(res:dict, engine:str)->dict:
    "Which targets `engine` (a key of res['files']) meets, from the figures already in `res`."
    f, m = res['files'][engine], res['model'][engine]
    return dict(files_img_s=f['files_img_s'] >= TARGETS['files_img_s'], files_vs_keras=f['files_vs_keras'] >= TARGETS['files_vs_keras'],
                model_latency_ms_p50=m['model_latency_ms_p50'] <= TARGETS['model_latency_ms_p50'],
                file_latency_ms_p50=f['file_latency_ms_p50'] <= TARGETS['file_latency_ms_p50'],
                top1_agreement=f['vs_keras_top1_agreement'] >= TARGETS['top1_agreement'])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--run', help='a run of the default model (default: train one on the full data)')
    ap.add_argument('--bases', nargs='*', default=['mobilenetv2', 'inceptionv3', 'vgg16'])
    ap.add_argument('--base-files', type=int, default=256, help='test files per other base, end to end')
    ap.add_argument('--out', default=str(Path(__file__).parent/'results'/'engines.json'))
    ap.add_argument('--keep-bases', action='store_true', help='keep the other bases already in --out instead of measuring them again')
    a = ap.parse_args()
    from pintag.core import setting
    from pintag.data import environment_info, PROJECT_ROOT
    from pintag.core import write_json, read_run
    from pintag.models import train, DEFAULT_MODEL
    from pintag.engine import Tagger, load_engine
    res = dict(benchmark='engines', load_start=load(), cpu_count=os.cpu_count(), cpu_affinity=len(os.sched_getaffinity(0)), targets=TARGETS)
    full = Path(setting('full_data') or PROJECT_ROOT.parent/'shared'/'data'/'pinterest_open')
    files, labels = test_files(full)
    run = Path(a.run) if a.run else train(full, DEFAULT_MODEL, Path(tempfile.mkdtemp(prefix='bench-engines-'))/'run', progress=False)
    _, config, classes, _ = read_run(run)
    res.update(run=str(run), run_model=config.get('model'), data=str(full), test_files=len(files))
    print(f'run {run}: {len(files)} test files; load {load()}', flush=True)

    engines, secs = engines_for(run)
    res['load_s'] = {k: round(v, 2) for k, v in secs.items()}
    res['engines'] = {k: e.info() for k, e in engines.items()}
    from pintag.core import load_image
    x = np.stack([load_image(f, (224, 224)) for f in files[:64]])
    res['model'] = model_table(engines, x); res['load_after_model'] = load()
    print('model alone', json.dumps(res['model']), load(), flush=True)
    res['files'] = files_table(engines, classes, files, labels); res['load_after_files'] = load()
    print('from files', json.dumps({k: {kk: v[kk] for kk in ('files_img_s', 'files_vs_keras', 'file_latency_ms_p50', 'vs_keras_top1_agreement', 'vs_keras_max_abs_dp')}
                                    for k, v in res['files'].items()}), load(), flush=True)
    res['decode'] = decode_figures(files)
    print('decode', res['decode'], flush=True)
    ov, kf = res['files']['openvino f32'], res['files']['keras f32']
    res['met'] = targets_met(res, 'openvino f32')   # the default engine
    res['met_by_engine'] = {e: targets_met(res, e) for e in res['files'] if e != 'keras f32'}
    res['met_if_2_idle_cores'] = dict(files_img_s=ov['files_img_s_if_2_idle_cores'] >= TARGETS['files_img_s'],
                                      files_vs_keras=ov['files_img_s_if_2_idle_cores'] / kf['files_img_s_if_2_idle_cores'] >= TARGETS['files_vs_keras'])
    if not all(res['met'].values()):
        res['profile_openvino_pass'] = profile_pass(Tagger(engines['openvino f32'], classes), files[:256])
    folder = Path(tempfile.mkdtemp(prefix='bench-tag-'))
    for f in files[:200]: (folder/Path(f).name).symlink_to(f)
    res['tag_command'] = dict(images=200, how='pintag tag RUN DIR --engine E' if cli_has_engine() else
                              'pintag tag has no --engine yet: the Tagger in a fresh python process (start-up included)')
    for eng in ('keras', 'openvino', 'keras', 'openvino'):
        res['tag_command'].setdefault(f'{eng}_s', []).append(round(tag_subprocess(run, folder, eng), 2))
    print('tag command', res['tag_command'], flush=True)
    del engines
    old = json.loads(Path(a.out).read_text()) if a.keep_bases and Path(a.out).exists() else {}
    res['bases'] = old['bases'] if old.get('bases') else other_bases(a.bases, files, a.base_files)
    if old: res['bases_measured'] = dict(load_start=old.get('load_start'), load_end=old.get('load_end'), note='kept from the previous run (--keep-bases)')
    res.update(load_end=load(), env=environment_info(),
               notes='One process; engines interleaved and medians taken; the machine (2 cores) is shared with other work: see the load '
                     'averages. model_*: the model alone on decoded 224x224 images (batch 1; batches of 32). files_*: end to end from the '
                     'JPEG files through pintag.engine.Tagger (decoding threads overlapped with inference); stages_last_pass: decode_s summed '
                     'over threads, infer_s spent in the engine, wait_s the engine waiting for decoding, cpu_s CPU time of the process. '
                     '*_cpu_ms_per_image: CPU time (all threads) per image, which other jobs on the machine disturb far less than wall '
                     'time; files_img_s_if_2_idle_cores = 2 cores / that CPU time, what two cores of our own would give. Other bases have a random head '
                     '(build_model(base, 8)), so their accuracy means nothing but their agreement with Keras does.')
    write_json(a.out, res)
    print(f"met: {res['met']}; wrote {a.out}")

if __name__ == '__main__': main()
