#!/usr/bin/env python
"""Side-by-side sync benchmark: the SQLite limit, a plain Python copy, dlt, and this engine.

    make bench                              # 100,000 rows, 3 runs per figure
    make bench BENCH_ARGS="--rows 1000000"  # adds the 1,000-changes-in-1,000,000 figure

Every contender copies the same generated ERP customer table (12 columns, ~200 bytes a row)
into a CRM account table with the same field renames, each step in its own process so that
peak RSS is that process's own (os.wait4 rusage: the largest of the process and its
children, so the ansible-playbook figure covers the module process too). Prints one table
(median seconds, rows/s and peak RSS over the runs, and the ratio of the time to the limit's
and to the peer's), and writes it as JSON and as a PNG bar chart into benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import data  # noqa: E402

CONTENDERS = {
    "limit": "SQLite INSERT ... SELECT (the limit)",
    "plain": "plain Python (sqlite3 executemany)",
    "dlt": "dlt (peer)",
    "engine": "tablesync engine, Python API",
    "ansible": "tablesync sync module, ansible-playbook",
}
# Which steps each contender takes part in: a plain copy and dlt have no "full sync that compares".
STEPS = {
    "limit": ("full", "nochange", "modified"),
    "plain": ("full", "nochange", "modified"),
    "dlt": ("full", "nochange", "modified"),
    "engine": ("full", "nochange", "full_rerun", "modified"),
    "ansible": ("full", "nochange", "full_rerun", "modified"),
}


def step_label(step: str, rows: int, changed: int) -> str:
    return {
        "full": "full sync, %s rows" % f"{rows:,}",
        "nochange": "modified sync, nothing changed",
        "full_rerun": "full sync re-run, nothing changed",
        "modified": "modified sync, %s changed (%s of %s)" % (f"{changed:,}", "%g %%" % (100.0 * changed / rows), f"{rows:,}"),
        "modified_1000": "modified sync, 1,000 changed of %s" % f"{rows:,}",
    }[step]


def run_child(contender: str, step: str, workdir: str, timeout: float) -> dict:
    """One step in a fresh process; returns its seconds, rows and peak RSS (MB).

    A step that runs longer than ``timeout`` is killed and reported as timed out.
    """
    with tempfile.TemporaryFile(mode="w+") as out, tempfile.TemporaryFile(mode="w+") as err:
        cmd = [sys.executable, os.path.join(HERE, "contenders.py"), contender, "setup" if step == "setup" else _child_step(step), workdir]
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                _pid, status, usage = os.wait4(proc.pid, 0)
                proc.returncode = -9
                return {"seconds": timeout, "cpu_seconds": usage.ru_utime + usage.ru_stime, "rows": 0, "rss_mb": usage.ru_maxrss / 1024.0,
                        "timed_out": True}
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if proc.returncode != 0:
            raise SystemExit("%s %s failed (%d):\n%s\n%s" % (contender, step, proc.returncode, stdout[-3000:], err.read()[-3000:]))
    result = json.loads(stdout.strip().splitlines()[-1])
    result["rss_mb"] = usage.ru_maxrss / 1024.0  # Linux reports kilobytes
    return result


def _child_step(step: str) -> str:
    return "modified" if step in ("nochange", "modified_1000") else step


def prepare(workdir: str, source: str) -> None:
    os.makedirs(workdir)
    shutil.copyfile(source, os.path.join(workdir, "src.sqlite"))
    data.build_destination(os.path.join(workdir, "dst.sqlite"))


def one_round(contender: str, round_no: int, source: str, rows: int, changes: int, scratch: str, big: bool, timeout: float) -> dict[str, dict]:
    """Every step of one contender on a fresh copy of the data, in order (stopping after a step that timed out)."""
    workdir = os.path.join(scratch, "%s-%d" % (contender, round_no))
    prepare(workdir, source)
    src = os.path.join(workdir, "src.sqlite")
    run_child(contender, "setup", workdir, timeout)
    results = {}
    for step in STEPS[contender] + (("modified_1000",) if big else ()):
        if step == "modified":
            data.change_customers(src, changes, round_no=1)
        elif step == "modified_1000":
            data.change_customers(src, 1000, round_no=2)
        results[step] = run_child(contender, step, workdir, timeout)
        if results[step].get("timed_out"):
            break
    shutil.rmtree(workdir, ignore_errors=True)
    return results


def summarise(samples: dict[str, dict[str, list[dict]]]) -> list[dict]:
    rows = []
    for contender, steps in samples.items():
        for step, runs in steps.items():
            seconds = statistics.median(r["seconds"] for r in runs)
            moved = statistics.median(r["rows"] for r in runs)
            rows.append({
                "contender": contender,
                "step": step,
                "seconds": seconds,
                "rows": moved,
                "rows_per_s": moved / seconds if seconds > 0 and moved and not any(r.get("timed_out") for r in runs) else None,
                "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
                "rss_mb": statistics.median(r["rss_mb"] for r in runs),
                "runs": len(runs),
                "timed_out": any(r.get("timed_out") for r in runs),
                "all_seconds": [round(r["seconds"], 4) for r in runs],
            })
    by_key = {(r["contender"], r["step"]): r for r in rows}
    for r in rows:
        for ref in ("limit", "dlt"):
            other = by_key.get((ref, r["step"]))
            r["x_" + ref] = r["seconds"] / other["seconds"] if other and other["seconds"] > 0 else None
    return rows


def fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern % value


def print_table(rows: list[dict], labels: dict[str, str]) -> str:
    header = ("step", "contender", "seconds", "CPU s", "rows/s", "peak RSS MB", "time / limit", "time / dlt")
    body = [
        (labels[r["step"]], CONTENDERS[r["contender"]], (">%.0f" if r["timed_out"] else "%.3f") % r["seconds"], "%.3f" % r["cpu_seconds"],
         fmt(r["rows_per_s"], "%.0f"), "%.0f" % r["rss_mb"],
         fmt(r["x_limit"], "%.2fx"), fmt(r["x_dlt"], "%.2fx"))
        for r in rows
    ]
    widths = [max(len(str(x[i])) for x in [header, *body]) for i in range(len(header))]
    lines = []
    last_step = None
    for i, line in enumerate([header, *body]):
        step = line[0]
        if i == 1 or (i > 1 and step != last_step):
            lines.append("-+-".join("-" * w for w in widths))
        cells = [("" if (i > 1 and step == last_step and j == 0) else str(c)) for j, c in enumerate(line)]
        lines.append(" | ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))))
        last_step = step
    text = "\n".join(lines)
    print(text)
    return text


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, checked against this run's figures."""
    by = {(r["contender"], r["step"]): r for r in rows}
    out = []
    full, plain, dlt = by.get(("engine", "full")), by.get(("plain", "full")), by.get(("dlt", "full"))
    if full and plain:
        out.append("full sync rows/s vs plain Python copy: %.0f %% (by CPU time %.0f %%; target >= 50 %%)"
                   % (100 * plain["seconds"] / full["seconds"], 100 * plain["cpu_seconds"] / full["cpu_seconds"]))
    if full and dlt:
        out.append("full sync speed vs dlt: %.2fx (by CPU time %.2fx; target >= 3x)"
                   % (dlt["seconds"] / full["seconds"], dlt["cpu_seconds"] / full["cpu_seconds"]))
    mod = by.get(("engine", "modified_1000")) or by.get(("engine", "modified"))
    if full and mod:
        # why: the target is for 1,000 changes in 1,000,000 rows; at smaller sizes the same changes are a larger share
        target = "target < 2 %" if full["rows"] >= 1_000_000 else "the target (< 2 %) is for 1,000 changes in 1,000,000 rows: --rows 1000000"
        out.append("modified sync of %s changes: %.2f %% of the full sync (%s)" % (f"{int(mod['rows']):,}", 100 * mod["seconds"] / full["seconds"], target))
    rerun = by.get(("engine", "full_rerun"))
    if full and rerun:
        # why: a re-run reads both sides to repair drift; it must still cost a fraction of the sync that wrote everything
        out.append("full sync re-run with nothing changed: %.0f %% of the full sync (by CPU time %.0f %%; target <= 35 %%)"
                   % (100 * rerun["seconds"] / full["seconds"], 100 * rerun["cpu_seconds"] / full["cpu_seconds"]))
    if full:
        out.append("peak RSS of the full sync: %.0f MB (target < 150 MB)" % full["rss_mb"])
    api_n, pb_n = by.get(("engine", "nochange")), by.get(("ansible", "nochange"))
    api_f, pb_f = by.get(("engine", "full")), by.get(("ansible", "full"))
    if api_n and pb_n and api_f and pb_f:
        out.append("ansible-playbook over the Python API: %+.2f s on a no-change run, %+.2f s on the full sync (CPU %+.2f s and %+.2f s);"
                   " target: a fixed per-task cost"
                   % (pb_n["seconds"] - api_n["seconds"], pb_f["seconds"] - api_f["seconds"],
                      pb_n["cpu_seconds"] - api_n["cpu_seconds"], pb_f["cpu_seconds"] - api_f["cpu_seconds"]))
    return out


def chart(rows: list[dict], labels: dict[str, str], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart (pip install -r benchmarks/requirements.txt)", file=sys.stderr)
        return False
    steps = list(dict.fromkeys(r["step"] for r in rows))
    contenders = list(dict.fromkeys(r["contender"] for r in rows))
    by = {(r["contender"], r["step"]): r for r in rows}
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    width = 0.8 / len(contenders)
    for i, c in enumerate(contenders):
        xs = [k + i * width for k, s in enumerate(steps) if (c, s) in by]
        axes[0].bar(xs, [by[(c, s)]["seconds"] for s in steps if (c, s) in by], width, label=CONTENDERS[c])
        axes[1].bar(xs, [by[(c, s)]["rss_mb"] for s in steps if (c, s) in by], width, label=CONTENDERS[c])
    for ax, title in ((axes[0], "seconds (median, lower is better, log scale)"), (axes[1], "peak RSS MB (median)")):
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(steps))])
        ax.set_xticklabels([labels[s].replace(", ", "\n", 1) for s in steps], fontsize=8)
        ax.set_title(title)
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rows", type=int, default=100_000, help="customers in the table (default 100,000)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure; the median is reported (default 3, 1 at >= 1,000,000 rows)")
    parser.add_argument("--changed", type=float, default=1.0, help="per cent of rows the modified sync changes (default 1)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS), help="comma-separated subset of %s" % ",".join(CONTENDERS))
    parser.add_argument("--out", default=os.path.join(HERE, "results"), help="where the JSON, the PNG and the data go")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--step-timeout", type=float, default=None,
                        help="seconds after which a step is stopped and shown as '>' (default 600, 1200 at >= 1,000,000 rows)")
    args = parser.parse_args()
    runs = args.runs or (1 if args.rows >= 1_000_000 else 3)
    args.step_timeout = args.step_timeout or (1200.0 if args.rows >= 1_000_000 else 600.0)
    chosen = [c for c in args.contenders.split(",") if c]
    unknown = [c for c in chosen if c not in CONTENDERS]
    if unknown:
        parser.error("unknown contender(s): %s" % ", ".join(unknown))
    os.makedirs(args.out, exist_ok=True)
    changes = max(1, int(args.rows * args.changed / 100))
    big = args.rows >= 1_000_000 and changes != 1000

    started = time.time()
    source = os.path.join(args.out, "customers-%d-%d.sqlite" % (args.rows, args.seed))
    if not os.path.exists(source):
        print("generating %s customers ..." % f"{args.rows:,}", flush=True)
        data.build_source(source, args.rows, args.seed)
    samples: dict[str, dict[str, list[dict]]] = {c: {} for c in chosen}
    scratch = tempfile.mkdtemp(prefix="bench-", dir=args.out)
    try:
        for round_no in range(runs):
            for contender in chosen:
                t0 = time.time()
                for step, result in one_round(contender, round_no, source, args.rows, changes, scratch, big, args.step_timeout).items():
                    samples[contender].setdefault(step, []).append(result)
                print("run %d/%d %-8s %6.1f s" % (round_no + 1, runs, contender, time.time() - t0), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    labels = {s: step_label(s, args.rows, changes) for s in ("full", "nochange", "full_rerun", "modified", "modified_1000")}
    order = ["full", "full_rerun", "modified", "modified_1000", "nochange"]
    rows = sorted(summarise(samples), key=lambda r: (order.index(r["step"]), list(CONTENDERS).index(r["contender"])))
    print()
    print("%s rows, median of %d run(s), %s, Python %s, %d CPUs" % (f"{args.rows:,}", runs, platform.platform(), platform.python_version(), os.cpu_count()))
    table = print_table(rows, labels)
    checks = targets(rows)
    print()
    for line in checks:
        print("  " + line)
    stem = os.path.join(args.out, "bench-%d" % args.rows)
    with open(stem + ".json", "w") as handle:
        json.dump({"rows": args.rows, "runs": runs, "changed": changes, "machine": platform.platform(), "cpus": os.cpu_count(),
                   "python": platform.python_version(), "peer": "dlt", "labels": labels, "results": rows, "targets": checks,
                   "table": table, "elapsed_s": round(time.time() - started, 1)}, handle, indent=2)
    drawn = chart(rows, labels, stem + ".png")
    print("\nwrote %s.json%s (%.0f s)" % (stem, " and %s.png" % stem if drawn else "", time.time() - started))


if __name__ == "__main__":
    main()
