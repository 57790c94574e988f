"""Batch tagging on Ray Data against the single-process Tagger, on the full shared photo set (train + test).

Measures, in one process on the same images and model:
- the single-process `Tagger` (threads read and decode while TensorFlow runs the model on all cores);
- `pintag.scale.tag_cluster` on a local Ray with 1 and with 2 workers: end to end (listing, actor start-up,
  tagging, writing Parquet parts) and steady (the slope of images written against time between a quarter and
  nine tenths of the job, when the pipeline is full; results reach the driver a read block at a time);
- CPU time per image (all processes: the driver and Ray's daemons, workers and actors, via psutil), so the
  overhead figures hold even while other jobs share the cores;
- Ray's overhead: `ray.init`, actor start-up, and per image: the CPU-ms per image of the two-worker run beyond
  the single-process Tagger's (steady state), and the wall ms per image of one worker beyond the Tagger's;
- per-core rates of reading, decoding and inference, each measured alone in a child process with one
  TensorFlow thread, as images per CPU-second (and per wall second).
The model is the default (`mobilenet_prior`) trained on the shipped sample: tagging speed depends on the
architecture, not on what the head learnt. Writes bench/results/scale.json, with the load average before and
after each measurement (the machine is shared with other jobs, so figures are conservative).

Usage: python bench/bench_scale.py [DATA] [--run RUN] [--limit N]
       (python bench/bench_scale.py --components RUN --limit N: the per-core child process, prints JSON)
"""
import os, sys, json, time, shutil, argparse, tempfile, subprocess
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent/'shared'


def image_paths(data: str, limit: int | None) -> list:
    "Every photo of the train and test splits, sorted; the first `limit` of a fixed shuffle when asked."
    from pintag.core import IMAGE_EXTS
    paths = sorted(p for s in ('train', 'test') for p in Path(data, s).rglob('*') if p.suffix.lower() in IMAGE_EXTS)
    if limit:
        import random; random.Random(0).shuffle(paths); paths = sorted(paths[:limit])
    return paths


def timed(f):
    "(result, CPU seconds of this process, wall seconds) of calling f."
    c, w = time.process_time(), time.perf_counter()
    r = f()
    return r, time.process_time() - c, time.perf_counter() - w


def tree_cpu_s() -> float:
    "CPU seconds used so far by this process and every process below it (Ray's daemons, workers and actors)."
    import psutil
    total = 0.0
    for proc in [psutil.Process()] + psutil.Process().children(recursive=True):
        try: total += sum(proc.cpu_times()[:2])
        except psutil.Error: pass
    return total


def components(run: str, paths: list) -> dict:
    "Per-core rates: read (file → bytes), decode (bytes → array at model size), infer (arrays → probabilities)."
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(1)
    from pintag.core import load_image
    from pintag.engine import Tagger
    tagger = Tagger.from_run(run)
    for p in paths: p.read_bytes()  # warm the page cache: reading is measured from memory-backed local disk
    blobs, read_cpu, read_wall = timed(lambda: [p.read_bytes() for p in paths])
    arrays, decode_cpu, decode_wall = timed(lambda: [load_image(b, tagger.size) for b in blobs])
    tagger.predict_proba(arrays[:32])  # trace and warm up
    _, infer_cpu, infer_wall = timed(lambda: tagger.predict_proba(arrays))
    n, size = len(paths), sum(map(len, blobs))
    return dict(n_images=n, read_images_per_s=n/read_cpu, decode_images_per_s=n/decode_cpu,
                infer_images_per_s=n/infer_cpu, mean_image_kb=size/n/1024, read_mb_per_s=size/read_cpu/2**20,
                wall=dict(read_images_per_s=n/read_wall, decode_images_per_s=n/decode_wall,
                          infer_images_per_s=n/infer_wall),
                measured='images per CPU-second of one process with one TensorFlow thread (wall: per wall second); '
                         'read from the page cache; decode = Pillow decode, RGB conversion and resize to the '
                         'model input; infer = batches of 32 through the fused model')


def single_process(run: str, paths: list) -> dict:
    "The single-process Tagger on image files: load, warm up, then all images."
    from pintag.engine import Tagger
    t = time.perf_counter(); tagger = Tagger.from_run(run); load_s = time.perf_counter() - t
    tagger.tag(paths[:32])
    rows, cpu, s = timed(lambda: tagger.tag(paths))
    return dict(images_per_s=len(paths)/s, seconds=s, load_s=load_s, end_to_end_s=load_s + s,
                images_per_s_end_to_end=len(paths)/(load_s + s), cpu_ms_per_image=1000*cpu/len(paths),
                errors=sum('error' in r for r in rows), load=os.getloadavg())


def on_ray(run: str, paths: list, workers: int, folder: Path) -> dict:
    "tag_cluster with `workers` actors into a fresh Parquet output: end to end, steady, CPU per image."
    from pintag.scale import tag_cluster, read_results
    marks, out = [], folder/f'tags-{workers}.parquet'
    progress = lambda done, total: marks.append((time.perf_counter(), done, tree_cpu_s()))
    list_file = folder/'images.txt'; list_file.write_text('\n'.join(map(str, paths)) + '\n')
    t = time.perf_counter()
    summary = tag_cluster(run, list_file, out, workers=workers, part_rows=min(128, max(10, len(paths)//20)),
                          progress=progress)
    assert summary['tagged'] + summary['errors'] == len(paths) == len(read_results(out, ['image']))
    n = len(paths)  # steady: slopes between the parts at 1/4 and 9/10 of the images, when the pipeline is full
    (t1, d1, c1), (t2, d2, c2) = [next(m for m in marks if m[1] >= f*n) for f in (0.25, 0.9)]
    steady = (d2 - d1)/(t2 - t1)
    return dict(workers=summary['workers'], seconds_end_to_end=summary['seconds'],
                images_per_s_end_to_end=n/summary['seconds'], first_part_s=marks[0][0] - t, images_per_s_steady=steady,
                startup_s=summary['seconds'] - n/steady,
                cpu_ms_per_image_steady=1000*(c2 - c1)/(d2 - d1), errors=summary['errors'], load=os.getloadavg())


def measure(a, paths: list, run: Path, tmp: Path) -> dict:
    "Every measurement, in one process (the per-core rates in a child process)."
    from pintag.scale import connect_ray
    out = dict(benchmark='batch tagging on Ray Data (pintag.scale.tag_cluster) vs the single-process Tagger',
               data=a.data, subset=a.limit, n_images=len(paths), run=str(a.run or 'default model on data/sample'))
    out['single_process'] = single_process(run, paths)
    print('single process', json.dumps(out['single_process']), flush=True)
    t = time.perf_counter(); connect_ray(); out['ray_init_s'] = time.perf_counter() - t
    out['ray'] = {}
    for w in (1, 2):
        out['ray'][str(w)] = on_ray(run, paths, w, tmp)
        print(f'ray, {w} worker(s)', json.dumps(out['ray'][str(w)]), flush=True)
    import ray; ray.shutdown()
    child = subprocess.run([sys.executable, __file__, a.data, '--components', str(run)]
                           + (['--limit', str(a.limit)] if a.limit else []), capture_output=True, text=True, check=True)
    out['per_core'] = {**json.loads(child.stdout.strip().splitlines()[-1]), 'load': os.getloadavg()}
    print('per core', json.dumps(out['per_core']), flush=True)
    return out


def derived(out: dict) -> dict:
    "Ratios against the single-process Tagger and Ray's overhead, from the measurements."
    single, r1, r2, pc = out['single_process'], out['ray']['1'], out['ray']['2'], out['per_core']
    work_ms = sum(1000/pc[f'{k}_images_per_s'] for k in ('read', 'decode', 'infer'))
    ratio = dict(steady_1_worker=r1['images_per_s_steady']/single['images_per_s'],
                 steady_2_workers=r2['images_per_s_steady']/single['images_per_s'],
                 end_to_end_1_worker=r1['images_per_s_end_to_end']/single['images_per_s_end_to_end'],
                 end_to_end_2_workers=r2['images_per_s_end_to_end']/single['images_per_s_end_to_end'],
                 target_2_workers=0.8)
    overhead = dict(init_s=out['ray_init_s'], startup_s=r2['startup_s'],
                    core_ms_per_image=r2['cpu_ms_per_image_steady'] - single['cpu_ms_per_image'],
                    core_ms_per_image_vs_components=r2['cpu_ms_per_image_steady'] - work_ms,
                    wall_ms_per_image_1_worker=1000/r1['images_per_s_steady'] - 1000/single['images_per_s'],
                    measured='startup_s: end-to-end seconds less the images at the steady rate (2 workers); '
                             'core_ms_per_image: CPU-ms per image of the 2-worker run (every process, steady) minus '
                             "the single-process Tagger's; _vs_components: minus one core's read + decode + infer "
                             'CPU-ms per image; wall_ms_per_image_1_worker: 1 worker vs the Tagger, steady')
    return dict(ratio_vs_single=ratio, ray_overhead=overhead)


def main():
    p = argparse.ArgumentParser()
    p.add_argument('data', nargs='?', default=os.environ.get('PINTAG_FULL_DATA', str(SHARED/'data'/'pinterest_open')))
    p.add_argument('--run', help='a finished run folder; default: train the default model on the shipped sample')
    p.add_argument('--limit', type=int, help='a fixed subset of this many photos instead of all')
    p.add_argument('--components', metavar='RUN', help=argparse.SUPPRESS)
    a = p.parse_args()
    paths = image_paths(a.data, a.limit)
    if a.components: print(json.dumps(components(a.components, paths))); return
    load0, t_all = os.getloadavg(), time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix='bench-scale-'))
    try:
        from pintag.models import train, DEFAULT_MODEL
        from pintag.data import environment_info
        run = Path(a.run) if a.run else train(None, DEFAULT_MODEL, tmp/'run', progress=False)
        out = measure(a, paths, run, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out.update(derived(out))
    out.update(total_s=time.perf_counter() - t_all, machine=environment_info(), loadavg_before=load0,
               loadavg_after=os.getloadavg(), note='the machine is shared with other jobs: see the load averages')
    (HERE/'results').mkdir(exist_ok=True)
    part = HERE/'results'/'.scale.json.part'
    part.write_text(json.dumps(out, indent=2, default=float)); os.replace(part, HERE/'results'/'scale.json')
    print(json.dumps(dict(ratio=out['ratio_vs_single'], overhead=out['ray_overhead'],
                          load=(load0, out['loadavg_after']), total_s=out['total_s']), indent=1, default=float))


if __name__ == '__main__': main()
