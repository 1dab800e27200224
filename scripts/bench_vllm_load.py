#!/usr/bin/env python3
"""Serving-overhead benchmark driver (issue 5): alternating runs against real vLLM servers.

Conditions (docs/PERFORMANCE.md, "Serving overhead on real vLLM"):
  a  no profiler: a server started with ``VLLM_PLUGINS=`` (empty: vLLM loads no general plugin, so
     ``ms_service_profiler`` is never imported) and no ``SERVICE_PROF_CONFIG_PATH``;
  b  profiler installed, ``"enable": 0``;
  c  profiler installed, ``"enable": 1`` with the default symbols.
b and c are the same server: the driver flips ``enable`` with the user guide's sed-equivalent edit
and waits for every process to see it.  Each round runs a, b, c in a rotated order, so slow drifts
of the machine hit every condition alike; the first round of each server is a discarded warm-up.

Workload: N streaming completions (``max_tokens`` output tokens each, ``ignore_eos``) at a fixed
concurrency.  Reported per condition: throughput (output tokens/s, median over rounds and the ratio
to a), request latency and TTFT percentiles.  Results: JSON (``--json``) and a markdown table on
stdout.

``--switchback SECONDS`` measures (c) / (b) instead, on the profiled server only, as a switchback
experiment: one continuous load (``--concurrency`` streams that never stop) while ``enable`` is
flipped every ``--window`` seconds, in pairs ordered b c, c b, b c, ... (so a linear drift cancels);
the tokens that arrive in each window, after ``--settle`` seconds for the flip to reach every
process, give its throughput, and each adjacent pair one c / b ratio.  Adjacent windows of one
warm server differ far less than separate runs, which is what limits the round-based ratios.

``--concurrent`` runs the two servers *at the same time* instead (bench_vllm.sh pins each server's
process tree to its own CPU): every round sends the same workload to both at once, so whatever the
VM does to the machine in those seconds (steal, frequency, noisy neighbours) hits both, and the
round's ratio profiled / unprofiled cancels it.  Rounds alternate (b) and (c) in the order
b c c b b c ..., and (c) / (b) compares adjacent rounds' ratios, which also cancels the fixed
difference between the two CPUs and server instances.  (b) / (a) still holds that fixed difference:
bench_vllm.sh's ``MSP_BENCH_SWAP=1`` runs the servers on the other CPUs, and the geometric mean of
the two runs' (b) / (a) cancels it.
"""

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time

import aiohttp

try:
    import psutil
except ImportError:  # CPU accounting is optional
    psutil = None


STREAM = True


async def one_request(session, url, prompt, max_tokens):
    """Send one completion (streaming unless ``--no-stream``); return (latency s, ttft s, output
    tokens); ttft is NaN for a non-streaming request."""
    body = {"model": "tiny", "prompt": prompt, "max_tokens": max_tokens, "min_tokens": max_tokens,
            "ignore_eos": True, "temperature": 0}
    if not STREAM:
        t0 = time.perf_counter()
        async with session.post(url + "/v1/completions", json=body) as resp:
            resp.raise_for_status()
            msg = await resp.json()
        return time.perf_counter() - t0, float("nan"), msg["usage"]["completion_tokens"]
    body.update({"stream": True, "stream_options": {"include_usage": True}})
    t0 = time.perf_counter()
    ttft = None
    tokens = 0
    async with session.post(url + "/v1/completions", json=body) as resp:
        resp.raise_for_status()
        async for raw in resp.content:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            msg = json.loads(data)
            if ttft is None and msg.get("choices") and msg["choices"][0].get("text"):
                ttft = time.perf_counter() - t0
            if msg.get("usage"):
                tokens = msg["usage"]["completion_tokens"]
    return time.perf_counter() - t0, ttft if ttft is not None else float("nan"), tokens


async def workload(url, n, concurrency, max_tokens):
    """Run the fixed workload once; return the measurements."""
    sem = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def run(i):
            async with sem:
                return await one_request(session, url, f"request {i}: the quick brown fox", max_tokens)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(run(i) for i in range(n)))
        wall = time.perf_counter() - t0
    tokens = sum(r[2] for r in results)
    if tokens != n * max_tokens:
        raise SystemExit(f"expected {n * max_tokens} output tokens, got {tokens}")
    return {"wall_s": wall, "tokens": tokens, "latency": [r[0] for r in results], "ttft": [r[1] for r in results]}


def tree_cpu(root):
    """{process name: CPU seconds (user + system)} for a server's process tree."""
    if psutil is None or not root:
        return {}
    out = {}
    try:
        procs = [psutil.Process(root)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return {}
    for p in procs:
        try:
            t = p.cpu_times()
            name = p.name() if p.pid != root else "api_server"   # VLLM::EngineCor, VLLM::Worker, ...
            out[p.pid] = (name, t.user + t.system)
        except psutil.Error:
            pass
    return out


def cpu_delta(before, after):
    """Total CPU seconds spent by the tree between two snapshots, and per process name."""
    per = {}
    for pid, (name, t) in after.items():
        per[name] = per.get(name, 0.0) + t - before.get(pid, (None, 0.0))[1]
    return sum(per.values()), per


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    vs = sorted(values)
    k = max(0, min(len(vs) - 1, int(round(p / 100.0 * len(vs) + 0.5)) - 1))
    return vs[k]


def bootstrap_ci(values, stat=statistics.median, n=10000, seed=1):
    """95 % bootstrap confidence interval of ``stat`` over ``values`` (resampled with replacement)."""
    import random
    rng = random.Random(seed)
    k = len(values)
    if k < 2:
        return (float("nan"), float("nan"))
    est = sorted(stat([values[rng.randrange(k)] for _ in range(k)]) for _ in range(n))
    return est[int(0.025 * n)], est[int(0.975 * n) - 1]


def set_enable(path, on):
    """Flip ``enable`` the way the user guide's sed does (in place), preserving the rest."""
    with open(path) as f:
        text = f.read()
    new = re.sub(r'"enable":\s*[01]', '"enable": %d' % (1 if on else 0), text)
    with open(path, "w") as f:
        f.write(new)


async def stream_forever(url, max_tokens, arrivals, stop, i):
    """One client stream: completions back to back until ``stop``; every token's arrival time."""
    timeout = aiohttp.ClientTimeout(total=600)
    body = {"model": "tiny", "prompt": f"stream {i}: the quick brown fox", "max_tokens": max_tokens,
            "min_tokens": max_tokens, "ignore_eos": True, "temperature": 0, "stream": True}
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            async with session.post(url + "/v1/completions", json=body) as resp:
                resp.raise_for_status()
                async for raw in resp.content:
                    if raw.startswith(b"data:") and b'"text"' in raw and b'"text":""' not in raw:
                        arrivals.append(time.perf_counter())


async def switchback_run(args):
    """The switchback experiment (module docstring); returns the windows and the arrivals."""
    arrivals, stop, windows = [], asyncio.Event(), []
    streams = [asyncio.create_task(stream_forever(args.url_p, args.max_tokens, arrivals, stop, i))
               for i in range(args.concurrency)]
    set_enable(args.config, True)                    # warm-up with capture on, then off
    await asyncio.sleep(2 * args.window)
    set_enable(args.config, False)
    await asyncio.sleep(2 * args.window)
    t_end = time.perf_counter() + args.switchback
    k = 0
    while time.perf_counter() < t_end:
        for cond in (("b", "c") if k % 2 == 0 else ("c", "b")):
            set_enable(args.config, cond == "c")
            await asyncio.sleep(args.settle)
            t0 = time.perf_counter()
            await asyncio.sleep(args.window)
            windows.append((k, cond, t0, time.perf_counter()))
        k += 1
    set_enable(args.config, False)
    stop.set()
    await asyncio.gather(*streams)
    return windows, sorted(arrivals)


def switchback(args):
    import bisect
    windows, arrivals = asyncio.run(switchback_run(args))
    rate = {}
    for k, cond, t0, t1 in windows:
        n = bisect.bisect_left(arrivals, t1) - bisect.bisect_left(arrivals, t0)
        rate[(k, cond)] = n / (t1 - t0)
    pairs = sorted({k for k, _c, _t0, _t1 in windows})
    ratios = [rate[(k, "c")] / rate[(k, "b")] for k in pairs if rate.get((k, "b"))]
    b = [rate[(k, "b")] for k in pairs]
    c = [rate[(k, "c")] for k in pairs]
    lo, hi = bootstrap_ci(ratios)
    mlo, mhi = bootstrap_ci(ratios, stat=statistics.fmean)
    summary = {"pairs": len(ratios), "window_s": args.window, "settle_s": args.settle, "ratios": ratios,
               "b_tok_s": b, "c_tok_s": c, "ratio_median": statistics.median(ratios), "ratio_median_ci95": (lo, hi),
               "ratio_mean": statistics.fmean(ratios), "ratio_mean_ci95": (mlo, mhi),
               "ratio_of_totals": sum(c) / sum(b)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"switchback": summary, "concurrency": args.concurrency, "max_tokens": args.max_tokens}, f, indent=1)
    print(f"switchback: {len(ratios)} pairs of {args.window:g} s windows ({args.settle:g} s settle after each flip), "
          f"{args.concurrency} continuous streams of {args.max_tokens}-token completions on the profiled server")
    print(f"(b) enable 0: median {statistics.median(b):.1f} tok/s; (c) enable 1: median {statistics.median(c):.1f} tok/s")
    print(f"(c) / (b) per pair: median {summary['ratio_median']:.4f} [{lo:.4f}, {hi:.4f}], mean {summary['ratio_mean']:.4f} "
          f"[{mlo:.4f}, {mhi:.4f}] (95 % bootstrap CIs); ratio of totals {summary['ratio_of_totals']:.4f}")


def concurrent(args):
    """The concurrent design (module docstring): per round, one workload on each server at once."""
    async def both(n):
        return await asyncio.gather(workload(args.url_a, n, args.concurrency, args.max_tokens),
                                    workload(args.url_p, n, args.concurrency, args.max_tokens))

    for on in (True, False):                        # warm-up, capture on then off
        set_enable(args.config, on)
        time.sleep(args.settle)
        asyncio.run(both(args.requests))
    rounds = []
    for r in range(args.rounds):
        cond = "bccb"[r % 4]
        set_enable(args.config, cond == "c")
        time.sleep(args.settle)
        asyncio.run(both(args.concurrency))         # a short warm burst on each
        a, p = asyncio.run(both(args.requests))
        ta, tp = a["tokens"] / a["wall_s"], p["tokens"] / p["wall_s"]
        rounds.append({"cond": cond, "a_tok_s": ta, "p_tok_s": tp, "ratio": tp / ta,
                       "a_latency_p50_ms": pct(a["latency"], 50) * 1e3, "p_latency_p50_ms": pct(p["latency"], 50) * 1e3})
        print(f"round {r + 1} {cond}: a {ta:.1f} tok/s, p {tp:.1f} tok/s, p / a {tp / ta:.4f}", file=sys.stderr, flush=True)
    set_enable(args.config, False)
    rb = [x["ratio"] for x in rounds if x["cond"] == "b"]
    rc = [x["ratio"] for x in rounds if x["cond"] == "c"]
    # (c) / (b) from each adjacent pair of rounds (1-2, 3-4, ...: every pair holds one of each).
    cb = []
    for i in range(0, len(rounds) - 1, 2):
        x, y = rounds[i], rounds[i + 1]
        c, b = (x, y) if x["cond"] == "c" else (y, x)
        cb.append(c["ratio"] / b["ratio"])
    summary = {"rounds": rounds, "b_over_a": rb, "c_over_a": rc, "c_over_b_pairs": cb,
               "b_over_a_median": statistics.median(rb), "b_over_a_ci95": bootstrap_ci(rb),
               "c_over_a_median": statistics.median(rc), "c_over_a_ci95": bootstrap_ci(rc),
               "c_over_b_median": statistics.median(cb), "c_over_b_ci95": bootstrap_ci(cb),
               "c_over_b_mean": statistics.fmean(cb), "c_over_b_mean_ci95": bootstrap_ci(cb, stat=statistics.fmean)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"concurrent": summary, "requests": args.requests, "max_tokens": args.max_tokens,
                       "concurrency": args.concurrency}, f, indent=1)
    print(f"concurrent: {args.rounds} rounds of {args.requests} requests x {args.max_tokens} tokens at concurrency "
          f"{args.concurrency}, sent to both servers at once")
    print(f"(a) median {statistics.median(x['a_tok_s'] for x in rounds):.1f} tok/s; "
          f"profiled server median {statistics.median(x['p_tok_s'] for x in rounds):.1f} tok/s")
    for name, key in (("(b) / (a), this CPU placement", "b_over_a"), ("(c) / (a), this CPU placement", "c_over_a"),
                      ("(c) / (b), adjacent rounds", "c_over_b")):
        lo, hi = summary[key + "_ci95"]
        print(f"{name}: median {summary[key + '_median']:.4f} [{lo:.4f}, {hi:.4f}] (95 % bootstrap CI)")
    lo, hi = summary["c_over_b_mean_ci95"]
    print(f"(c) / (b), adjacent rounds: mean {summary['c_over_b_mean']:.4f} [{lo:.4f}, {hi:.4f}]")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url-a", required=True, help="server without the profiler")
    ap.add_argument("--url-p", required=True, help="server with the profiler installed")
    ap.add_argument("--config", required=True, help="SERVICE_PROF_CONFIG_PATH of the profiled server")
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds to wait after flipping enable")
    ap.add_argument("--json", help="write raw results here")
    ap.add_argument("--pid-a", type=int, default=0, help="root pid of server a (CPU accounting)")
    ap.add_argument("--pid-p", type=int, default=0, help="root pid of the profiled server (CPU accounting)")
    ap.add_argument("--switchback", type=float, default=0, help="run the switchback experiment for this many seconds instead")
    ap.add_argument("--window", type=float, default=3.0, help="switchback window, seconds")
    ap.add_argument("--concurrent", action="store_true", help="run both servers at once (see the module docstring)")
    ap.add_argument("--no-stream", action="store_true",
                    help="non-streaming requests: the client parses one response per request instead of one "
                         "event per token, so it takes far less of the CPUs it shares with the servers")
    args = ap.parse_args()
    global STREAM
    STREAM = not args.no_stream
    if args.concurrent:
        return concurrent(args)
    if args.switchback:
        return switchback(args)

    conds = {"a": args.url_a, "b": args.url_p, "c": args.url_p}
    runs = {c: [] for c in conds}

    roots = {"a": args.pid_a, "b": args.pid_p, "c": args.pid_p}

    def go(cond):
        if cond in "bc":
            set_enable(args.config, cond == "c")
            time.sleep(args.settle)
        # Every measured run starts warm: the two servers take turns, and a server that sat idle
        # while the other ran has cold caches and readers back in socket-poll mode. Without this,
        # (a) -- always preceded by the other server -- started cold more often than (b) and (c).
        asyncio.run(workload(conds[cond], args.concurrency, args.concurrency, args.max_tokens))
        before = tree_cpu(roots[cond])
        res = asyncio.run(workload(conds[cond], args.requests, args.concurrency, args.max_tokens))
        total, per = cpu_delta(before, tree_cpu(roots[cond]))
        res["cpu_s"] = total
        res["cpu_per_pid"] = per
        return res

    # warm-up: both servers, profiler side with capture on then off (first-capture costs: file set)
    for cond in ("a", "c", "b"):
        go(cond)
    order = ["a", "b", "c"]
    for r in range(args.rounds):
        rot = order[r % 3:] + order[: r % 3]
        for cond in rot:
            res = go(cond)
            runs[cond].append(res)
            per = " ".join(f"{k} {v:.2f}" for k, v in sorted(res["cpu_per_pid"].items(), key=lambda kv: -kv[1])[:3])
            print(f"round {r + 1} {cond}: {res['tokens'] / res['wall_s']:.1f} tok/s, server CPU {res['cpu_s']:.2f} s (top: {per})", file=sys.stderr, flush=True)
    set_enable(args.config, False)

    summary = {}
    for cond, rs in runs.items():
        tput = [x["tokens"] / x["wall_s"] for x in rs]
        lat = [v for x in rs for v in x["latency"]]
        ttft = [v for x in rs for v in x["ttft"]]
        summary[cond] = {
            "throughput_tok_s": tput,
            "median_tok_s": statistics.median(tput),
            "latency_p50_ms": pct(lat, 50) * 1e3,
            "latency_p90_ms": pct(lat, 90) * 1e3,
            "latency_p99_ms": pct(lat, 99) * 1e3,
            "ttft_p50_ms": pct(ttft, 50) * 1e3,
            "ttft_p99_ms": pct(ttft, 99) * 1e3,
            "server_cpu_s_median": statistics.median(x["cpu_s"] for x in rs),
        }
    # per-round ratios (each round has one run of every condition, close in time)
    # (c) against (b): the same server instance, so only the cost of capturing differs.
    cb = [x / y for x, y in zip(summary["c"]["throughput_tok_s"], summary["b"]["throughput_tok_s"])]
    summary["c"]["ratio_to_b_median"] = statistics.median(cb)
    summary["c"]["ratio_to_b_ci95"] = bootstrap_ci(cb)
    for cond in ("b", "c"):
        ratios = [x / y for x, y in zip(summary[cond]["throughput_tok_s"], summary["a"]["throughput_tok_s"])]
        summary[cond]["ratio_per_round"] = ratios
        summary[cond]["ratio_median"] = statistics.median(ratios)
        summary[cond]["ratio_of_medians"] = summary[cond]["median_tok_s"] / summary["a"]["median_tok_s"]
        # per process: median over rounds of (this condition's CPU s) - (a's CPU s) in that round
        summary[cond]["cpu_delta_per_process_s"] = {
            name: statistics.median(x["cpu_per_pid"].get(name, 0.0) - y["cpu_per_pid"].get(name, 0.0) for x, y in zip(runs[cond], runs["a"]))
            for name in runs[cond][0]["cpu_per_pid"]}
        summary[cond]["ratio_ci95"] = bootstrap_ci(ratios)
        cpu = [x["cpu_s"] / y["cpu_s"] for x, y in zip(runs[cond], runs["a"]) if y["cpu_s"] > 0]
        if cpu:
            summary[cond]["cpu_ratio_median"] = statistics.median(cpu)
            summary[cond]["cpu_ratio_ci95"] = bootstrap_ci(cpu)
    meta = {"requests": args.requests, "max_tokens": args.max_tokens, "concurrency": args.concurrency, "rounds": args.rounds}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workload": meta, "summary": summary}, f, indent=1)

    names = {"a": "(a) no profiler", "b": "(b) installed, enable 0", "c": "(c) enable 1, default symbols"}
    print(f"workload: {args.requests} requests x {args.max_tokens} output tokens, concurrency {args.concurrency}, {args.rounds} alternating rounds")
    print("| condition | tok/s (median) | throughput ratio to (a): median of per-round [95 % CI] | latency p50 / p90 / p99 ms "
          "| TTFT p50 / p99 ms | server CPU s per run (median) | CPU ratio to (a) [95 % CI] |")
    print("|---|---|---|---|---|---|---|")
    for cond in ("a", "b", "c"):
        s = summary[cond]
        ratio = cpu = "1"
        if cond != "a":
            lo, hi = s["ratio_ci95"]
            ratio = f"{s['ratio_median']:.4f} [{lo:.4f}, {hi:.4f}]"
            if "cpu_ratio_median" in s:
                lo, hi = s["cpu_ratio_ci95"]
                cpu = f"{s['cpu_ratio_median']:.4f} [{lo:.4f}, {hi:.4f}]"
        print(
            f"| {names[cond]} | {s['median_tok_s']:.1f} | {ratio} | {s['latency_p50_ms']:.0f} / {s['latency_p90_ms']:.0f} / {s['latency_p99_ms']:.0f} "
            f"| {s['ttft_p50_ms']:.0f} / {s['ttft_p99_ms']:.0f} | {s['server_cpu_s_median']:.2f} | {cpu} |"
        )
    lo, hi = summary["c"]["ratio_to_b_ci95"]
    print(f"(c) / (b), same server instance: median of per-round throughput ratios {summary['c']['ratio_to_b_median']:.4f} [{lo:.4f}, {hi:.4f}]")
    cb = {name: statistics.median(x["cpu_per_pid"].get(name, 0.0) - y["cpu_per_pid"].get(name, 0.0) for x, y in zip(runs["c"], runs["b"]))
          for name in runs["c"][0]["cpu_per_pid"]}
    print("CPU s per run, (c) - (b), median over rounds, per process: " + ", ".join(f"{k} {v:+.3f}" for k, v in sorted(cb.items())))


if __name__ == "__main__":
    main()
