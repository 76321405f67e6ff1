"""Benchmark: good-URL throughput of ``download_partition`` when half the hosts are dead, DNS cache on vs off.

One image server on 127.0.0.1 (a separate process) answers for every host name; which name a URL uses
only matters to the fake resolver each run is given (no real resolver and no other address is ever
asked):

- ``good-<i>.localhost``: 127.0.0.1 after ``--good-dns-ms`` (an uncached recursive lookup); the server
  waits ``--good-ms`` before each answer (an internet round trip and transfer; 0: loopback speed);
- ``slow-<i>.localhost``: 127.0.0.1 too, but the server waits ``--slow-s`` before each answer;
- ``nx-<i>.localhost``: NXDOMAIN (``EAI_NONAME``) after ``--nx-dns-ms``;
- ``blackhole-<i>.localhost``: the lookup hangs ``--blackhole-s`` (glibc's default per-try timeout is
  5 s), then fails with ``EAI_AGAIN``.

Two host mixes, every host with ``--urls-per-host`` URLs: "0 % dead" = the good and slow hosts;
"50 % dead" = the same plus as many dead hosts (``--blackholed`` of them blackholed, the rest NXDOMAIN).
Two DNS modes: "cache" = this process's ``CachingResolver`` (fresh per run, i.e. a cold cache, with the
default ``DownloadConfig`` DNS settings: prefetch, coalescing, 2 s lookup limit); "no cache (before)" =
every URL's host looked up again in its own fetch thread with no time limit and no prefetch, which is
how downloads resolved names before the cache. The four runs alternate order between rounds; each runs
in one spawned worker process that imported img2dataset before timing. Good URL/s = successful
downloads (good and slow hosts) / wall time of the ``download_partition`` call. ``retries=0``.
Appends ``## Download: dead hosts and DNS`` to docs/benchmarks.md unless ``--no-docs``.
Usage: ``python bench/download_dns.py [--good-hosts 60] [--urls-per-host 8] [--rounds 2] [--no-docs]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.download import source_images, warm_worker  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## Download: dead hosts and DNS"
MODES = ("cache", "no cache (before)")
MIXES = ("0 % dead", "50 % dead")


def serve(blobs: list[bytes], good_s: float, slow_s: float, port_queue: mp.Queue) -> None:
    """Server process: ``/img/<i>.jpg`` -> ``blobs[i % len(blobs)]``, after ``good_s`` for hosts named
    ``good-*`` and ``slow_s`` for ``slow-*``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            host = self.headers.get("Host") or ""
            time.sleep(slow_s if host.startswith("slow-") else good_s)
            body = blobs[int(self.path.rsplit("/", 1)[-1].split(".")[0]) % len(blobs)]
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_queue.put(server.server_port)
    server.serve_forever()


class BenchDNS:
    """The fake ``getaddrinfo`` of the module docstring; ``calls`` counts lookups per kind of host."""

    def __init__(self, good_s: float, nx_s: float, blackhole_s: float) -> None:
        self.good_s, self.nx_s, self.blackhole_s = good_s, nx_s, blackhole_s
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int | None, *args: object, **kwargs: object) -> list[tuple]:
        kind = host.split("-", 1)[0]
        with self._lock:
            self.calls[kind] += 1
        if kind in ("good", "slow"):
            time.sleep(self.good_s)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port or 0))]
        if kind == "blackhole":
            time.sleep(self.blackhole_s)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        time.sleep(self.nx_s)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


class Uncached:
    """Name resolution as before the cache: the fetch thread itself looks up every URL, with no limit."""

    def __init__(self, lookup: BenchDNS) -> None:
        self.lookup = lookup

    def resolve(self, host: str, port: int, until: float | None = None) -> list[tuple]:
        return self.lookup(host, port, type=socket.SOCK_STREAM)


def host_names(args: argparse.Namespace, dead: bool) -> list[str]:
    """The host names of one mix: good, slow, then (``dead``) as many dead ones."""
    names = [f"good-{i}.localhost" for i in range(args.good_hosts)]
    names += [f"slow-{i}.localhost" for i in range(args.slow_hosts)]
    if dead:
        n_dead = len(names)
        names += [f"blackhole-{i}.localhost" for i in range(args.blackholed)]
        names += [f"nx-{i}.localhost" for i in range(n_dead - args.blackholed)]
    return names


def run_one(
    cands: Path, out: Path, live: list[str], mode: str, dns_args: tuple[float, float, float], threads: int
) -> tuple[int, float, dict[str, int], dict[str, int]]:
    """One ``download_partition`` in the warm worker; returns (successes, wall s, removed, lookups)."""
    from rs5m.config import DownloadConfig
    from rs5m.pipeline.download.img2ds import download_partition
    from rs5m.pipeline.download.resolver import CachingResolver

    cfg = DownloadConfig(allow_hosts=live, threads=threads, retries=0, timeout=10)
    dns = BenchDNS(*dns_args)
    resolver = CachingResolver.from_settings(cfg, dns) if mode == "cache" else Uncached(dns)
    start = time.perf_counter()
    stats = download_partition(
        cands, out, out.with_suffix(".stats.json"), cfg, source="laion2b", partition="0", resolver=resolver
    )
    wall = time.perf_counter() - start
    return stats.n_out, wall, dict(stats.removed), dict(dns.calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good-hosts", type=int, default=60)
    parser.add_argument("--slow-hosts", type=int, default=4)
    parser.add_argument("--blackholed", type=int, default=16, help="of the dead hosts (rest: NXDOMAIN)")
    parser.add_argument("--urls-per-host", type=int, default=8)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--good-dns-ms", type=float, default=20.0)
    parser.add_argument("--nx-dns-ms", type=float, default=200.0)
    parser.add_argument("--blackhole-s", type=float, default=5.0)
    parser.add_argument("--good-ms", type=float, default=100.0)
    parser.add_argument("--slow-s", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    if args.blackholed > args.good_hosts + args.slow_hosts:
        parser.error("--blackholed must not exceed the number of dead hosts (good + slow)")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations would call out on import

    blobs, what = source_images()
    ctx = mp.get_context("spawn")
    ports: mp.Queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(blobs, args.good_ms / 1000, args.slow_s, ports), daemon=True)
    server.start()
    port = ports.get(timeout=60)
    worker = ctx.Pool(1, initializer=warm_worker)
    worker.apply(warm_worker)
    tmp = Path(tempfile.mkdtemp(prefix="bench-download-dns-"))
    dns_args = (args.good_dns_ms / 1000, args.nx_dns_ms / 1000, args.blackhole_s)
    live = host_names(args, dead=False)
    results: dict[tuple[str, str], list[tuple]] = {(m, x): [] for m in MODES for x in MIXES}
    try:
        cands = {}
        for mix in MIXES:
            names = host_names(args, dead=mix != MIXES[0])
            urls = [f"http://{h}:{port}/img/{i}.jpg" for i in range(args.urls_per_host) for h in names]
            cands[mix] = tmp / f"cands-{mix[:2].strip()}.parquet"
            write_candidates(cands[mix], urls)
        warm_args = (cands[MIXES[0]], tmp / "warm-up", live, MODES[0], dns_args, args.threads)
        warm = worker.apply(run_one, warm_args)
        print(f"warm-up run (not counted): ok={warm[0]} wall={warm[1]:.2f}s", flush=True)
        for r in range(args.rounds):
            order = list(results) if r % 2 == 0 else list(reversed(results))
            for mode, mix in order:
                out = tmp / f"out-{r}-{len(results[(mode, mix)])}-{mode[:2]}-{mix[:2].strip()}"
                res = worker.apply(run_one, (cands[mix], out, live, mode, dns_args, args.threads))
                results[(mode, mix)].append(res)
                print(
                    f"round {r} {mode:18s} {mix:9s} ok={res[0]} wall={res[1]:6.2f}s "
                    f"good URL/s={res[0] / res[1]:7.1f} removed={res[2]} lookups={res[3]}",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
    finally:
        worker.terminate()
        server.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, args, what)


def write_candidates(path: Path, urls: list[str]) -> None:
    """One candidate partition (the columns ``download_partition`` reads) of ``urls``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(urls)
    uids = [f"bench-{i:07d}" for i in range(n)]
    captions = [f"satellite image number {i}" for i in range(n)]
    pq.write_table(pa.table({"uid": uids, "source": ["laion2b"] * n, "url": urls, "caption": captions}), path)


def report(results: dict[tuple[str, str], list[tuple]], args: argparse.Namespace, what: str) -> None:
    """Print the table and ratios; write the docs section unless ``--no-docs``."""
    rate = {k: [ok / wall for ok, wall, *_ in runs] for k, runs in results.items()}

    def paired(a: tuple[str, str], b: tuple[str, str]) -> str:
        return f"{statistics.median(x / y for x, y in zip(rate[a], rate[b], strict=True)):.2f}x"

    rows = []
    for (mode, mix), runs in results.items():
        ok, _, removed, lookups = runs[-1]
        vs0 = paired((mode, mix), (mode, MIXES[0]))
        vs_before = paired((mode, mix), (MODES[1], mix))
        removed_s = ", ".join(f"{k} {v}" for k, v in sorted(removed.items())) or "-"
        lookups_s = ", ".join(f"{k} {v}" for k, v in sorted(lookups.items()))
        rows.append(
            f"| {mode} | {mix} | {ok} | {statistics.median(rate[(mode, mix)]):.1f} | "
            f"{max(rate[(mode, mix)]):.1f} | {vs0} | {vs_before} | {removed_s} | {lookups_s} |"
        )
    n_live = (args.good_hosts + args.slow_hosts) * args.urls_per_host
    cmd = (
        f"python bench/download_dns.py --good-hosts {args.good_hosts} --slow-hosts {args.slow_hosts} "
        f"--blackholed {args.blackholed} --urls-per-host {args.urls_per_host} --threads {args.threads} "
        f"--good-dns-ms {args.good_dns_ms:g} --nx-dns-ms {args.nx_dns_ms:g} "
        f"--blackhole-s {args.blackhole_s:g} --good-ms {args.good_ms:g} --slow-s {args.slow_s:g} "
        f"--rounds {args.rounds}"
    )
    text = "\n".join(
        [
            SECTION,
            "",
            f"`{cmd}`: {what} from one 127.0.0.1 server process; {n_live} URLs on "
            f"{args.good_hosts} good hosts (the server answers after {args.good_ms:g} ms) and "
            f"{args.slow_hosts} slow ones ({args.slow_s:g} s per answer), plus, "
            f"at 50 % dead, as many URLs on as many dead hosts ({args.blackholed} blackholed: the lookup "
            f"hangs {args.blackhole_s:g} s then EAI_AGAIN; the rest NXDOMAIN after {args.nx_dns_ms:g} ms); "
            f"good names answer after {args.good_dns_ms:g} ms. All names come from a fake resolver given "
            f"to the run. One partition, {args.threads} threads, retries 0, default per-host cap 8; four "
            f"runs per round after one uncounted warm-up run, order alternated. Machine: {os.cpu_count()} "
            "cores, shared with other jobs.",
            "",
            "| DNS | hosts dead | good URLs downloaded | good URL/s median | best | vs 0 % dead "
            "(median of per-round ratios) | vs no cache, same mix | removed (last round) "
            "| lookups (last round) |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "cache: the per-process `CachingResolver` with the default `DownloadConfig` DNS settings, cold "
            "at the start of each run (one lookup per host name, on lookup threads, prefetched per shard; a "
            "fetch waits at most `dns_timeout_s` = 2 s for a name). no cache (before): each URL's host "
            "looked up again in its fetch thread, no time limit, no prefetch, as downloads resolved names "
            "before the cache. Target: with the cache, good URL/s at 50 % dead hosts not materially below "
            "0 % dead.",
        ]
    )
    print("\n" + text)
    if not args.no_docs:
        write_docs(text)


def write_docs(text: str) -> None:
    """Replace or append this bench's section of docs/benchmarks.md, keeping everything else."""
    old = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    kept, skipping = [], False
    for line in old.splitlines():
        if line.startswith("## "):
            skipping = line.strip() == SECTION
        if not skipping:
            kept.append(line)
    DOCS.write_text("\n".join(kept).rstrip() + "\n\n" + text.rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
