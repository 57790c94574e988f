"""Serving figures: 32 concurrent clients post photos to POST /tag for 60 s, micro-batched (max batch 32, max wait
5 ms) against one image per forward pass (max batch 1) under the same load: throughput, p50/p99 latency, errors,
the batches formed, and the server's CPU time per request.

Each server is `pintag serve` (`pintag.serve.cli_serve`) in a process of its own on 127.0.0.1; the load comes from
this process (plain asyncio HTTP/1.1, one kept-alive connection per client). The two servers are measured in
alternating slices (A B A B …, 60 s each in all) so that other jobs on a shared machine weigh on both alike.
Bounded: at most `--max-requests` per slice, and each slice stops sending after its seconds.
Writes bench/results/serve.json with the figures, the machine and the load average.
Usage: python bench/bench_serve.py [--run RUN] [--clients 32] [--seconds 60] [--slices 4]
"""
import os, sys, re, json, time, asyncio, argparse, tempfile, subprocess, threading
from pathlib import Path
os.environ.setdefault('TQDM_DISABLE', '1'); os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')
HERE = Path(__file__).resolve().parent
SERVE = 'import sys; from pintag.serve import cli_serve; sys.exit(cli_serve(sys.argv[1:]))'
MODES = {'micro-batched': ['--max-batch', '32', '--max-wait-ms', '5'],
         'one at a time': ['--max-batch', '1', '--max-wait-ms', '0']}

def start_server(run, args:list)->tuple:
    "`pintag serve RUN --port 0 ARGS` in its own process; (process, URL)."
    p = subprocess.Popen([sys.executable, '-c', SERVE, str(run), '--host', '127.0.0.1', '--port', '0', *args],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        if m := re.search(r' on (http://127\.0\.0\.1:\d+/) ', line): break
    else: raise RuntimeError(f'pintag serve exited with {p.wait()} before printing its address')
    threading.Thread(target=p.stderr.read, daemon=True).start()  # keep its log flowing
    return p, m.group(1)

def cpu_seconds(pid:int)->float:
    "User + system CPU seconds of a process, all threads (Linux /proc)."
    fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

async def post(conn:list, host:str, port:int, body:bytes)->tuple:
    "POST /tag on a kept-alive connection (opened on demand; `conn` holds its reader and writer); (ok, reason)."
    if not conn: conn += await asyncio.open_connection(host, port)
    reader, writer = conn
    writer.write(b'POST /tag HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n'
                 % (host.encode(), port, len(body)) + body)
    head = await reader.readuntil(b'\r\n\r\n')
    status, length = int(head.split(b' ', 2)[1]), int(re.search(rb'(?i)\r\ncontent-length: *(\d+)', head)[1])
    answer = json.loads(await reader.readexactly(length))
    if b'connection: close' in head.lower(): writer.close(); conn.clear()
    return status == 200 and len(answer['tags']) == 3, f'HTTP {status}'

async def load(url:str, payloads:list, clients:int, seconds:float, max_requests:int)->dict:
    """`clients` connections posting photos to /tag back to back for `seconds`; latencies of the answers, errors.
    A plain asyncio HTTP/1.1 client, so that the load generator takes as little as possible of the CPU the server needs
    (its CPU per request is recorded)."""
    host, port = re.match(r'http://([\d.]+):(\d+)/', url).groups(); port = int(port)
    latencies, errors, stop = [], [], time.perf_counter() + seconds
    async def client(i):
        k, conn = i, []
        while time.perf_counter() < stop and len(latencies) + len(errors) < max_requests:
            t0 = time.perf_counter()
            try: ok, why = await asyncio.wait_for(post(conn, host, port, payloads[k % len(payloads)]), 120)
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
                ok, why = False, type(e).__name__
                if conn: conn[1].close(); conn.clear()
            (latencies.append(time.perf_counter() - t0) if ok else errors.append(why)); k += clients
        if conn: conn[1].close()
    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client(i) for i in range(clients)))
    return dict(ok=len(latencies), errors=errors, wall_s=time.perf_counter() - t0,
                client_cpu_s=time.process_time() - c0, latencies=latencies)

def percentile(xs:list, q:float)->float:
    xs = sorted(xs); return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

def summary(slices:list, batching:dict, cpu_s:float)->dict:
    lat = [x for s in slices for x in s['latencies']]
    ok, wall = sum(s['ok'] for s in slices), sum(s['wall_s'] for s in slices)
    return dict(requests=ok, errors=sum(len(s['errors']) for s in slices),
                error_kinds=sorted({e for s in slices for e in s['errors']}),
                seconds=round(wall, 2), throughput_req_s=round(ok / wall, 2),
                p50_ms=round(1000 * percentile(lat, 50), 1), p90_ms=round(1000 * percentile(lat, 90), 1),
                p99_ms=round(1000 * percentile(lat, 99), 1), max_ms=round(1000 * max(lat), 1),
                slice_throughputs=[round(s['ok'] / s['wall_s'], 2) for s in slices],
                client_cpu_ms_per_request=round(1000 * sum(s['client_cpu_s'] for s in slices) / max(1, ok), 2),
                batches=batching['batches'], mean_batch=round(batching['images'] / max(1, batching['batches']), 2),
                largest_batch=batching['largest_batch'], server_cpu_ms_per_request=round(1000 * cpu_s / max(1, ok), 2))

def photos(n:int=256)->tuple:
    "(bytes of up to `n` test photos, their folder): the shared full data when present, else the shipped sample."
    from pintag.core import sample_dir
    full = Path(os.environ.get('PINTAG_FULL_DATA', HERE.parent.parent/'shared'/'data'/'pinterest_open'))
    root = full/'test' if (full/'test').is_dir() else sample_dir()/'test'
    files = sorted(root.rglob('*.jpg'))
    return [f.read_bytes() for f in files[::max(1, len(files) // n)][:n]], str(root)

def main():
    p = argparse.ArgumentParser()
    p.add_argument('--run', help='run folder (default: train mobilenet_prior on data/sample, embeddings cached)')
    p.add_argument('--clients', type=int, default=32)
    p.add_argument('--seconds', type=float, default=60, help='per mode, in all')
    p.add_argument('--slices', type=int, default=4, help='alternating slices the seconds are cut into')
    p.add_argument('--warmup', type=float, default=3); p.add_argument('--max-requests', type=int, default=100_000)
    p.add_argument('--engine', help="the servers' engine (default: the service's own choice, `auto`)")
    p.add_argument('--out', default=str(HERE/'results'/'serve.json'))
    a = p.parse_args()
    load0, t_all = os.getloadavg(), time.perf_counter()
    from pintag.core import write_json
    from pintag.data import environment_info
    run = a.run
    if run is None:
        from pintag.models import train
        run = train(None, 'mobilenet_prior', Path(tempfile.mkdtemp(prefix='bench-serve-'))/'run')
    payloads, source = photos()
    engine = ['--engine', a.engine] if a.engine else []
    servers = {mode: start_server(run, args + engine) for mode, args in MODES.items()}
    import httpx
    try:
        for mode, (proc, url) in servers.items(): asyncio.run(load(url, payloads, a.clients, a.warmup, a.max_requests))
        before = {m: (httpx.get(u + 'healthz').json()['batching'], cpu_seconds(p.pid)) for m, (p, u) in servers.items()}
        slices, loads = {m: [] for m in servers}, []
        for i in range(a.slices):
            for mode, (proc, url) in servers.items():
                slices[mode].append(asyncio.run(load(url, payloads, a.clients, a.seconds / a.slices, a.max_requests)))
                loads.append(os.getloadavg()[0])
                print(f"{mode:<14} slice {i+1}: {slices[mode][-1]['ok'] / slices[mode][-1]['wall_s']:.1f} req/s, "
                      f"{len(slices[mode][-1]['errors'])} errors", flush=True)
        results = {}
        for m, (proc, url) in servers.items():
            b0, c0 = before[m]; b1 = httpx.get(url + 'healthz').json()['batching']
            batching = {k: b1[k] - b0[k] for k in ('batches', 'images')} | {'largest_batch': b1['largest_batch']}
            results[m] = summary(slices[m], batching, cpu_seconds(proc.pid) - c0)
    finally:
        for proc, _ in servers.values(): proc.terminate(); proc.wait(30)
    mb, one = results['micro-batched'], results['one at a time']
    out = dict(benchmark='serve: POST /tag under concurrent load, micro-batched vs one image per forward pass',
               run=str(run), photos=dict(source=source, count=len(payloads),
                                         mean_bytes=round(sum(map(len, payloads)) / len(payloads))),
               engine=a.engine or 'auto', clients=a.clients, seconds_per_mode=a.seconds, slices=a.slices,
               modes={m: ' '.join(v) for m, v in MODES.items()},
               results=results, throughput_ratio=round(mb['throughput_req_s'] / one['throughput_req_s'], 2),
               p50_ratio=round(one['p50_ms'] / mb['p50_ms'], 2),
               cpu_per_request_ratio=round(one['server_cpu_ms_per_request'] / mb['server_cpu_ms_per_request'], 2),
               target=dict(throughput_ratio=1.5, errors=0), zero_errors=mb['errors'] == one['errors'] == 0,
               measured='throughput = answered requests / wall time of the slices; '
                        'latency from the client, send to parsed answer; '
                        'server CPU from /proc (all threads: HTTP, decoding, model); client CPU of this process',
               machine=environment_info(), loadavg_before=load0, loadavg_during=loads, loadavg_after=os.getloadavg(),
               total_s=round(time.perf_counter() - t_all, 1))
    write_json(a.out, out)
    figures = {k: out[k] for k in ('throughput_ratio', 'p50_ratio', 'cpu_per_request_ratio', 'zero_errors',
                                   'loadavg_before')}
    shown = ('throughput_req_s', 'p50_ms', 'p99_ms', 'errors', 'mean_batch')
    per_mode = {m: {k: r[k] for k in shown} for m, r in results.items()}
    print(json.dumps(figures | per_mode, indent=1))

if __name__ == '__main__': main()
