"""suyuan benchmarks: each figure beside a peer measured in the same run, as a ratio.

    scripts/bench                 every benchmark at the default sizes
    scripts/bench ledger          the ledger only
    scripts/bench ledger --full   adds the 10M-entry proof sizes

Results are printed as a table and written to ``var/bench/`` as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import io
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger import Log, note
from ledger.entry import Submission, sign_submission
from ledger.export import export_log, verify_export
from ledger.merkle import verify_consistency, verify_inclusion
from ledger.sqlite_store import SQLiteStore

if TYPE_CHECKING:
    from trace.projections import Projections

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "bench"


@dataclass
class Figure:
    suite: str
    name: str
    value: float
    unit: str
    peer_name: str
    peer_value: float
    ratio: float
    target: str
    met: bool | None


FIGURES: list[Figure] = []


def record(
    suite: str,
    name: str,
    value: float,
    unit: str,
    peer_name: str,
    peer_value: float,
    *,
    ratio: float | None = None,
    target: str = "",
    met: bool | None = None,
) -> None:
    r = ratio if ratio is not None else (value / peer_value if peer_value else float("nan"))
    FIGURES.append(Figure(suite, name, value, unit, peer_name, peer_value, r, target, met))
    status = "" if met is None else ("  [met]" if met else "  [NOT met]")
    print(
        f"  {name:<48} {value:>12,.1f} {unit:<10} | {peer_name:<34} {peer_value:>12,.1f}"
        f" | ratio {r:8.3f} {target}{status}",
        flush=True,
    )


def rate(fn: Callable[[], int], *, repeat: int = 3) -> float:
    """Median operations per second over ``repeat`` runs of ``fn`` (which returns its op count)."""
    rates = []
    for _ in range(repeat):
        start = time.perf_counter()
        n = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def _event(i: int) -> dict[str, object]:
    # About 850 bytes canonical, shaped like a custody event.
    return {
        "event_type": "ObjectEvent",
        "bizStep": "receiving",
        "disposition": "in_progress",
        "eventTime": "2026-11-28T10:00:00.000+08:00",
        "epcList": [f"001PEAB00{i:05d}G1C{i:07d}", f"001MEAB00{i:05d}G1C{i:07d}"],
        "source": {"possessing_party": "guangzhou-collect-01", "owning_party": "byd-shenzhen"},
        "destination": {"possessing_party": "hunan-brunp", "owning_party": "hunan-brunp"},
        "readPoint": {"id": "urn:epc:id:sgln:6901234.00001.0", "region": "430000"},
        "quantity": {"value": 412, "unit": "kg"},
        "inputs": [{"code": f"001PEAB00{i:05d}G1C{i:07d}", "mass_kg": 412}],
        "outputs": [{"material": "black_mass", "mass_kg": 160}],
        "attributes": {"soh_pct": 71, "grade": "B", "certs": ["GB/T 34014", "GB/T 33598"]},
        "prev": {"001PEAB0000001G1C0000001": "sha256:" + "ab" * 32},
        "nonce": i,
        "tags": ["retired", "collected", "guangdong"],
    }


def _signed(n: int, signer: note.Signer) -> list[Submission]:
    return [
        sign_submission("pack.handover", _event(i), key_id=signer.key_id, key=signer.private_key)
        for i in range(n)
    ]


def _new_log(directory: str | Path, name: str = "ledger.db") -> tuple[Log, note.Signer]:
    log_signer = note.Signer.generate("bench-log")
    log = Log.create(SQLiteStore(Path(directory) / name), signer=log_signer)
    actor = note.Signer.generate("recycler")
    log.register_key(actor.verifier.to_string())
    return log, actor


_CACHED_LOG_SIZE = 10_000_000


def _cached_log(size: int) -> Log:
    """A log of ``size`` entries kept in ``var/bench/`` between runs: it takes long to build.

    The file name carries a digest of the SQLite schema, so a schema change builds anew.
    """
    import hashlib

    from ledger.sqlite_store import ledger_ddl

    schema = hashlib.sha256(repr(ledger_ddl()).encode()).hexdigest()[:12]
    path = OUT / f"ledger-{size}-{schema}.db"
    if path.exists():
        print(f"  reusing the {size:,}-entry log {path} (built by an earlier run)", flush=True)
    else:
        print(f"  building a {size:,}-entry log, kept as {path} for later runs", flush=True)
        OUT.mkdir(parents=True, exist_ok=True)
        building = path.with_name(path.name + ".building")
        for stale in OUT.glob(building.name + "*"):
            stale.unlink()
        log, actor = _new_log(OUT, building.name)
        _fill(log, _signed(1000, actor), size - len(log))
        log.close()  # the last connection checkpoints the WAL into the file
        building.rename(path)
    log = Log(SQLiteStore(path))
    if len(log) != size:
        raise SystemExit(f"{path} holds {len(log):,} entries, not {size:,}: delete it to rebuild")
    return log


def bench_verify_rate() -> float:
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"x" * 850
    sig = key.sign(message)

    def run() -> int:
        for _ in range(20_000):
            public.verify(sig, message)
        return 20_000

    return rate(run)


def _fill(log: Log, pool: list[Submission], n: int, batch: int = 10_000) -> None:
    done = 0
    while done < n:
        k = min(batch, n - done)
        log.append([pool[(done + j) % len(pool)] for j in range(k)], signatures_checked=True)
        done += k


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99) - 1]


def _proof_latency(
    log: Log, size: int, count: int = 2000, *, seed: int = 0
) -> tuple[float, float, float, float]:
    import random

    rng = random.Random(size + seed)
    inc: list[float] = []
    con: list[float] = []
    head = log.head()
    for _ in range(count):
        i = rng.randrange(size)
        t = time.perf_counter()
        proof = log.inclusion_proof(i, size)
        inc.append(time.perf_counter() - t)
        old = rng.randrange(1, size)
        t = time.perf_counter()
        log.consistency_proof(old, size)
        con.append(time.perf_counter() - t)
    verify_inclusion(log.store.read_entries(i, i + 1)[0], i, size, proof, log.root(size))
    verify_consistency(old, size, log.consistency_proof(old, size), log.root(old), head.root)
    p50i, p99i = _percentiles(inc)
    p50c, p99c = _percentiles(con)
    return p50i * 1e3, p99i * 1e3, p50c * 1e3, p99c * 1e3


def _warm_nodes(log: Log) -> None:
    """Read the node table once, so its pages sit in the OS cache as on a server serving proofs.

    Proofs at 10M entries read one node page per lower tree level; when those
    pages have left the OS cache each costs a disk read, which the row "before
    warm-up" (500 proofs taken first) shows.
    """
    import sqlite3

    assert isinstance(log.store, SQLiteStore)
    conn = sqlite3.connect(log.store.path)
    try:
        conn.execute("SELECT count(*) FROM ledger_nodes").fetchone()
    finally:
        conn.close()


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (worker pools)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _pymerkle_proof_latency(tree: object, size: int, count: int) -> float:
    import random

    rng = random.Random(size)
    samples = []
    tree.cache_clear()  # type: ignore[attr-defined]
    for _ in range(count):
        i = rng.randrange(1, size + 1)
        t = time.perf_counter()
        tree.prove_inclusion(i, size)  # type: ignore[attr-defined]
        samples.append(time.perf_counter() - t)
    return _percentiles(samples)[0] * 1e3


def bench_ledger(full: bool) -> None:
    print("ledger", flush=True)
    verify_rate = bench_verify_rate()
    print(f"  raw Ed25519 verify, one core: {verify_rate:,.0f}/s", flush=True)
    with tempfile.TemporaryDirectory() as d:
        log, actor = _new_log(d)
        subs = _signed(60_000, actor)

        def append_signed() -> int:
            for lo in range(0, 20_000, 1000):
                log.append(subs[lo : lo + 1000])
            return 20_000

        append_rate = rate(append_signed, repeat=3)
        record(
            "ledger",
            "signed append (SQLite, 1k batches)",
            append_rate,
            "entries/s",
            "Ed25519 verify, 1 core",
            verify_rate,
            target=">= 0.6",
            met=append_rate / verify_rate >= 0.6,
        )
        log.close()

    # Pre-verified bulk append vs pymerkle SqliteTree.append_entries on the same leaves.
    from pymerkle import SqliteTree

    n = 100_000
    with tempfile.TemporaryDirectory() as d:
        log, actor = _new_log(d)
        pool = _signed(1000, actor)

        def fill_n() -> int:
            _fill(log, pool, n)
            return n

        ours = rate(fill_n, repeat=1)
        leaves = [e for chunk in log.iter_raw() for e in chunk][2:]
        log.close()
        tree = SqliteTree(str(Path(d) / "pymerkle.db"))
        theirs = rate(lambda: (tree.append_entries(leaves), len(leaves))[1], repeat=1)
        record(
            "ledger",
            f"pre-verified bulk append, {n // 1000}k",
            ours,
            "entries/s",
            "pymerkle SqliteTree.append_entries",
            theirs,
            target=">= 0.3",
            met=ours / theirs >= 0.3,
        )

    # Proof latency at growing sizes, beside pymerkle's SqliteTree.
    sizes = [10_000, 1_000_000] + ([10_000_000] if full else [])
    with tempfile.TemporaryDirectory() as d:
        log, actor = _new_log(d)
        pool = _signed(1000, actor)
        tree = SqliteTree(str(Path(d) / "pymerkle.db"))
        p50_first = 0.0
        for size in sizes:
            if size >= _CACHED_LOG_SIZE:
                subject = _cached_log(size)
                tree = SqliteTree(str(Path(d) / f"pymerkle-{size}.db"))
            else:
                _fill(log, pool, size - len(log))
                subject = log
            # Own proofs first: pymerkle's build below writes about 1 KiB per entry, which
            # would push the log's pages out of the OS cache before they are measured.
            if size >= 1_000_000:
                cold = _proof_latency(subject, size, count=500, seed=1)[0]
                _warm_nodes(subject)
            p50i, p99i, p50c, p99c = _proof_latency(subject, size)
            if size >= 1_000_000:
                record(
                    "ledger",
                    f"inclusion proof p50 @ {size:,}, before warm-up",
                    cold,
                    "ms",
                    "after reading the node table once",
                    p50i,
                )
            # pymerkle gets the same entry bytes
            for lo in range(tree.get_size(), size, 100_000):
                tree.append_entries(subject.store.read_entries(lo, min(size, lo + 100_000)))
            assert tree.get_size() == size
            theirs = _pymerkle_proof_latency(tree, size, count=3 if size >= 1_000_000 else 20)
            if subject is not log:
                subject.close()
            if not p50_first:
                p50_first = p50i
            record(
                "ledger",
                f"inclusion proof p50 @ {size:,}",
                p50i,
                "ms",
                "pymerkle SqliteTree proof p50 (cold)",
                theirs,
                ratio=theirs / p50i,
                target=">= 100x at 1M" if size == 1_000_000 else "",
                met=(theirs / p50i >= 100) if size == 1_000_000 else None,
            )
            record(
                "ledger",
                f"inclusion proof p99 @ {size:,}",
                p99i,
                "ms",
                "own p50 @ 10k (growth)",
                p50_first,
                target="p50 < 1 ms at 10M" if size == 10_000_000 else "",
                met=(p50i < 1.0) if size == 10_000_000 else None,
            )
            record(
                "ledger",
                f"consistency proof p50 / p99 @ {size:,}",
                p50c,
                "ms",
                "its p99",
                p99c,
            )
        growth = p50i / p50_first
        record(
            "ledger",
            f"proof p50 growth 10k -> {sizes[-1]:,}",
            growth,
            "x",
            "target",
            3.0,
            target="<= 3x",
            met=growth <= 3.0,
        )
        log.close()

    # Offline verification of an export, all cores.
    with tempfile.TemporaryDirectory() as d:
        log, actor = _new_log(d)
        subs = _signed(40_000, actor)
        for lo in range(0, len(subs), 10_000):
            log.append(subs[lo : lo + 10_000], signatures_checked=True)
        buf = io.BytesIO()
        signed = export_log(log, buf)
        lines = buf.getvalue().splitlines()
        key = log.signer.verifier  # type: ignore[union-attr]
        log.close()

        def verify_all() -> int:
            chunks = (lines[i : i + 4096] for i in range(0, len(lines), 4096))
            return verify_export(chunks, signed, key, workers=os.cpu_count() or 2).size

        # The reference is measured again right before, so both see the same load.
        cpu = _cpu_seconds()
        verify_now = bench_verify_rate()
        verify_cpu = (_cpu_seconds() - cpu) / 60_000
        cpu = _cpu_seconds()
        offline = rate(verify_all, repeat=3)
        offline_cpu = (_cpu_seconds() - cpu) / (3 * len(lines))
        record(
            "ledger",
            "offline export verification (all cores)",
            offline,
            "entries/s",
            "Ed25519 verify, 1 core, just before",
            verify_now,
            target=">= 1.5",
            met=offline / verify_now >= 1.5,
        )
        # CPU time is what other load on the machine disturbs least: two idle cores give
        # at most 2 * (verify CPU) / (CPU per entry, all processes) times the verify rate.
        record(
            "ledger",
            "offline verification CPU per entry, all processes",
            offline_cpu * 1e6,
            "us",
            "Ed25519 verify CPU, one (ratio: 2 cores)",
            verify_cpu * 1e6,
            ratio=2 * verify_cpu / offline_cpu,
        )


def _domain_world(url: str, n: int) -> tuple[object, list[list[Submission]]]:
    """A tracer with two actors and 3n pre-signed events (commission, handover, accept) in phases."""
    import random

    from ledger import open_store
    from schemas.actors import Actor, Role
    from schemas.codes import generate_code
    from schemas.epcis import event_id
    from schemas.events import Event
    from trace.engine import Tracer
    from trace.projections import Projections

    log = Log.create(open_store(url), signer=note.Signer.generate("bench-log"))
    tracer = Tracer(log, Projections(url))
    maker, buyer = note.Signer.generate("catl"), note.Signer.generate("byd")
    tracer.register_actor(
        Actor(id="catl", name="CATL", role=Role.BATTERY_MAKER, region="350000"),
        [maker.verifier.to_string()],
    )
    tracer.register_actor(
        Actor(id="byd", name="BYD", role=Role.AUTOMAKER, region="440000"),
        [buyer.verifier.to_string()],
    )
    rng = random.Random(7)
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    codes = [generate_code(rng) for _ in range(n)]
    phases: list[list[Submission]] = [[], [], []]
    for i, code in enumerate(codes):
        when = t0.replace(minute=i % 60)
        c = Event(
            actor="catl",
            event_time=when,
            region="350000",
            idempotency_key=f"c{i}",
            prev={code: None},
            data={"type": "commission", "item": code, "mass_kg": 420.0},
        )
        h = Event(
            actor="catl",
            event_time=when.replace(hour=10),
            region="350000",
            idempotency_key=f"h{i}",
            prev={code: event_id(c)},
            data={"type": "handover", "items": [code], "to": "byd"},
        )
        a = Event(
            actor="byd",
            event_time=when.replace(hour=11),
            region="440000",
            idempotency_key=f"a{i}",
            prev={code: event_id(h)},
            data={"type": "accept", "handover": event_id(h), "items": [code]},
        )
        phases[0].append(tracer.sign(c, key_id=maker.key_id, key=maker.private_key))
        phases[1].append(tracer.sign(h, key_id=maker.key_id, key=maker.private_key))
        phases[2].append(tracer.sign(a, key_id=buyer.key_id, key=buyer.private_key))
    return tracer, phases


def bench_domain(full: bool) -> None:
    print("domain", flush=True)
    n = 20_000 if full else 4_000
    batch = 500
    urls: list[tuple[str, str]] = []
    tmp = tempfile.TemporaryDirectory()
    urls.append(("SQLite", str(Path(tmp.name) / "domain.db")))
    pg = os.environ.get("SUYUAN_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{os.getpid()}"
    try:
        import psycopg

        with psycopg.connect(pg, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        urls.append(("PostgreSQL", f"{pg}?options=-csearch_path%3D{schema}"))
    except Exception as exc:  # the benchmark still runs on SQLite
        print(f"  PostgreSQL unavailable ({exc}); SQLite only", flush=True)

    def fresh(label: str, url: str, name: str) -> str:
        """An empty database of ``label``'s kind for one measurement."""
        if label == "SQLite":
            return str(Path(tmp.name) / name)
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            conn.execute(f"CREATE SCHEMA {schema}")
        return url

    try:
        for label, url in urls:
            # Domain and raw runs alternate, each on a fresh database; the medians of
            # three pairs are compared, so a noisy neighbour skews both sides alike.
            domain_rates: list[float] = []
            raw_rates: list[float] = []
            for rep in range(3):
                tracer, phases = _domain_world(fresh(label, url, f"domain-{rep}.db"), n)
                events = [s for phase in phases for s in phase]
                # The pre-signed events stand for requests that a service would receive and
                # drop one by one; kept here for the whole run, they would swell the heap the
                # cyclic GC walks. Both runs start with them frozen out of its reach.
                gc.freeze()
                batches = (phase[lo : lo + batch] for phase in phases for lo in range(0, len(phase), batch))  # fmt: skip
                start = time.perf_counter()
                for _ in tracer.submit_stream(batches):  # type: ignore[attr-defined]
                    pass
                domain_rates.append(len(events) / (time.perf_counter() - start))
                keys = _keys_of(tracer)
                tracer.close()  # type: ignore[attr-defined]
                # The raw ledger append of the same signed submissions, same batches.
                from ledger import open_store

                raw = Log.create(
                    open_store(fresh(label, url, f"raw-{rep}.db")),
                    signer=note.Signer.generate("bench-log"),
                )
                for key_id, verifier in keys:
                    raw.register_key(verifier, owner=key_id)
                start = time.perf_counter()
                for lo in range(0, len(events), batch):
                    raw.append(events[lo : lo + batch])
                raw_rates.append(len(events) / (time.perf_counter() - start))
                raw.close()
                gc.unfreeze()
                count = len(events)
                del tracer, phases, events
                gc.collect()
            domain_rate = statistics.median(domain_rates)
            raw_rate = statistics.median(raw_rates)
            record(
                "domain",
                f"accepted events/s, {label} ({count:,} events in streamed batches of {batch}, median of 3)",
                domain_rate,
                "events/s",
                f"raw ledger append, {label}",
                raw_rate,
                target=">= 0.5",
                met=domain_rate / raw_rate >= 0.5,
            )
    finally:
        if len(urls) > 1:
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        tmp.cleanup()
    _bench_item_upserts(200_000 if full else 50_000)


def _bench_item_upserts(stock: int) -> None:
    """Item upserts on SQLite that set only the indexed columns that changed, against
    upserts that set every column, on a table of ``stock`` items: pages written per item
    (read off the write-ahead log) and items written per second, for one status change."""
    import random
    import sqlite3

    from trace.projections import Projections
    from trace.state import ItemKind, ItemState, Status, evolve

    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    batch, rounds = 400, 10
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "items.db"
        projections = Projections(str(path))
        items = [
            ItemState(
                id=f"001PEAB0000001G1C{n:07d}",
                kind=ItemKind.PACK,
                status=Status.IN_STOCK,
                custodian=f"maker-{n % 40}",
                owner=f"maker-{n % 40}",
                producer=f"maker-{n % 40}",
                head="ni:///sha-256;" + f"{n:064x}",
                last_time=t0,
                region=f"{110000 + n % 31 * 10000}",
                mass_kg=420.0,
                vin=f"LGXCE4CB5N{n:07d}",
            )
            for n in range(stock)
        ]
        for lo in range(0, stock, 5_000):
            projections.write(seq=lo + 5_000, items=[(i, lo) for i in items[lo : lo + 5_000]])
        wal = sqlite3.connect(path)
        pages: dict[bool, list[int]] = {True: [], False: []}
        seconds: dict[bool, float] = {True: 0.0, False: 0.0}
        order = list(range(stock))
        random.Random(5).shuffle(order)
        seq = stock
        for r in range(2 * rounds):
            narrowed = r % 2 == 0  # alternating, so drift touches both alike
            picked = [items[n] for n in order[r * batch : (r + 1) * batch]]
            seq += 1
            changed = [(evolve(i, status=Status.INSTALLED, head=i.head[::-1]), seq) for i in picked]
            before = {i.id: i for i in picked} if narrowed else None
            wal.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            start = time.perf_counter()
            projections.write(seq=seq + 1, items=changed, before=before)
            seconds[narrowed] += time.perf_counter() - start
            pages[narrowed].append(path.with_name("items.db-wal").stat().st_size // (4096 + 24))
        wal.close()
        projections.close()
    per_item = {k: statistics.median(v) / batch for k, v in pages.items()}
    record(
        "domain",
        f"item upsert, status changed, SQLite ({stock:,} items): pages written per item",
        per_item[True],
        "pages",
        "every column set, pages per item",
        per_item[False],
    )
    record(
        "domain",
        f"item upserts/s, status changed, SQLite ({stock:,} items, {rounds} x {batch})",
        rounds * batch / seconds[True],
        "items/s",
        "every column set, items/s",
        rounds * batch / seconds[False],
    )


def _trace_world(packs: int) -> tuple[str, int, float, str] | None:
    """The simulated world of ``packs`` packs (demo preset, seed 11), kept in var/bench: its
    database URL, events simulated, seconds it took and how it came to be; None to skip it.

    A finished run leaves ``world.json`` beside its database and later benchmarks reuse it.
    A run in progress (or stopped) keeps ``progress.json`` up to date; such a world is
    left alone unless ``SUYUAN_TRACE_UNFINISHED=1`` asks to benchmark it as far as it got.
    A new world is simulated in a child process, so this one's peak memory is the
    benchmark's own.
    """
    folder = OUT / f"trace-world-{packs}"
    url, made, partial = str(folder / "trace.db"), folder / "world.json", folder / "progress.json"
    if made.exists() or (folder / "trace.db").exists():
        known = made if made.exists() else partial
        info = json.loads(known.read_text()) if known.exists() else {}
        if not made.exists() and (os.environ.get("SUYUAN_TRACE_UNFINISHED") != "1" or not info):
            print(f"  {folder} holds an unfinished simulation: skipped; with its progress.json, "
                  "SUYUAN_TRACE_UNFINISHED=1 benchmarks it", flush=True)  # fmt: skip
            return None
        how = "reused" if made.exists() else f"unfinished, simulated to {info['simulated'][:10]}"
        return url, int(info["events"]), float(info["simulate_s"]), how
    folder.mkdir(parents=True)
    child = multiprocessing.get_context("fork").Process(
        target=_simulate_world, args=(packs, url, made, partial), name="suyuan-bench-world"
    )
    child.start()
    child.join()
    if child.exitcode != 0 or not made.exists():
        raise SystemExit(f"bench: simulating {packs:,} packs failed (exit code {child.exitcode})")
    info = json.loads(made.read_text())
    return url, int(info["events"]), float(info["simulate_s"]), "simulated in this run"


def _simulate_world(packs: int, url: str, made: Path, partial: Path) -> None:
    from trace.simulate import SimClock, SimConfig, SimProgress, open_simulation_tracer, simulate

    tracer = open_simulation_tracer(url, clock=SimClock())
    start = last = time.perf_counter()

    def progress(p: SimProgress) -> None:
        nonlocal last
        if (now := time.perf_counter()) - last >= 60:
            last = now
            rate = p.events / (now - start)
            info = {"events": p.events, "simulated": p.simulated.isoformat(),
                    "simulate_s": now - start, "events_per_s": rate}  # fmt: skip
            partial.write_text(json.dumps(info, indent=2))
            print(f"  simulating {packs:,} packs: {p.simulated:%Y-%m-%d}, {p.fraction:.0%} of "
                  f"simulated time, {p.events:,} events, {rate:,.0f} events/s", flush=True)  # fmt: skip

    config = SimConfig.demo(total_packs=packs, seed=11)
    truth = simulate(tracer, config, progress=progress, worker=True)
    seconds = time.perf_counter() - start
    tracer.close()
    info = {"packs": packs, "seed": 11, "preset": "demo", "events": truth.events,
            "simulate_s": seconds, "events_per_s": truth.events / seconds}  # fmt: skip
    made.write_text(json.dumps(info, indent=2))


def _in_a_fresh_process(measure: Callable[[str], dict[str, float]], url: str) -> dict[str, float]:
    """``measure(url)`` in a forked child: each size starts from the same small heap, and
    the child's peak memory is that size's alone."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def run() -> None:
        send.send(measure(url))

    child = context.Process(target=run, name="suyuan-bench-trace")
    child.start()
    send.close()
    try:
        figures: dict[str, float] = receive.recv()
    except EOFError:
        raise SystemExit(f"bench: measuring {url} failed (exit code {child.exitcode})") from None
    finally:
        child.join()
    return figures


def _warm_events_table(projections: Projections) -> None:
    """Read the events table into the page cache, and no more: the pages the graph build
    and the rates' pass over the events read.

    At a million packs the whole file (16 GiB and more) is nearly this machine's memory.
    The events table is a fifth of it, its pages spread over the whole file: a scan
    through SQLite, with the kernel reading ahead (8 MiB here) around every page, would
    read nearly all of it, and push out some of the pages the pass needs before it reads
    them. So each page of the table is read by number, read-ahead off
    (:func:`_events_pages`). Other databases: the same scan as the pass.
    """
    from sqlalchemy import text

    from trace.rates_facts import events_query

    engine = projections.engine
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        database = Path(str(engine.url.database))
        page_size, runs = _events_pages(database)
        fd = os.open(database, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
            for first, count in runs:
                os.pread(fd, count * page_size, (first - 1) * page_size)
        finally:
            os.close(fd)
        wal = database.with_name(database.name + "-wal")  # none once the world is closed
        if wal.exists():
            wal.read_bytes()
        return
    query = events_query(engine.dialect.name, 2**62)
    with engine.connect() as conn:
        conn.execute(text(f"SELECT count(*), sum(length(body_json)) FROM ({query})")).one()


def _events_pages(database: Path) -> tuple[int, list[tuple[int, int]]]:
    """The page size of a SQLite database and the pages of its events table, as runs of
    ``(first page, count)``: found once by SQLite's ``dbstat`` table (every page, overflow
    pages included), then kept beside the database for as long as it is unchanged."""
    import sqlite3

    stat = database.stat()
    key = f"{stat.st_size}:{stat.st_mtime_ns}"
    kept = database.with_name(database.name + ".events-pages.json")
    if kept.exists():
        found = json.loads(kept.read_text())
        if found["key"] == key:
            return int(found["page_size"]), [(int(a), int(n)) for a, n in found["runs"]]
    conn = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = sorted(
            int(p) for (p,) in conn.execute("SELECT pageno FROM dbstat WHERE name = 'trace_events'")
        )
    finally:
        conn.close()
    runs: list[tuple[int, int]] = []
    for page in pages:
        if runs and runs[-1][0] + runs[-1][1] == page:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((page, 1))
    kept.write_text(json.dumps({"key": key, "page_size": page_size, "runs": runs}))
    return page_size, runs


def _rss() -> int:
    """Resident bytes of this process now (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _storage_reads() -> tuple[int, int]:
    """Bytes this process has had read from storage, and its major page faults (Linux)."""
    import resource

    with open("/proc/self/io") as io:
        fields = dict(line.split(": ") for line in io.read().splitlines())
    return int(fields["read_bytes"]), resource.getrusage(resource.RUSAGE_SELF).ru_majflt


_T = TypeVar("_T")


def _paced(items: Iterable[_T], total: int, pace: list[float]) -> Iterator[_T]:
    """``items`` unchanged; the microseconds per item of each tenth of ``total`` are appended
    to ``pace`` (a cost that grows with the size already built shows as a rising pace)."""
    tenth, mark = max(1, total // 10), time.perf_counter()
    for count, item in enumerate(items, start=1):
        yield item
        if count % tenth == 0:
            now = time.perf_counter()
            pace.append(1e6 * (now - mark) / tenth)
            mark = now


def _step_done(step: str, value: float) -> None:
    """A step of a long measurement, printed as it ends: a run stopped later still shows it."""
    print(f"    ({step}: {value:,.1f})", flush=True)


def _graph_figures(url: str) -> dict[str, float]:
    """The graph figures of the world at ``url``, as a query process holds it: the graph
    rebuilt from the tables with its own world, no tracer."""
    import itertools
    import random
    import resource

    from trace import lineage
    from trace.graph import ITEM, LifecycleGraph, stored_events
    from trace.projections import Projections
    from trace.state import MemoryWorld

    projections = Projections(url)
    # Both sizes are timed on a warm page cache: a world written long ago (or just after
    # a larger one) would otherwise be read from disk, and its build time would be I/O.
    # The events table only: at a million packs the whole file and the graph's 10 GiB
    # do not both fit, and the build read back gigabytes of what a read-through warmed.
    _warm_events_table(projections)
    gc.collect()
    before, reads = _rss(), _storage_reads()
    pace: list[float] = []  # microseconds per entry, each tenth of the log
    start = time.perf_counter()
    # LifecycleGraph.from_projections, with a pace meter on the events it reads.
    world = MemoryWorld()
    world.actors.update(projections.load_actors())
    replayed = _paced(stored_events(projections, world), projections.seq(), pace)
    graph = LifecycleGraph.from_events(replayed, world)
    build_s = time.perf_counter() - start
    build_reads = _storage_reads()
    del world
    _step_done("graph build", build_s)
    print("    (build pace, us per entry, each tenth of the log: "
          + ", ".join(f"{us:.0f}" for us in pace) + ")", flush=True)  # fmt: skip
    graph_bytes = _rss() - before  # the graph and its world, and what the allocator keeps
    events = graph.seq
    packs = sorted(
        n[1] for n, kind in graph.nx.nodes(data="kind") if n[0] == ITEM and kind == "pack"
    )
    rng = random.Random(3)
    samples = []
    for code in rng.sample(packs, min(2000, len(packs))):
        q = time.perf_counter()
        lineage.custody_chain(graph, code)
        lineage.downstream(graph, code)
        samples.append((time.perf_counter() - q) * 1e3)
    p50, p99 = _percentiles(samples)
    _step_done("lineage queries, p99 ms", p99)
    del graph
    gc.unfreeze()
    gc.collect()
    # Event by event, as a followed graph takes them (collector on); only apply() is timed,
    # over the first million events at most.
    world = MemoryWorld()
    world.actors.update(projections.load_actors())
    fresh = LifecycleGraph(world)
    applying, applied = 0.0, 0
    for accepted in itertools.islice(stored_events(projections, world), 1_000_000):
        q = time.perf_counter()
        fresh.apply(accepted)
        applying += time.perf_counter() - q
        applied += 1
    _step_done(f"applying {applied:,} events one by one", applying)
    del fresh, world
    gc.collect()
    projections.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"packs": float(len(packs)), "events": float(events), "build_s": build_s,
            "graph_bytes": float(graph_bytes), "peak_bytes": float(peak),
            "applied": float(applied), "apply_rate": applied / applying, "p50": p50, "p99": p99,
            "db_bytes": float(Path(url).stat().st_size),
            "build_read": float(build_reads[0] - reads[0]),
            "build_faults": float(build_reads[1] - reads[1])}  # fmt: skip


def _rates_figures(url: str) -> dict[str, float]:
    """Every rate of the world at ``url`` by the engine, the SQL oracle and DuckDB, in a
    process of their own, as ``scripts/suyuan rates`` computes them.

    Not after the graph in its process: the heap the freed graph leaves behind (a few GiB
    at a million packs) scatters the facts over it, and the rates then measured that.
    """
    import resource

    from trace.projections import Projections
    from trace.rates import bench_duckdb, bench_rates

    projections = Projections(url)
    # Warm, as the graph build is: at a million packs the graph's process has pushed most
    # of the database out of the page cache, and the rates would then time the disk.
    _warm_events_table(projections)
    importlib.import_module("trace.oracle")  # and DuckDB's library: not the engine's reads
    reads = _storage_reads()
    engine_reads: list[tuple[int, int]] = []

    def done(step: str, seconds: float) -> None:
        if step == "engine rates":  # the engine's reads alone, not the SQL oracle's after it
            engine_reads.append(_storage_reads())
        _step_done(step, seconds)

    rates = bench_rates(projections, done=done, with_duckdb=False)
    end = engine_reads[0]
    duckdb_s, _ = bench_duckdb(projections.engine, done=_step_done)  # the longest, last
    projections.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"engine_s": rates["engine_s"], "engine_cpu_s": rates["engine_cpu_s"],
            "sql_s": rates["sql_s"], "duckdb_s": duckdb_s,
            "facts_s": rates["facts_s"], "rates_s": rates["rates_s"],
            "batteries": rates["packs"],
            "rates_read": float(end[0] - reads[0]), "rates_faults": float(end[1] - reads[1]),
            "peak_bytes": float(peak)}  # fmt: skip


_RATE_RUNS: Final = 3
"""Engine rates runs per world, each in a fresh process: the growth compares the fastest,
as timeit does, so that one slow moment of a noisy machine does not decide it."""


def _best_engine_rates(
    url: str, *, upto: int | None = None, runs: int = _RATE_RUNS
) -> dict[str, float]:
    """The fastest of ``runs`` timings of :func:`_engine_rates_as_of` (wall and CPU time
    each at their least), each in a fresh process."""
    timed = [
        _in_a_fresh_process(functools.partial(_engine_rates_as_of, upto=upto), url)
        for _ in range(runs)
    ]
    best = dict(timed[0])
    for key in ("engine_s", "engine_cpu_s", "facts_s"):
        best[key] = min(t[key] for t in timed)
    best["slowest_engine_s"] = max(t["engine_s"] for t in timed)
    best["most_read"] = max(t["rates_read"] for t in timed)
    return best


def _engine_rates_as_of(url: str, *, upto: int | None) -> dict[str, float]:
    """The engine's rates of the world at ``url`` as its log stood at position ``upto``
    (None: all of it), timed as :func:`_rates_figures` times them (facts, then rates; no
    oracle: the oracles read the tables as they are now)."""
    from trace.projections import Projections
    from trace.rates import compute_rates
    from trace.rates_facts import RateFacts

    projections = Projections(url)
    _warm_events_table(projections)
    reads = _storage_reads()
    start, cpu = time.perf_counter(), time.process_time()
    facts = RateFacts.from_projections(projections, upto=upto)
    built = time.perf_counter()
    compute_rates(facts)
    end, cpu = time.perf_counter(), time.process_time() - cpu
    read = _storage_reads()[0] - reads[0]
    projections.close()
    return {"engine_s": end - start, "engine_cpu_s": cpu, "facts_s": built - start,
            "batteries": float(len(facts.phys)), "events": float(facts.last_seq + 1),
            "rates_read": float(read)}  # fmt: skip


def _simulated_until(url: str) -> datetime:
    """When the last entry of the world at ``url`` was recorded, on its simulated clock."""
    from sqlalchemy import text

    from trace.projections import Projections

    projections = Projections(url)
    with projections.reading() as conn:
        seq = projections.seq(conn)
        last = conn.execute(
            text("SELECT recorded_at FROM trace_events WHERE seq < :s ORDER BY seq DESC LIMIT 1"),
            {"s": seq},
        ).scalar_one()
    projections.close()
    return datetime.fromisoformat(str(last))


def _position_after(url: str, until: datetime) -> int:
    """The first log position of the world at ``url`` recorded after ``until`` (uploads
    are weekly batches on the simulated clock, so both worlds cut between batches)."""
    from sqlalchemy import text

    from trace.projections import Projections

    projections = Projections(url)
    with projections.reading() as conn:
        seq = projections.seq(conn)
        found = conn.execute(
            text("SELECT min(seq) FROM trace_events WHERE recorded_at > :t"),
            {"t": until.strftime("%Y-%m-%d %H:%M:%S.%f")},
        ).scalar()
    projections.close()
    return seq if found is None else int(found)


def _rates_growth_same_span(
    smaller: tuple[str, dict[str, float]], url: str, f: dict[str, float]
) -> None:
    """Rates growth from the smaller world, cut where an unfinished larger one stopped on
    the simulated clock, to that larger world: the same years of the same fleet at both
    sizes, so the same mix of events per pack."""
    until = _simulated_until(url)
    cut = _position_after(smaller[0], until)
    same = _best_engine_rates(smaller[0], upto=cut)
    _step_done(f"engine rates, smaller world as of {until:%Y-%m-%d}, best", same["engine_s"])
    # Batteries as the rates count them (a pack and its cascade re-codes are one).
    span = (
        f"{int(same['batteries']):,} -> {int(f['batteries']):,} batteries, both to {until:%Y-%m-%d} "
        f"({same['events'] / 1e6:.2f}M -> {f['events'] / 1e6:.2f}M log entries)"
    )
    for key, name in (("engine_s", "rates growth"), ("engine_cpu_s", "rates growth in CPU time")):
        record(
            "trace",
            f"{name} (best of {_RATE_RUNS}), same simulated span, {span}",
            f["best_" + key] / same[key],
            "x",
            "linear growth in batteries",
            f["batteries"] / same["batteries"],
            target="evidence only: the larger world is unfinished",
        )


def bench_trace(full: bool) -> None:
    print("trace", flush=True)
    sizes = [2_000, 10_000] + ([100_000, 1_000_000] if full else [])
    if chosen := os.environ.get("SUYUAN_TRACE_SIZES"):  # e.g. 100000,1000000
        sizes = [int(size) for size in chosen.split(",")]
    previous: dict[str, float] | None = None
    smaller: tuple[str, dict[str, float]] | None = None  # the last whole world
    for packs in sizes:
        world = _trace_world(packs)
        if world is None:
            continue
        url, events, seconds, how = world
        f = _in_a_fresh_process(_graph_figures, url)
        rates = _in_a_fresh_process(_rates_figures, url)
        again = _best_engine_rates(url, runs=_RATE_RUNS - 1)
        for key in ("engine_s", "engine_cpu_s"):
            rates["best_" + key] = min(rates[key], again[key])
        rates["slowest_engine_s"] = again["slowest_engine_s"]
        rates["again_read"] = again["most_read"]
        f |= {**rates, "peak_bytes": max(f["peak_bytes"], rates["peak_bytes"])}
        label = f"{int(f['packs']):,} packs"
        # The 1M targets are judged on a finished world only; an unfinished one is a prefix
        # of the simulated years, with fewer events per pack.
        whole = not how.startswith("unfinished")
        judged = packs == 1_000_000 and whole
        record(
            "trace",
            f"simulator, {packs:,} packs ({events:,} events, {how})",
            events / seconds,
            "events/s",
            "simulation wall time, s",
            seconds,
        )
        record(
            "trace",
            f"graph build from the tables, {label} ({int(f['events']):,} log entries)",
            f["build_s"],
            "s",
            "rates in the engine",
            f["engine_s"],
        )
        # Storage reads show whether a step waited on the disk: the file was read into the
        # page cache first, so a warm step reads (next to) nothing.
        for step, key in (("graph build", "build"), ("engine rates", "rates")):
            record(
                "trace",
                f"read from storage during the {step}, {label} "
                f"({int(f[key + '_faults']):,} major page faults)",
                f[key + "_read"] / 2**20,
                "MiB",
                "database file, MiB",
                f["db_bytes"] / 2**20,
            )
        record(
            "trace",
            f"read from storage during the engine rates, most of the {_RATE_RUNS - 1} "
            f"further runs, {label}",
            f["again_read"] / 2**20,
            "MiB",
            "database file, MiB",
            f["db_bytes"] / 2**20,
        )
        record(
            "trace",
            f"engine rates, of which the pass over the events, {label}",
            f["facts_s"],
            "s",
            "computing the rates from its facts, s",
            f["rates_s"],
        )
        per_pack = f["graph_bytes"] / f["packs"]
        record(
            "trace",
            f"graph and its world, memory per pack (RSS growth of the build), {label}",
            per_pack / 1024,
            "KiB",
            "this graph, GiB"
            if packs == 1_000_000
            else "1M packs at this size, GiB (extrapolated)",
            per_pack * (f["packs"] if packs == 1_000_000 else 1_000_000) / 2**30,
            ratio=float("nan"),
        )
        record(
            "trace",
            f"peak RSS of the benchmark, {label}",
            f["peak_bytes"] / 2**30,
            "GiB",
            "machine memory, GiB",
            24.0,
            # "Fits comfortably": at most two thirds of the machine's 24 GiB.
            target="<= 16 GiB (2/3 of 24) at 1M packs" if judged else "",
            met=(f["peak_bytes"] <= 16 * 2**30) if judged else None,
        )
        record(
            "trace",
            f"incremental graph update, {label} ({int(f['applied']):,} events applied)",
            f["apply_rate"],
            "events/s",
            "graph build rate",
            f["events"] / f["build_s"],
        )
        record(
            "trace",
            f"lineage query p99, {label}",
            f["p99"],
            "ms",
            "its p50",
            f["p50"],
            target="< 5 ms at 1M packs" if judged else "",
            met=(f["p99"] < 5) if judged else None,
        )
        record(
            "trace",
            f"all rates, engine, {label}",
            f["engine_s"],
            "s",
            "SQL oracle, same data",
            f["sql_s"],
        )
        record(
            "trace",
            f"all rates, engine, {label} (vs DuckDB)",
            f["engine_s"],
            "s",
            "DuckDB oracle, same data",
            f["duckdb_s"],
        )
        record(
            "trace",
            f"all rates, engine, CPU time of its process, {label}",
            f["engine_cpu_s"],
            "s",
            "its wall time",
            f["engine_s"],
        )
        record(
            "trace",
            f"all rates, engine, fastest of {_RATE_RUNS} runs in fresh processes, {label}",
            f["best_engine_s"],
            "s",
            "the slowest of them",
            max(f["engine_s"], f["slowest_engine_s"]),
        )
        if previous is not None and smaller is not None and not whole:
            _rates_growth_same_span(smaller, url, f)
        if previous is not None:
            scale = f["packs"] / previous["packs"]
            span = f"{int(previous['packs']):,} -> {int(f['packs']):,} packs"
            entries = f"{previous['events'] / 1e6:.2f}M -> {f['events'] / 1e6:.2f}M log entries"
            # Packs are the measure when both worlds are whole (the same events per pack);
            # a world stopped partway holds lives cut short, and only the log entries compare.
            both = whole and previous["whole"] > 0
            for key, name in (
                ("build_s", "graph build growth"),
                ("best_engine_s", f"rates growth (best of {_RATE_RUNS})"),
                (
                    "best_engine_cpu_s",
                    f"rates growth in CPU time (best of {_RATE_RUNS}, not judged)",
                ),
            ):
                growth = f[key] / previous[key]
                # One build per size is timed and the rates are the fastest of a few runs;
                # a 10% allowance covers the timing noise left, as the target column says.
                # CPU time, which a busy machine moves less, is shown beside the judged wall
                # time.
                judge = both and key != "best_engine_cpu_s"
                record(
                    "trace",
                    f"{name}, {span} ({entries})",
                    growth,
                    "x",
                    "linear growth in packs" if both else "linear growth in log entries",
                    scale if both else f["events"] / previous["events"],
                    target="<= linear (+10% timing noise)" if judge else "",
                    met=growth <= scale * 1.1 if judge else None,
                )
        previous = {**f, "whole": float(whole)}
        smaller = (url, previous) if whole else None


def _keys_of(tracer: object) -> list[tuple[str, str]]:
    records = tracer.log.key_records()  # type: ignore[attr-defined]
    return [(r.owner, r.verifier_key) for r in records if r.owner]


def bench_api_suite(full: bool) -> None:
    from scripts.bench_api import bench_api

    bench_api(record, full)


SUITES: dict[str, Callable[[bool], None]] = {
    "ledger": bench_ledger,
    "domain": bench_domain,
    "trace": bench_trace,
    "api": bench_api_suite,
}


def write_report() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    meta = {
        "time": stamp,
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    (OUT / f"bench-{stamp}.json").write_text(
        json.dumps({"meta": meta, "figures": [asdict(f) for f in FIGURES]}, indent=2)
    )
    rows = [
        "| suite | figure | value | peer | peer value | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in FIGURES:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        rows.append(
            f"| {f.suite} | {f.name} | {f.value:,.2f} {f.unit} | {f.peer_name} | {f.peer_value:,.2f} "
            f"| {f.ratio:.3f} | {f.target} | {met} |"
        )
    (OUT / f"bench-{stamp}.md").write_text("\n".join(rows) + "\n")
    print(f"\nwrote {OUT / f'bench-{stamp}.json'} and .md")


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__)
    parser.add_argument("suites", nargs="*", choices=[*SUITES, []], help="default: all")
    parser.add_argument("--full", action="store_true", help="run the large sizes too")
    args = parser.parse_args()
    for name in args.suites or list(SUITES):
        SUITES[name](args.full)
    write_report()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
