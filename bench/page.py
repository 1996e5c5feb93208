"""`coffeetrace bench page`: the provenance page under 64 concurrent connections.

Builds a benchmark database of its own (N trees, one lot of M trees through drying and
hulling), serves the app with uvicorn in a child process, and measures with `wrk` (or an
asyncio httpx2/httpx client when wrk is missing):
  bare  GET /healthz of the same app: the ceiling of this app, server and machine;
  warm  the lot page with the in-process cache (repeated scans of one lot);
  cold  the lot page from a second server whose cache is off (every request renders).
Ratios are page / bare. The last line printed is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from coffeetrace import db
from coffeetrace.credentials import new_device_secret, new_public_id
from coffeetrace.db import scratch_database
from coffeetrace.embedded import free_port
from coffeetrace.errors import ConfigError
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries
from coffeetrace.trace.keys import KeyRing

TREES_PER_PLOT = 1100  # 3 x 3 m spacing on a hectare
PLOT_SIDE_DEG = 0.0009  # about 100 m at 12.7 N
GTIN = "08930000000019"
HEADERS = {"Accept": "text/html", "Accept-Language": "vi-VN,vi;q=0.9"}
SQL = load_queries("coffeetrace_bench", "page.sql")


def fetch(url: str, timeout: float = 30) -> bytes:
    """One GET (standard library: the benchmark needs no HTTP client package)."""
    with urllib.request.urlopen(
        urllib.request.Request(url, headers=HEADERS),  # noqa: S310
        timeout=timeout,
    ) as response:
        return response.read()


def seed(
    url: str, trees: int, lot_trees: int, say: Callable[[str], None], *, keys: KeyRing
) -> dict[str, Any]:
    """Registry of `trees` trees (COPY, then their registry versions), harvests and weather
    for one plot, one green lot; `keys` sign the chain events."""
    from coffeetrace.trace import batches, lots, processing, registry, registry_versions

    t0 = time.perf_counter()
    n_plots = max(math.ceil(trees / TREES_PER_PLOT), math.ceil(lot_trees / TREES_PER_PLOT))
    with db.connect(url) as conn:
        coop = registry.create_cooperative(
            conn, "bench-coop", "HTX Cà phê Ea Tu (bench)", gs1_company_prefix="8930000"
        )
        product = registry.create_product(
            conn, coop["id"], "Robusta Đắk Lắk green", keys=keys, gtin=GTIN
        )
        plots = []
        for i in range(n_plots):
            if i % 2 == 0:
                farm = registry.create_farm(
                    conn, coop["id"], f"F-{i // 2:06d}", keys=keys, district="Buôn Ma Thuột"
                )
            lon = 107.9 + (i % 40) * 0.0015
            lat = 12.6 + (i // 40) * 0.0015
            ring = [
                [lon, lat],
                [lon + PLOT_SIDE_DEG, lat],
                [lon + PLOT_SIDE_DEG, lat + PLOT_SIDE_DEG],
                [lon, lat + PLOT_SIDE_DEG],
                [lon, lat],
            ]
            plot = registry.create_plot(
                conn,
                coop["id"],
                farm["id"],
                f"P-{i:06d}",
                {"type": "Polygon", "coordinates": [ring]},
                1.0,
                keys=keys,
                altitude_m=450 + i % 200,
                growing_area_code="VN-DL-BMT",
            )
            plots.append((plot["id"], lon, lat))
        side = math.ceil(math.sqrt(TREES_PER_PLOT))
        with conn.cursor() as cur, cur.copy(SQL["bench_page_copy_trees"]) as copy:
            for n in range(trees):
                plot_id, lon, lat = plots[n // TREES_PER_PLOT]
                k = n % TREES_PER_PLOT
                copy.write_row(
                    (
                        new_public_id(),
                        f"T-{n:07d}",
                        coop["id"],
                        plot_id,
                        lon + (k % side + 0.5) * PLOT_SIDE_DEG / side,
                        lat + (k // side + 0.5) * PLOT_SIDE_DEG / side,
                        ("TR4", "TR9", "TRS1", "TR11")[n % 4],
                        f"{2005 + n % 15}-06-01",
                    )
                )
        # the COPYed trees' registry versions, one signed event per 5,000 trees
        registry_versions.record_missing_versions(conn, keys, coop["id"])
        conn.commit()
        say(f"seeded {trees:,} trees on {n_plots:,} plots in {time.perf_counter() - t0:.1f}s")
        conn.execute(SQL["bench_page_analyze_trees"])
        lot_tree_ids = [
            r["id"]
            for r in conn.execute(
                SQL["bench_page_lot_trees"],
                {
                    "plot_ids": [p[0] for p in plots[: math.ceil(lot_trees / TREES_PER_PLOT)]],
                    "lot_trees": lot_trees,
                },
            )
        ]
        scale = registry.register_device(
            conn, coop["id"], "harvest_scale", plot_id=plots[0][0], secret=new_device_secret()
        )
        soil = registry.register_device(
            conn, coop["id"], "soil_node", plot_id=plots[0][0], secret=new_device_secret()
        )
        start = datetime(2025, 11, 3, 7, 0, tzinfo=UTC)
        conn.execute(
            SQL["bench_page_harvests"],
            {"start": start, "device": scale.username, "tree_ids": lot_tree_ids},
        )
        # sealed in ingest batches, as ingest seals what it stores (trace/batches.py)
        batches.seal_cooperative(conn, keys, coop["id"])
        for plot_id, _, _ in plots[: math.ceil(lot_trees / TREES_PER_PLOT)]:
            conn.execute(
                SQL["bench_page_weather"],
                {"until": start, "device": soil.username, "plot_id": plot_id},
            )
        cherry = lots.build_cherry_lot(
            conn, coop["id"], code="C-2025-0001", tree_ids=lot_tree_ids, keys=keys
        )
        dried = processing.record_transformation(
            conn,
            coop["id"],
            step="drying",
            occurred_at=start + timedelta(days=35),
            inputs=[(cherry["id"], cherry["quantity_kg"])],
            outputs=[
                {
                    "code": "D-2025-0001",
                    "kg": float(cherry["quantity_kg"]) * 0.5,
                    "kind": "dried_cherry",
                }
            ],
            place="Sân phơi Ea Tu",
            measurements={"moisture_pct": 12.4},
            keys=keys,
        )["outputs"][0]
        green = processing.record_transformation(
            conn,
            coop["id"],
            step="hulling",
            occurred_at=start + timedelta(days=50),
            inputs=[(dried["id"], dried["quantity_kg"])],
            outputs=[
                {
                    "code": "G-2025-0001",
                    "kg": float(dried["quantity_kg"]) * 0.42,
                    "kind": "green",
                    "product_id": product["id"],
                }
            ],
            place="Nhà máy xát Ea Tu",
            measurements={"moisture_pct": 12.1, "screen_size": 16, "defect_count": 7},
            evidence=[{"type": "certificate", "name": "4C", "issuer": "4C Services"}],
            keys=keys,
        )["outputs"][0]
        conn.commit()
    say(
        f"store ready in {time.perf_counter() - t0:.1f}s: lot {green['code']} of "
        f"{len(lot_tree_ids):,} trees"
    )
    return {"public_id": green["public_id"], "code": green["code"]}


@contextmanager
def app_server(url: str, *, cache: bool, keys_dir: Path) -> Iterator[str]:
    """`coffeetrace api` in a child process on a free port, with the signing keys the
    store was written with."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        COFFEETRACE_DATABASE_URL=url,
        COFFEETRACE_PUBLIC_BASE_URL=base,
        COFFEETRACE_PAGE_CACHE_ENTRIES=str(2048 if cache else 0),
        COFFEETRACE_DB_POOL_MAX="10",
        COFFEETRACE_KEYS_DIR=str(keys_dir),
    )
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe that could fill
    command = [sys.executable, "-m", "coffeetrace.cli", "api", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                fetch(f"{base}/healthz", timeout=1)
                break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"the API did not start: {log.read()[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


WRK = "wrk"
HTTPX = "httpx-asyncio"


def _httpx_module() -> Any | None:
    """The HTTP client of the fallback load generator (httpx2, else httpx), if installed."""
    # imported here, not at the top: only needed where wrk is missing
    try:
        import httpx2

        return httpx2
    except ImportError:
        pass
    try:
        import httpx

        return httpx
    except ImportError:
        return None


def pick_load_generator() -> str:
    """wrk when it is on PATH, else the asyncio client below; chosen before anything is
    seeded, so that a machine with neither is told what to install at once."""
    if shutil.which("wrk"):
        return WRK
    if _httpx_module() is not None:
        return HTTPX
    raise ConfigError(
        "`coffeetrace bench page` needs a load generator: install wrk "
        "(apt-get install -y wrk) or the httpx2 package (pip install httpx2)"
    )


def _wrk(url: str, connections: int, duration_s: float) -> dict[str, float]:
    cmd = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for k, v in HEADERS.items():
        cmd += ["-H", f"{k}: {v}"]
    try:
        out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", None) or str(exc)
        raise ConfigError(f"wrk failed against {url}: {detail.strip()[-500:]}") from None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise ConfigError(f"wrk printed no Requests/sec line: {out.strip()[-500:]}")

    def percentile(p: int) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
        if found is None:
            raise ConfigError(f"wrk printed no {p}% latency: {out.strip()[-500:]}")
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(rps.group(1)),
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "bad": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(x) for x in errors.groups())) if errors else 0.0,
    }


def _httpx(url: str, connections: int, duration_s: float) -> dict[str, float]:
    httpx = _httpx_module()
    if httpx is None:
        raise ConfigError("neither httpx2 nor httpx is installed (pip install httpx2)")

    async def run() -> dict[str, float]:
        latencies: list[float] = []
        bad = 0
        socket_errors = 0  # counted, as wrk counts them, rather than ending the run
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx.AsyncClient(limits=limits, headers=HEADERS, timeout=10) as client:
            stop_at = time.perf_counter() + duration_s

            async def worker() -> None:
                nonlocal bad, socket_errors
                while time.perf_counter() < stop_at:
                    t = time.perf_counter()
                    try:
                        r = await client.get(url)
                    except httpx.TransportError:
                        socket_errors += 1
                        continue
                    latencies.append(time.perf_counter() - t)
                    bad += r.status_code >= 400

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        return {
            "rps": len(latencies) / elapsed,
            "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
            "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000
            if latencies
            else 0.0,
            "bad": float(bad),
            "socket_errors": float(socket_errors),
        }

    return asyncio.run(run())


def measure(url: str, connections: int, duration_s: float, loadgen: str) -> dict[str, float]:
    if loadgen == WRK:
        return _wrk(url, connections, duration_s)
    return _httpx(url, connections, duration_s)


def run_page_bench(
    settings: Settings,
    *,
    trees: int,
    lot_trees: int,
    duration_s: float,
    connections: int,
    keep: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    loadgen = pick_load_generator()
    with (
        scratch_database(settings.effective_database_url(), "ct_bench_page", keep=keep) as url,
        tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_tmp,
    ):
        keys_dir = Path(keys_tmp)  # the scratch cooperative's keys, gone with its database
        lot = seed(url, trees, lot_trees, say, keys=KeyRing(keys_dir))
        page_path = f"/l/{lot['public_id']}"
        dl_path = f"/01/{GTIN}/10/{lot['code']}"
        results: dict[str, Any] = {}
        with app_server(url, cache=False, keys_dir=keys_dir) as base:
            t = time.perf_counter()
            first = fetch(base + page_path)
            results["first_render_ms"] = (time.perf_counter() - t) * 1000
            results["page_bytes"] = len(first)
            results["bare_nocache"] = measure(base + "/healthz", connections, duration_s, loadgen)
            results["cold"] = measure(base + page_path, connections, duration_s, loadgen)
            say(f"cold: {results['cold']}")
        with app_server(url, cache=True, keys_dir=keys_dir) as base:
            fetch(base + page_path)
            results["bare"] = measure(base + "/healthz", connections, duration_s, loadgen)
            say(f"bare: {results['bare']}")
            results["warm"] = measure(base + page_path, connections, duration_s, loadgen)
            say(f"warm: {results['warm']}")
            results["warm_digital_link"] = measure(base + dl_path, connections, duration_s, loadgen)
            say(f"warm via Digital Link: {results['warm_digital_link']}")
    bare = results["bare"]["rps"]
    summary = {
        "bench": "page",
        "loadgen": loadgen,
        "trees": trees,
        "lot_trees": lot_trees,
        "connections": connections,
        "duration_s": duration_s,
        "page_bytes": results["page_bytes"],
        "first_render_ms": round(results["first_render_ms"], 1),
        "bare_rps": round(bare, 1),
        "bare_p50_ms": round(results["bare"]["p50_ms"], 2),
        "bare_p99_ms": round(results["bare"]["p99_ms"], 2),
        "warm_rps": round(results["warm"]["rps"], 1),
        "warm_p50_ms": round(results["warm"]["p50_ms"], 2),
        "warm_p99_ms": round(results["warm"]["p99_ms"], 2),
        "warm_ratio": round(results["warm"]["rps"] / bare, 3) if bare else None,
        "warm_dl_rps": round(results["warm_digital_link"]["rps"], 1),
        "warm_dl_p99_ms": round(results["warm_digital_link"]["p99_ms"], 2),
        "cold_rps": round(results["cold"]["rps"], 1),
        "cold_p99_ms": round(results["cold"]["p99_ms"], 2),
        "cold_ratio": round(results["cold"]["rps"] / results["bare_nocache"]["rps"], 3)
        if results["bare_nocache"]["rps"]
        else None,
        "errors": sum(
            int(results[k]["bad"] + results[k]["socket_errors"])
            for k in ("bare", "warm", "warm_digital_link", "cold")
        ),
    }
    summary["target_met"] = bool(
        summary["warm_ratio"] and summary["warm_ratio"] >= 0.5 and summary["warm_p99_ms"] < 100
    )
    say(
        f"page {summary['page_bytes']:,} bytes; bare {summary['bare_rps']:.0f}/s; warm "
        f"{summary['warm_rps']:.0f}/s p99 {summary['warm_p99_ms']} ms (x{summary['warm_ratio']}); "
        f"cold {summary['cold_rps']:.0f}/s p99 {summary['cold_p99_ms']} ms"
    )
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":  # pragma: no cover - `coffeetrace bench page` is the entry point
    raise SystemExit("run: coffeetrace bench page")
