"""`coffeetrace bench page`: the provenance page under 64 concurrent connections, against an
honest ceiling measured in the same run and server.

Builds a benchmark database of its own (N trees, one lot of M trees through drying and
hulling, and the scan storm's lots of one tree each), serves the app as `coffeetrace api`
does (bench/page_server.py, which adds the ceiling endpoint) in a child process, and
loads it with wrk, or with the built-in load generator (bench/loadgen.py):
  ceiling  GET /bench/ceiling: an async handler answering the page's own bytes, constant;
  warm     the lot page with the in-process cache (repeated scans of one lot);
  cold     the lot page from a server whose cache is off (every request renders);
  storm    the storm's lots scanned with Zipf(s) popularity, default cache size;
each with one uvicorn worker and with `--workers`. Ratios are page / ceiling of the same
server. The last line printed is one JSON object, also when a measurement failed.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
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
from coffeetrace_bench import loadgen as loadgen_builtin
from coffeetrace_bench import page_server

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
    url: str,
    trees: int,
    lot_trees: int,
    say: Callable[[str], None],
    *,
    keys: KeyRing,
    storm_lots: int = 0,
) -> dict[str, Any]:
    """Registry of `trees` trees (COPY, then their registry versions), harvests and weather
    for one plot, one green lot, and `storm_lots` cherry lots of one other tree each; `keys`
    sign the chain events."""
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
        storm = _seed_storm(conn, coop["id"], lot_tree_ids, storm_lots, start, scale, say, keys)
    say(
        f"store ready in {time.perf_counter() - t0:.1f}s: lot {green['code']} of "
        f"{len(lot_tree_ids):,} trees, {len(storm):,} storm lots"
    )
    return {"public_id": green["public_id"], "code": green["code"], "storm": storm}


def _seed_storm(
    conn: Any,
    coop_id: Any,
    lot_tree_ids: list[Any],
    storm_lots: int,
    start: datetime,
    scale: Any,
    say: Callable[[str], None],
    keys: KeyRing,
) -> list[str]:
    """The scan storm's lots, built as a clerk builds them (each signed, its page data
    stored): one cherry lot per tree outside the benchmarked lot. Their public ids."""
    from coffeetrace.trace import batches, lots, page_snapshots, verification

    if storm_lots <= 0:
        return []
    tree_ids = [
        r["id"]
        for r in conn.execute(
            SQL["bench_page_storm_trees"], {"lot_tree_ids": lot_tree_ids, "storm_lots": storm_lots}
        )
    ]
    if len(tree_ids) < storm_lots:
        raise ConfigError(
            f"--storm-lots {storm_lots:,} needs as many trees outside the lot: "
            f"raise --trees to at least {storm_lots + len(lot_tree_ids):,}"
        )
    conn.execute(
        SQL["bench_page_harvests"],
        {"start": start, "device": scale.username, "tree_ids": tree_ids},
    )
    batches.seal_cooperative(conn, keys, coop_id)
    conn.commit()
    t0 = time.perf_counter()
    public_ids = []
    for n, tree_id in enumerate(tree_ids):
        lot = lots.build_cherry_lot(conn, coop_id, code=f"S-{n:07d}", tree_ids=[tree_id], keys=keys)
        public_ids.append(lot["public_id"])
        # verified once, as a season's lots have been by their first scan or verify answer
        checked = verification.verify_lot(conn, lot["id"], keys=keys)
        page_snapshots.record_verification(
            conn,
            keys,
            lot["id"],
            {k: checked.get(k) for k in ("ok", "checked_events")}
            | {"problems": len(checked.get("problems", []))},
        )
        if n % 500 == 499:
            conn.commit()
            say(f"storm lots: {n + 1:,} in {time.perf_counter() - t0:.1f}s")
    conn.commit()
    return public_ids


@contextmanager
def app_server(
    url: str, *, cache: bool, keys_dir: Path, ceiling_file: Path, workers: int = 1
) -> Iterator[str]:
    """The app served as `coffeetrace api --workers N` serves it, plus the ceiling endpoint
    (bench/page_server.py), in a child process on a free port, with the signing keys the
    store was written with. No rate limit: the bench is one address, buyers are many."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        COFFEETRACE_DATABASE_URL=url,
        COFFEETRACE_PUBLIC_BASE_URL=base,
        COFFEETRACE_PAGE_CACHE_ENTRIES=str(Settings().page_cache_entries if cache else 0),
        COFFEETRACE_DB_POOL_MAX="10",
        COFFEETRACE_KEYS_DIR=str(keys_dir),
        COFFEETRACE_PUBLIC_LOOKUPS_PER_MINUTE="0",
        COFFEETRACE_CHECKPOINT_INTERVAL_S="0",
        **{page_server.CEILING_FILE_ENV: str(ceiling_file)},
    )
    log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - a file, not a pipe that could fill
    command = [sys.executable, "-m", "coffeetrace_bench.page_server", str(port), str(workers)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
    try:
        deadline = time.monotonic() + 120  # two workers on a busy machine take a while
        while True:
            try:
                fetch(f"{base}/healthz", timeout=5)
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
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


WRK = "wrk"
BUILTIN = "builtin"
LOADGENS = ("auto", WRK, BUILTIN)
TIMEOUT_S = 10.0

# wrk's request loop over a file of paths, each thread from its own place in it
WRK_PATHS_LUA = """
local paths = {}
for line in io.lines(os.getenv("CT_BENCH_PATHS")) do paths[#paths + 1] = line end
local threads = 0
function setup(thread) thread:set("start", threads); threads = threads + 1 end
local i = nil
function request()
  if i == nil then i = (start or 0) * 7919 % #paths end
  i = i + 1
  if i > #paths then i = 1 end
  return wrk.format("GET", paths[i])
end
"""


def pick_load_generator(wanted: str = "auto") -> str:
    """wrk when asked for, or on PATH with "auto"; else the built-in one (always there)."""
    if wanted not in LOADGENS:
        raise ConfigError(f"--loadgen must be one of {', '.join(LOADGENS)}, not {wanted!r}")
    if wanted == WRK and not shutil.which("wrk"):
        raise ConfigError("--loadgen wrk: wrk is not on PATH (apt-get install -y wrk)")
    if wanted == "auto":
        return WRK if shutil.which("wrk") else BUILTIN
    return wanted


def _wrk(base: str, paths: list[str], connections: int, duration_s: float) -> dict[str, float]:
    cmd = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--latency",
        "--timeout",
        f"{TIMEOUT_S:.0f}s",
    ]
    for k, v in HEADERS.items():
        cmd += ["-H", f"{k}: {v}"]
    with tempfile.TemporaryDirectory(prefix="ct-bench-wrk-") as tmp:
        env = dict(os.environ)
        if len(paths) > 1:
            (Path(tmp) / "paths.txt").write_text("\n".join(paths) + "\n")
            (Path(tmp) / "paths.lua").write_text(WRK_PATHS_LUA)
            env["CT_BENCH_PATHS"] = str(Path(tmp) / "paths.txt")
            cmd += ["-s", str(Path(tmp) / "paths.lua")]
        url = base + paths[0]
        try:
            out = subprocess.run(
                cmd + [url], capture_output=True, text=True, check=True, env=env
            ).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            raise ConfigError(f"wrk failed against {url}: {detail.strip()[-500:]}") from None
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise ConfigError(f"wrk printed no Requests/sec line: {out.strip()[-500:]}")

    def percentile(p: int) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\b", out, re.MULTILINE)
        if found is None:
            return 0.0  # no answer at all in the run
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = [int(x) for x in errors.groups()] if errors else [0, 0, 0, 0]
    return {
        "rps": float(rps.group(1)),
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "bad": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(counts[:3])),
        "timeouts": float(counts[3]),
    }


def measure(
    base: str, paths: str | list[str], connections: int, duration_s: float, loadgen: str
) -> dict[str, float]:
    """requests/s, p50/p99 ms and failures (bad answers, socket errors, timeouts) of
    GETs of `paths` (one, or many taken in turn) on `base`."""
    many = [paths] if isinstance(paths, str) else list(paths)
    if loadgen == WRK:
        return _wrk(base, many, connections, duration_s)
    where = urllib.parse.urlsplit(base)
    return loadgen_builtin.run(
        where.hostname or "127.0.0.1",
        where.port or 80,
        many,
        connections=connections,
        duration_s=duration_s,
        headers=HEADERS,
        timeout_s=TIMEOUT_S,
    )


def zipf_paths(public_ids: list[str], s: float, samples: int, seed: int = 2025) -> list[str]:
    """`samples` lot page paths drawn with Zipf(s) popularity over `public_ids` (the first
    the most scanned), in random order."""
    if not public_ids:
        return []
    weights = [1.0 / (rank**s) for rank in range(1, len(public_ids) + 1)]
    rng = random.Random(seed)
    return [f"/l/{p}" for p in rng.choices(public_ids, weights=weights, k=samples)]


def gzip_size(url: str) -> int:
    """Bytes on the wire of `url` for a client that accepts gzip."""
    request = urllib.request.Request(url, headers={**HEADERS, "Accept-Encoding": "gzip"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        coded = response.headers.get("Content-Encoding")
        body = response.read()
    if coded != "gzip":
        raise ConfigError(f"{url} was not gzipped (Content-Encoding {coded!r})")
    return len(body)


WARM_UP_S = 1.0


def _warm_up(base: str, paths: list[str]) -> None:
    """A second of unmeasured requests, so that no figure pays a fresh process's first
    requests (imports, the pool's connections, each worker's first render)."""
    where = urllib.parse.urlsplit(base)
    loadgen_builtin.run(
        where.hostname or "127.0.0.1",
        where.port or 80,
        paths,
        connections=4,
        duration_s=WARM_UP_S,
        headers=HEADERS,
        timeout_s=TIMEOUT_S,
    )


def _round(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in figures.items()}


def _one_server_count(
    url: str,
    lot: dict[str, Any],
    keys_dir: Path,
    ceiling_file: Path,
    workers: int,
    run: Callable[[str, str | list[str]], dict[str, float]],
    storm_paths: list[str],
    say: Callable[[str], None],
    into: dict[str, Any],
) -> None:
    """Ceiling, warm, Digital Link and storm on a cached server; ceiling and cold on an
    uncached one; figures land in `into` as they are measured."""
    page_path = f"/l/{lot['public_id']}"
    dl_path = f"/01/{GTIN}/10/{lot['code']}"
    with app_server(
        url, cache=True, keys_dir=keys_dir, ceiling_file=ceiling_file, workers=workers
    ) as base:
        if not ceiling_file.exists():
            t = time.perf_counter()
            page = fetch(base + page_path)
            into["first_render_ms"] = round((time.perf_counter() - t) * 1000, 1)
            into["page_bytes"] = len(page)
            into["page_gzip_bytes"] = gzip_size(base + page_path)
            ceiling_file.write_bytes(page)
        _warm_up(base, [page_server.CEILING_PATH, page_path, dl_path])
        into["ceiling"] = _round(run(base, page_server.CEILING_PATH))
        say(f"workers {workers} ceiling: {into['ceiling']}")
        if len(fetch(base + page_server.CEILING_PATH)) != ceiling_file.stat().st_size:
            raise ConfigError("the ceiling endpoint does not answer the page's bytes")
        into["warm"] = _round(run(base, page_path))
        say(f"workers {workers} warm: {into['warm']}")
        into["warm_digital_link"] = _round(run(base, dl_path))
        say(f"workers {workers} warm via Digital Link: {into['warm_digital_link']}")
        if storm_paths:
            into["storm"] = _round(run(base, storm_paths))
            say(f"workers {workers} storm: {into['storm']}")
    with app_server(
        url, cache=False, keys_dir=keys_dir, ceiling_file=ceiling_file, workers=workers
    ) as base:
        _warm_up(base, [page_server.CEILING_PATH, page_path])
        into["cold_ceiling"] = _round(run(base, page_server.CEILING_PATH))
        say(f"workers {workers} ceiling (cache off): {into['cold_ceiling']}")
        into["cold"] = _round(run(base, page_path))
        say(f"workers {workers} cold: {into['cold']}")


def _ratio(part: dict[str, Any] | None, whole: dict[str, Any] | None) -> float | None:
    if not part or not whole or not whole.get("rps"):
        return None
    return round(part["rps"] / whole["rps"], 3)


def figures(runs: dict[str, Any], lot_trees: int) -> dict[str, Any]:
    """The flat figures of one worker count, with its ratios and targets."""
    out: dict[str, Any] = {}
    for name in ("ceiling", "warm", "warm_digital_link", "storm", "cold_ceiling", "cold"):
        got = runs.get(name)
        if got:
            short = "warm_dl" if name == "warm_digital_link" else name
            out.update({f"{short}_{k}": v for k, v in got.items()})
    out["warm_ratio"] = _ratio(runs.get("warm"), runs.get("ceiling"))
    out["warm_dl_ratio"] = _ratio(runs.get("warm_digital_link"), runs.get("ceiling"))
    out["storm_ratio"] = _ratio(runs.get("storm"), runs.get("ceiling"))
    out["cold_ratio"] = _ratio(runs.get("cold"), runs.get("cold_ceiling"))
    cold_p99_target = 200 if lot_trees <= 1000 else 1000
    targets = {
        "warm": (out["warm_ratio"] or 0) >= 0.8 and out.get("warm_p99_ms", 1e9) < 50,
        "cold": (out["cold_ratio"] or 0) >= 0.1 and out.get("cold_p99_ms", 1e9) < cold_p99_target,
        "storm": (out["storm_ratio"] or 0) >= 0.5 and out.get("storm_p99_ms", 1e9) < 100,
    }
    out["targets"] = targets
    out["errors"] = int(
        sum(
            runs[k].get(f, 0)
            for k in runs
            if isinstance(runs[k], dict)
            for f in ("bad", "socket_errors", "timeouts")
        )
    )
    return out


def run_page_bench(
    settings: Settings,
    *,
    trees: int,
    lot_trees: int,
    duration_s: float,
    connections: int,
    keep: bool,
    say: Callable[[str], None],
    storm_lots: int = 100_000,
    zipf_s: float = 1.1,
    workers: int = 2,
    loadgen: str = "auto",
) -> dict[str, Any]:
    chosen = pick_load_generator(loadgen)
    summary: dict[str, Any] = {
        "bench": "page",
        "loadgen": chosen,
        "trees": trees,
        "lot_trees": lot_trees,
        "storm_lots": storm_lots,
        "zipf_s": zipf_s,
        "cache_entries": Settings().page_cache_entries,
        "connections": connections,
        "duration_s": duration_s,
    }
    per_workers: dict[int, dict[str, Any]] = {}
    failure: BaseException | None = None

    def run(base: str, paths: str | list[str]) -> dict[str, float]:
        return measure(base, paths, connections, duration_s, chosen)

    try:
        with (
            scratch_database(settings.effective_database_url(), "ct_bench_page", keep=keep) as url,
            tempfile.TemporaryDirectory(prefix="ct-bench-keys-") as keys_tmp,
        ):
            keys_dir = Path(keys_tmp)  # the scratch cooperative's keys, gone with its database
            lot = seed(url, trees, lot_trees, say, keys=KeyRing(keys_dir), storm_lots=storm_lots)
            storm_paths = zipf_paths(lot["storm"], zipf_s, max(20_000, 2 * storm_lots))
            ceiling_file = keys_dir / "ceiling.html"
            for count in sorted({1, max(1, workers)}):
                runs = per_workers[count] = {}
                _one_server_count(
                    url, lot, keys_dir, ceiling_file, count, run, storm_paths, say, runs
                )
    except BaseException as exc:  # the JSON line is printed whatever happened
        failure = exc
    one = per_workers.get(1, {})
    for key in ("page_bytes", "page_gzip_bytes", "first_render_ms"):
        summary[key] = one.get(key)
    summary.update(figures(one, lot_trees))
    for count, runs in per_workers.items():
        if count != 1:
            summary[f"workers_{count}"] = figures(runs, lot_trees)
    summary["target_met"] = bool(one) and all(summary["targets"].values())
    if failure is not None:
        summary["error"] = f"{type(failure).__name__}: {failure}"[:500]
    else:
        say(
            f"page {summary['page_bytes']:,} bytes ({summary['page_gzip_bytes']:,} gzipped); "
            f"ceiling {summary['ceiling_rps']:.0f}/s; warm {summary['warm_rps']:.0f}/s "
            f"p99 {summary['warm_p99_ms']} ms (x{summary['warm_ratio']}); cold "
            f"{summary['cold_rps']:.0f}/s p99 {summary['cold_p99_ms']} ms "
            f"(x{summary['cold_ratio']}); storm {summary.get('storm_rps', 0):.0f}/s "
            f"(x{summary['storm_ratio']})"
        )
    print(json.dumps(summary), flush=True)
    if failure is not None:
        raise failure
    return summary


if __name__ == "__main__":  # pragma: no cover - `coffeetrace bench page` is the entry point
    raise SystemExit("run: coffeetrace bench page")
