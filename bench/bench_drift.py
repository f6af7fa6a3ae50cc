"""Live drift at scale: a steady-state cycle with 10,000 jobs of which 1% drifted, against the same
cycle with no drift (FAKE Flink REST servers on loopback; see bench_sync.py for the setup).

Run: ``.venv/bin/python bench/bench_drift.py [--jobs 10000] [--clusters 10] [--rounds 5]``.

The drifted jobs were cancelled by hand and their policy is warn: detected from the one
``/jobs/overview`` per cluster (the deployed fingerprint against the listing), reported, never
acted on. The first drifted cycle also records each drift (one audited, fenced write per job);
later cycles find it recorded. Target: the steady drifted cycle's time and REST calls within
1.2x of the no-drift cycle's.
"""

from __future__ import annotations

import argparse
import json

from bench_sync import _in_child, _one  # type: ignore[import-not-found]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--drifted", type=float, default=0.01)
    args = parser.parse_args()
    clean = _in_child(_one, args.jobs, args.clusters, args.rounds, 0.0)
    drifted = _in_child(_one, args.jobs, args.clusters, args.rounds, args.drifted)
    ratio_time = drifted["steady_cycle_s"] / clean["steady_cycle_s"]
    ratio_calls = drifted["rest_calls_per_cycle_all_clusters"] / clean["rest_calls_per_cycle_all_clusters"]
    for label, r in (("no drift", clean), (f"{args.drifted:.0%} drifted", drifted)):
        print(
            f"{args.jobs} jobs, {label}: first cycle {r['first_cycle_s']} s, steady cycle "
            f"{r['steady_cycle_s']} s, REST calls per cycle {r['rest_calls_per_cycle_all_clusters']:g}, "
            f"peak RSS {r['peak_rss_mb']} MB",
            flush=True,
        )
    print(f"steady drifted / no drift: time {ratio_time:.2f}x, REST calls {ratio_calls:.2f}x")
    print(
        json.dumps(
            {"no_drift": clean, "drifted": drifted, "ratio_time": ratio_time, "ratio_calls": ratio_calls}
        )
    )
    assert ratio_calls <= 1.2, "REST calls grew with drift"


if __name__ == "__main__":
    main()
