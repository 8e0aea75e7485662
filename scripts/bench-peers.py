#!/usr/bin/env python3
"""The arithmetic of scripts/bench-peers.sh: verdicts on rate runs, the next rate of the
sustainable-rate search, and the final table and plot. Standard library only.

Every run left OUT/<server>.<run>.{json,err,samples,end,cmd}: the tool's JSON line, its stderr,
one /proc sample per line (wall time, server CPU ticks, server RSS KiB, tool CPU ticks, core 0
busy and total ticks, core 1 busy and total ticks, phase: 1 once the warm-up has started), and
the run's start/end (wall time, clock ticks per second; wall time, server ticks, peak RSS KiB).

    bench-peers.py verdict FILE.json P99_LIMIT pass|broken
    bench-peers.py next-rate OUT SERVER P99_LIMIT STEP
    bench-peers.py report OUT "SERVERS" FIXED_RATE P99_LIMIT PLOT   (HEADER from the environment)
"""

import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys

NAMES = {"stompede": "stompede", "rabbitmq": "RabbitMQ"}
SUBS = 1000
# The tool is "near a full core" from here on: its figures are lower bounds for the server.
TOOL_FULL = 0.85
# Others on the server's core beyond this share of it mark a run as disturbed (as
# bench-sockjs.sh); on the tool's core the bar is higher because this script's own sampler
# runs there.
OTHERS_CORE0 = 0.05
OTHERS_CORE1 = 0.1


# A progress line of fanout and rooms during the measured window.
PROGRESS = re.compile(r"^\[\s*\d+s measure\] sent \d+/s\s+delivered (\d+)/s")


def load_json(path):
    try:
        with open(path) as f:
            lines = [line for line in f.read().splitlines() if line.strip()]
        return json.loads(lines[-1]) if lines else None
    except (OSError, ValueError):
        return None


def p99(j):
    lat = j.get("latency_ms") if j else None
    return lat.get("p99") if lat else None


def offered(j):
    """SENDs per second asked for (0: max mode): fanout's --rate, rooms' rate × users."""
    if "rate_per_user" in j:
        return (j.get("rate_per_user") or 0) * (j.get("users") or 0)
    return j.get("rate") or 0


def rate_held(j, share):
    rate = offered(j)
    return rate <= 0 or (j.get("sent_per_sec") or 0) >= share * rate


def closed(j):
    """Receiving connections the server closed during the run."""
    return (j.get("subscribers_closed") or 0) + (j.get("users_closed") or 0)


def lost(j):
    return (j.get("loss") or 0) != 0 or closed(j) != 0


def passes(j, limit):
    """Sustainable: p99 under the limit, nothing lost, the rate held, no errors."""
    if not j or j.get("failed"):
        return False
    q = p99(j)
    return (
        q is not None
        and q < limit
        and not lost(j)
        and j.get("drained", False)
        and not j.get("stomp_errors")
        and rate_held(j, 0.95)
    )


def broken(j):
    """Past the server's breakdown: seconds of latency, loss, or the publisher held back."""
    if not j or j.get("failed"):
        return True
    q = p99(j)
    return (
        q is None
        or q >= 1000
        or lost(j)
        or not j.get("drained", False)
        or not rate_held(j, 0.9)
    )


def rate_of(name):
    return float(name.rsplit("rate-", 1)[1])


def fmt_rate(r):
    return f"{r:.10g}"


def rate_runs(out, server):
    runs = {}
    for path in glob.glob(os.path.join(out, f"{server}.rate-*.json")):
        base = os.path.basename(path)[: -len(".json")]
        runs[rate_of(base)] = load_json(path)
    return dict(sorted(runs.items()))


def bracket(runs, limit):
    """(highest passing rate below the lowest failing one, lowest failing rate)."""
    fails = [r for r, j in runs.items() if not passes(j, limit)]
    hi = min(fails) if fails else None
    ok = [r for r, j in runs.items() if passes(j, limit) and (hi is None or r < hi)]
    return (max(ok) if ok else None), hi


def round_sig(x, digits):
    if x <= 0:
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(x))))


def next_rate(out, server, limit, step):
    runs = rate_runs(out, server)
    if not runs:
        return None
    lo, hi = bracket(runs, limit)
    if lo is None:
        r = round_sig(min(runs) / 2, 2)
        return r if r >= 0.1 and r not in runs else None
    if hi is None:
        r = round_sig(max(runs) * 1.5, 2)
        return r if r <= 100_000 else None
    if hi / lo <= step:
        return None
    mid = math.sqrt(lo * hi)
    for digits in (2, 3, 4):
        r = round_sig(mid, digits)
        if lo < r < hi and r not in runs:
            return r
    return None


class Run:
    """One run's JSON line and what the samples say about the measured window."""

    def __init__(self, out, server, name):
        base = os.path.join(out, f"{server}.{name}")
        self.server, self.name, self.base = server, name, base
        self.json = load_json(base + ".json")
        self.exists = self.json is not None
        self.died = False
        self.clk = 100
        self.peak_rss = None
        try:
            with open(base + ".end") as f:
                lines = f.read().split("\n")
            self.clk = int(lines[0].split()[1])
            if lines[1].strip() == "died":
                self.died = True
            else:
                self.peak_rss = int(lines[1].split()[2])
        except (OSError, IndexError, ValueError):
            pass
        self.samples = []
        try:
            with open(base + ".samples") as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 9:
                        self.samples.append([float(parts[0])] + [int(p) for p in parts[1:]])
        except OSError:
            pass
        self.window = self._window()

    def _window(self):
        """Shares of a core over the measured window (server, tool, cores 0 and 1), RSS."""
        s = self.samples
        j = self.json or {}
        if len(s) < 2:
            return None
        starts = [x[0] for x in s if x[8] == 1]
        if starts and "warmup_s" in j and "duration_s" in j:
            t0 = starts[0] + j["warmup_s"] + 0.5
            t1 = starts[0] + j["warmup_s"] + j["duration_s"] - 0.5
        else:
            # No phases to go by: from the start of the load to the end of the run.
            t0 = starts[0] if starts else s[0][0]
            t1 = s[-1][0]
        inside = [x for x in s if t0 <= x[0] <= t1]
        if len(inside) < 2:
            return None
        a, b = inside[0], inside[-1]
        dt = b[0] - a[0]
        if dt <= 0:
            return None
        share = lambda i: (b[i] - a[i]) / self.clk / dt
        core = lambda bi, ti: (b[bi] - a[bi]) / max(1, b[ti] - a[ti])
        rss = [x[2] for x in inside]
        third = max(1, len(rss) // 3)
        return {
            "seconds": dt,
            "server": share(1),
            "tool": share(3),
            "core0": core(4, 5),
            "core1": core(6, 7),
            "rss_max": max(rss),
            "rss_first": sum(rss[:third]) / third,
            "rss_last": sum(rss[-third:]) / third,
        }

    def tool_share(self):
        tc = (self.json or {}).get("tool_cpu")
        if isinstance(tc, dict) and tc.get("cores") is not None:
            return tc["cores"]
        return self.window["tool"] if self.window else None

    def tool_full(self):
        t = self.tool_share()
        return t is not None and t >= TOOL_FULL

    def ok(self):
        return self.exists and not self.json.get("failed")

    def flood_rate(self):
        """Deliveries per second while the window ran: the mean of the tool's per-second
        progress counts in the window (every delivery, whichever second its message was sent
        in), else the window's messages' deliveries over the window's length.

        The tool's own delivered_per_sec divides the window's deliveries by the time from the
        window's start to the last delivery, which includes the queueing delay: right when
        that is small (stompede), half the rate when RabbitMQ queues a flood for 10 s. The
        window's messages alone are coarse in max mode, where a publisher sends in bursts of
        100 between backlog checks (RabbitMQ takes about 20 of them in a 10 s window)."""
        per_second = []
        try:
            with open(self.base + ".err") as f:
                for line in f:
                    m = PROGRESS.match(line)
                    if m:
                        per_second.append(int(m.group(1)))
        except OSError:
            pass
        # The first line of the window counts a second that began in the warm-up.
        if len(per_second) >= 4:
            return sum(per_second[1:]) / len(per_second[1:])
        j = self.json
        return (j["delivered"] + j["delivered_to_closed"]) / j["duration_s"]


def si(x):
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e4:
        return f"{x / 1e3:.0f} k"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.3g}"


def ms(x):
    if x is None:
        return "-"
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.0f}"


def report(out, servers, fixed_rate, limit, plot):
    servers = servers.split()
    both = servers == ["stompede", "rabbitmq"]
    rows = []
    notes = []
    verdicts = []
    summary = {}

    def run(server, name):
        return Run(out, server, name)

    def add(row, figure, values, better, target=None, bound=None, ratio_wanted=True):
        """values: {server: (number or None, text)}; better: 'higher' or 'lower'."""
        cells = []
        for s in servers:
            v, text = values.get(s, (None, "-"))
            if bound and bound.get(s) and v is not None:
                text = "≥ " + text if better == "higher" else "≤ " + text
            cells.append(text)
        ratio = ""
        a = values.get("stompede", (None, ""))[0]
        b = values.get("rabbitmq", (None, ""))[0]
        if both and a and b and ratio_wanted:
            ratio = f"{a / b:.3g}×"
        verdict = ""
        if target and target[0] == "abs<=":
            if a is not None:
                met = a <= target[1]
                verdict = ("met" if met else "missed") + f" (want stompede ≤ {target[1]:g})"
                verdicts.append(f"{row}, {figure}: stompede {a:.3g} — {verdict}")
        elif target and both and a and b:
            kind, factor = target
            met = a / b >= factor if kind == "ratio>=" else a / b <= factor
            sign = "≥" if kind == "ratio>=" else "≤"
            verdict = ("met" if met else "missed") + f" (want {sign} {factor:g}×)"
            verdicts.append(f"{row}, {figure}: {ratio} — {verdict}")
        elif target:
            verdicts.append(f"{row}, {figure}: not measured for both servers")
        rows.append([row, figure, *cells, ratio, verdict])

    def resources(r):
        """One note per run: server and tool CPU in the window, RSS, disturbance."""
        what = f"{NAMES[r.server]} {r.name}"
        if not r.exists:
            return
        j = r.json
        if r.died:
            notes.append(f"{what}: the server died during the run")
        if j.get("failed"):
            notes.append(f"{what}: the load tool failed ({j['failed']}); see {r.base}.err")
            return
        w = r.window
        if w:
            tool = r.tool_share()
            line = (
                f"{what}: server {w['server'] * 100:.0f}% of core 0, "
                f"tool {tool * 100:.0f}% of core 1 over {w['seconds']:.1f} s of the window; "
                f"server RSS peak {mib(r.peak_rss)} MiB "
                f"(window {mib(w['rss_first'])} → {mib(w['rss_last'])} MiB)"
            )
            others0 = w["core0"] - w["server"]
            others1 = w["core1"] - tool
            if others0 > OTHERS_CORE0:
                line += f"; DISTURBED: others used {others0 * 100:.0f}% of core 0"
            if others1 > OTHERS_CORE1:
                line += f"; others used {others1 * 100:.0f}% of core 1"
            if tool >= TOOL_FULL:
                line += "; TOOL NEAR A FULL CORE: throughput is a lower bound"
            notes.append(line)
        if j.get("scenario") in ("fanout", "rooms"):
            if offered(j) and not rate_held(j, 0.95):
                notes.append(
                    f"{what}: sent {j['sent_per_sec']:g}/s of the {offered(j):g}/s offered: the "
                    f"senders waited for receipts (the server accepted SENDs more slowly)"
                )
            if j.get("loss"):
                where = (
                    "still queued in the server when the drain timeout ran out"
                    if not j.get("drained")
                    else "never delivered"
                )
                notes.append(
                    f"{what}: {j['loss']} of {j['expected']} deliveries missing to subscribers "
                    f"still connected: {where}"
                )
            if closed(j):
                notes.append(
                    f"{what}: the server closed {closed(j)} receiving connections "
                    f"({j.get('close_codes')}), who missed {j.get('loss_closed')} deliveries"
                )
            if j.get("stomp_errors"):
                notes.append(
                    f"{what}: {j['stomp_errors']} ERROR frames, first: {j.get('first_error')}"
                )

    # Flood rows.
    for subs in (100, SUBS):
        runs = {s: run(s, f"flood-{subs}") for s in servers}
        vals, bound, lat, rss = {}, {}, {}, {}
        for s, r in runs.items():
            if r.ok():
                v = r.flood_rate()
                vals[s] = (v, si(v))
                bound[s] = r.tool_full()
                q = p99(r.json)
                lat[s] = (q, ms(q))
                if r.window:
                    w = r.window
                    trend = f"{mib(w['rss_first'])} → {mib(w['rss_last'])}"
                    rss[s] = (r.peak_rss, f"{mib(r.peak_rss)} ({trend})")
            resources(r)
        target = ("ratio>=", 25) if subs == SUBS else None
        add(f"flood 1 → {subs:,}", "delivered msgs/s", vals, "higher", target, bound)
        add(f"flood 1 → {subs:,}", "p99 ms (queueing)", lat, "lower")
        add(f"flood 1 → {subs:,}", "peak RSS MiB (window first → last third)", rss, "lower")
        summary[f"flood-{subs}"] = {s: vals.get(s, (None,))[0] for s in servers}

    # Sustainable rate, latency sweep.
    sustained, fixed = {}, {}
    plot_data = {}
    for s in servers:
        runs = rate_runs(out, s)
        lo, hi = bracket(runs, limit)
        points = []
        for rate, j in runs.items():
            r = run(s, f"rate-{fmt_rate(rate)}")
            resources(r)
            if r.ok() and j.get("latency_ms"):
                lat = j["latency_ms"]
                points.append(
                    (rate * SUBS, lat["p50"], lat["p99"], j.get("delivered_per_sec", 0),
                     0 if broken(j) else 1, 1 if passes(j, limit) else 0, r.tool_share() or 0)
                )
        plot_data[s] = points
        if lo is not None:
            r = run(s, f"rate-{fmt_rate(lo)}")
            sustained[s] = (lo, r, hi)
        if fixed_rate in runs:
            fixed[s] = run(s, f"rate-{fmt_rate(fixed_rate)}")
        if not runs:
            continue
        passed = [fmt_rate(x) for x, j in runs.items() if passes(j, limit)]
        failed = [fmt_rate(x) for x, j in runs.items() if not passes(j, limit)]
        notes.append(
            f"{NAMES[s]} rate runs (msgs/s to {SUBS:,}): passed {', '.join(passed) or 'none'}; "
            f"failed {', '.join(failed) or 'none'}"
        )
        if lo is not None and hi is not None:
            above = [fmt_rate(x) for x, j in runs.items() if x > hi and passes(j, limit)]
            if above:
                notes.append(
                    f"{NAMES[s]}: passed again above the first failure at {fmt_rate(hi)}: "
                    f"{', '.join(above)} (noise)"
                )

    vals, bound, lat = {}, {}, {}
    for s, (rate, r, hi) in sustained.items():
        v = rate * SUBS
        upto = f" (fails at {si(hi * SUBS)})" if hi else " (no failure found above)"
        vals[s] = (v, si(v) + upto)
        bound[s] = r.tool_full() or hi is None
        q = p99(r.json)
        lat[s] = (q, ms(q))
    add(f"sustainable 1 → {SUBS:,}", f"deliveries/s, p99 < {limit:g} ms, no loss", vals, "higher",
        ("ratio>=", 25), bound)
    add(f"sustainable 1 → {SUBS:,}", "p99 ms at that rate", lat, "lower")
    summary["sustainable"] = {s: v[0] for s, v in vals.items()}

    row = f"fixed {fmt_rate(fixed_rate)} msgs/s → {SUBS:,}"
    for label, key, target in (("p50 ms", "p50", None), ("p99 ms", "p99", ("ratio<=", 0.1)),
                               ("p99.9 ms", "p999", None), ("max ms", "max", None)):
        vals = {}
        for s, r in fixed.items():
            if r.ok() and r.json.get("latency_ms"):
                v = r.json["latency_ms"][key]
                vals[s] = (v, ms(v))
        add(row, label, vals, "lower", target)
    summary["fixed_p99"] = {
        s: r.json["latency_ms"]["p99"]
        for s, r in fixed.items()
        if r.ok() and r.json.get("latency_ms")
    }
    vals = {}
    for s, r in fixed.items():
        if r.ok() and r.window:
            vals[s] = (r.window["server"], f"{r.window['server'] * 100:.0f}%")
    add(row, "server CPU (share of core 0)", vals, "lower")

    # Rooms and idle sessions, when the tool had those scenarios.
    rooms_max = {s: run(s, "rooms-max") for s in servers}
    rooms_rate = {s: run(s, "rooms-rate") for s in servers}
    if any(r.exists for r in [*rooms_max.values(), *rooms_rate.values()]):
        rooms_row, rate_label = "rooms", "a fixed rate"
        vals, lat, bound = {}, {}, {}
        for s, r in rooms_max.items():
            resources(r)
            if r.ok():
                rooms_row = f"rooms {r.json['rooms']} × {r.json['users_per_room']}"
                v = r.flood_rate()
                vals[s] = (v, si(v))
                bound[s] = r.tool_full()
                q = p99(r.json)
                lat[s] = (q, ms(q))
        add(rooms_row, "max: delivered msgs/s", vals, "higher", None, bound)
        add(rooms_row, "max: p99 ms (queueing)", lat, "lower")
        vals, lat = {}, {}
        for s, r in rooms_rate.items():
            resources(r)
            if r.ok():
                deliveries = offered(r.json) * r.json["users_per_room"]
                rate_label = (
                    f"{r.json['rate_per_user']:g} msg/s per member ({si(deliveries)} deliveries/s)"
                )
                v = r.json.get("delivered_per_sec")
                vals[s] = (v, si(v) + ("" if passes(r.json, limit) else " (lost or late)"))
                for key in ("p50", "p99"):
                    q = (r.json.get("latency_ms") or {}).get(key)
                    lat.setdefault(key, {})[s] = (q, ms(q))
        if vals:
            add(rooms_row, f"at {rate_label}: delivered msgs/s", vals, "higher")
            add(rooms_row, "at that rate: p50 ms", lat.get("p50", {}), "lower")
            add(rooms_row, "at that rate: p99 ms", lat.get("p99", {}), "lower")
    else:
        notes.append("rooms: not run (RUNS without rooms, or a stompede-loadgen without it)")

    idle_files = sorted(glob.glob(os.path.join(out, "*.idle-*.json")))
    counts = sorted({int(re.search(r"idle-(\d+)\.json", f).group(1)) for f in idle_files})
    for n in counts:
        vals, opened = {}, {}
        for s in servers:
            r = run(s, f"idle-{n}")
            resources(r)
            if not r.ok():
                continue
            j = r.json
            asked = j.get("sessions") or n
            v = idle_kib_per_session(r, j.get("opened") or asked)
            lost_sessions = (j.get("closed") or 0) + (j.get("failed") or 0)
            # The tool reads the server's RSS once every session has opened (or failed); a few
            # closes later in the hold do not change that figure, many (a server refusing to
            # hold them) make it meaningless.
            if v is not None and lost_sessions <= 0.05 * asked:
                vals[s] = (v, f"{v:.1f}" + (f" (at {asked:,})" if asked != n else ""))
            elif v is not None:
                vals[s] = (None, f"invalid: {lost_sessions:,} sessions lost")
            text = f"{j.get('opened'):,}" + (f" of {asked:,} asked" if asked != n else "")
            if j.get("closed"):
                text += f", {j['closed']:,} closed by the server"
            opened[s] = (j.get("opened") if asked == n else None, text)
            if lost_sessions:
                notes.append(
                    f"{NAMES[s]} idle-{n}: {j.get('opened')} of {asked} opened, "
                    f"{j.get('failed')} failed {j.get('failures')}, "
                    f"first: {j.get('first_failure')}; "
                    f"{j.get('closed')} closed by the server {j.get('close_codes')}"
                )
            if asked != n:
                notes.append(
                    f"{NAMES[s]} idle-{n}: asked for {asked:,} sessions, not {n:,}: the most it "
                    f"can hold under this machine's open-files limit (RABBITMQ_IDLE_MAX)"
                )
        target = ("abs<=", 10) if n >= 19000 else None
        add(f"idle {n:,} sessions", "sessions open", opened, "higher", ratio_wanted=False)
        add(f"idle {n:,} sessions", "resident KiB per session", vals, "lower", target)
        summary[f"idle-{n}"] = {s: v[0] for s, v in vals.items()}
    if not counts:
        notes.append("idle: not run (RUNS without idle, or a stompede-loadgen without it)")

    if "rabbitmq" in servers:
        ref = []
        for key, label, issue, fmt in (
            ("flood-1000", "flood 1 → 1,000", "~13 k msgs/s", si),
            ("sustainable", "sustainable 1 → 1,000", "~12 k/s", si),
            ("fixed_p99", "p99 at 10 msgs/s → 1,000", "~79 ms", lambda x: f"{x:.0f} ms"),
            ("idle-10000", "idle session at 10k", "~118 KiB", lambda x: f"{x:.0f} KiB"),
        ):
            v = summary.get(key, {}).get("rabbitmq")
            if v is not None:
                ref.append(f"{label} {fmt(v)} (issue: {issue})")
        if ref:
            notes.append("RabbitMQ here against the issue's reference figures: " + "; ".join(ref))

    header = ["row", "figure", *[NAMES[s] for s in servers], "ratio", "target"]
    print(os.environ.get("HEADER", ""))
    if both:
        print(
            "ratio = stompede / RabbitMQ: above 1 is better for stompede on throughput, "
            "below 1 on latency and memory"
        )
    print()
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print()
    print("Targets:")
    for v in verdicts:
        print(f"- {v}")
    print()
    print("Runs:")
    for n in notes:
        print(f"- {n}")

    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump({"rows": rows, "notes": notes, "verdicts": verdicts, "summary": summary,
                   "sweep": plot_data}, f, indent=1)
    render(out, plot_data, limit, plot)


def idle_kib_per_session(r, n):
    """Resident KiB per idle session: the tool's own figure when it reports one, else RSS
    growth over the run (from the samples) divided by the sessions."""
    if not r.ok():
        return None
    j = r.json
    for key, value in j.items():
        if "per_session" in key and isinstance(value, (int, float)):
            return value / 1024 if key.endswith("bytes") else value
    if len(r.samples) >= 2:
        base = r.samples[0][2]
        top = max(x[2] for x in r.samples)
        return (top - base) / n
    return None


def render(out, data, limit, plot):
    if not shutil.which("gnuplot"):
        print(f"\n(no gnuplot: {plot} not rendered)")
        return
    plots, marks = [], []
    tool_titled = False
    colors = {"stompede": "#1f77b4", "rabbitmq": "#d62728"}
    for s, points in data.items():
        if not points:
            continue
        path = os.path.join(out, f"sweep-{s}.dat")
        with open(path, "w") as f:
            f.write(
                "# offered_deliveries_per_s p50_ms p99_ms delivered_per_s held pass tool_share\n"
            )
            for p in points:
                f.write(" ".join(f"{x:g}" for x in p) + "\n")
        name, c = NAMES[s], colors.get(s, "black")
        plots += [
            f"'{path}' u 1:3 w lp lw 2 pt 7 ps 0.8 lc rgb '{c}' t '{name} p99'",
            f"'{path}' u 1:2 w lp lw 1 dt 2 pt 6 ps 0.8 lc rgb '{c}' t '{name} p50'",
            f"'{path}' u 1:($5 == 0 ? $3 : 1/0) w p pt 4 ps 2 lw 2 lc rgb '{c}' notitle",
        ]
        if any(p[6] >= TOOL_FULL for p in points):
            title = "notitle" if tool_titled else f"t 'load tool ≥ {TOOL_FULL:.0%} of its core'"
            tool_titled = True
            marks.append(
                f"'{path}' u 1:($7 >= {TOOL_FULL} ? $3 * 1.35 : 1/0) "
                f"w p pt 9 ps 1 lc rgb 'gray30' {title}"
            )
    if not plots:
        return
    plots += marks
    title = (
        "1 publisher → 1,000 subscribers, 100-byte bodies, each server on one core\\n"
        "(squares: past breakdown — p99 over 1 s, loss, or the publisher held back)"
    )
    script = f"""
set terminal pngcairo size 900,520 font 'sans,10'
set output '{os.path.abspath(plot)}'
set title "{title}"
set logscale xy
set xlabel 'offered load (deliveries/s = msgs/s × 1,000 subscribers)'
set ylabel 'end-to-end latency (ms)'
set format x '%.0s%c'
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key top left
set arrow from graph 0, first {limit} to graph 1, first {limit} nohead dt 3 lc rgb 'gray40'
set label 'p99 limit {limit:g} ms' at graph 0.99, first {limit} * 1.15 right tc rgb 'gray40'
plot {', '.join(plots)}
"""
    with open(os.path.join(out, "latency-vs-load.gp"), "w") as f:
        f.write(script)
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True, timeout=60)
        print(f"\nplot: {plot}")
    except (subprocess.SubprocessError, OSError) as e:
        print(f"\n(gnuplot failed: {e})")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "verdict":
        j = load_json(argv[2])
        if argv[4] == "broken":
            print("broken" if broken(j) else "ok")
        else:
            print("pass" if passes(j, float(argv[3])) else "fail")
    elif cmd == "next-rate":
        r = next_rate(argv[2], argv[3], float(argv[4]), float(argv[5]))
        if r is not None:
            print(fmt_rate(r))
    elif cmd == "report":
        report(argv[2], argv[3], float(argv[4]), float(argv[5]), argv[6])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
