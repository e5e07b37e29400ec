"""The whole-suite benchmark's output: bench/results.json (each section as its last run
left it, with the time of that run) and Markdown tables, printed and written into README.md
between the bench-table markers of its "Benchmarks" section."""

from __future__ import annotations

import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results.json"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
SECTION = "## Benchmarks"
SECTION_BEFORE = "## Libraries, and why"


def save(sections: dict[str, dict]) -> dict:
    """Merges this run's sections into results.json; returns every section."""
    merged = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    for name, section in sections.items():
        merged[name] = {"measured_at": stamp, **section}
    RESULTS.write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")
    return merged


def row(figure: str, value, baseline, goal: str = "", met=None, unit: str = "", ratio=None) -> str:
    if ratio is None and isinstance(value, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        ratio = value / baseline
    cells = [figure, fmt(value, unit), fmt(baseline, unit) if not isinstance(baseline, str) else baseline]
    cells += [f"{ratio:.2f}" if ratio is not None else "", goal, {True: "yes", False: "**no**", None: ""}[met]]
    return "| " + " | ".join(cells) + " |"


def fmt(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def mixed_rows(mixed: dict) -> list[str]:
    run, base = mixed["mixed"], mixed.get("baselines", {})
    latency, offered, steady = run["latency_ms"], run["offered"], run["steady"]
    echo_insert, publish = base.get("echo_insert", {}), base.get("jetstream_publish", {})
    at = f" @{echo_insert.get('inflight', '?')}"
    rows = [
        row(
            "chats/s (steady)",
            steady["chats_per_s"],
            offered["chats_per_s"],
            "as offered",
            steady["chats_per_s"] >= 0.95 * offered["chats_per_s"],
        ),
        row(
            "messages/s (steady)",
            steady["messages_per_s"],
            offered["messages_per_s"],
            "as offered",
            steady["messages_per_s"] >= 0.9 * offered["messages_per_s"],
        ),
    ]
    pairs = [
        ("StartChat → offer", publish, f"JetStream publish @{publish.get('inflight', '?')}", 50),
        ("SendMessage", echo_insert, "echo + INSERT" + at, 50),
        ("message → watcher", echo_insert, "echo + INSERT" + at, 25),
    ]
    for name, baseline, label, goal in pairs:
        figure = latency.get(name.replace("→", "to"), {})
        for p in ("p50", "p99"):
            value = figure.get(p)
            met = value < goal if p == "p99" and value is not None else None
            rows.append(
                row(f"{name} {p} (vs {label})", value, baseline.get(p), f"p99 < {goal} ms" if p == "p99" else "", met, "ms")
            )
    queue = run.get("queue_wait")
    if queue:
        rows.append(
            row(
                f"queue: wait estimate error, mean absolute (n={queue['n']}; vs mean wait)",
                queue["mae_s"],
                queue["mean_wait_s"],
                "≤ 25% of the mean wait",
                queue["mae_s"] <= 0.25 * queue["mean_wait_s"],
                "s",
            )
        )
    under_goal = [s["messages_per_s"] for s in mixed.get("scale", []) if (s.get("SendMessage p99 ms") or 1e9) < 50]
    best = max(under_goal) if under_goal else None
    rows.append(
        row("messages/s with SendMessage p99 < 50 ms (best step)", best, 1000, "≥ 1,000/s", best is not None and best >= 1000)
    )
    return rows


def stored_rows(stored: dict) -> list[str]:
    base = stored.get("baselines", {})
    insert, assign, copy = base.get("echo_insert", {}), base.get("echo_assignment", {}), base.get("copy_records_to_table", {})
    rows = []
    for step in stored["steps"]:
        n = f"{step['stored_chats']:,} stored chats"
        ratio = step["send"]["rps"] / insert["rps"] if insert.get("rps") else None
        rows.append(
            row(
                f"SendMessage/s @64, {n} (vs echo + INSERT @64)",
                step["send"]["rps"],
                insert.get("rps"),
                "≥ 60%",
                ratio and ratio >= 0.6,
            )
        )
        ratio = step["accept"]["rps"] / assign["rps"] if assign.get("rps") else None
        rows.append(
            row(
                f"AcceptChat/s, 200 agents, {n} (vs echo + assignment SQL @200)",
                step["accept"]["rps"],
                assign.get("rps"),
                "≥ 50%",
                ratio and ratio >= 0.5,
            )
        )
        if step.get("bulk_load"):
            rows.append(
                row(
                    f"bulk load rows/s to {n} (vs copy_records_to_table)", step["bulk_load"]["rows_per_s"], copy.get("rows_per_s")
                )
            )
    return rows


def scale_table(mixed: dict) -> list[str]:
    lines = [
        "| rate | chats/s offered | chats/s | messages/s | SendMessage p99 | StartChat → offer p99 "
        "| message → watcher p99 | bent |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in mixed.get("scale", []):
        cells = [
            f"{step['multiplier']}×",
            fmt(step["offered_chats_per_s"]),
            fmt(step["chats_per_s"]),
            fmt(step["messages_per_s"]),
        ]
        cells += [
            fmt(step.get(k), "ms") for k in ("SendMessage p99 ms", "StartChat to offer p99 ms", "message to watcher p99 ms")
        ]
        cells.append("; ".join(step.get("bent", [])) or ("" if step["multiplier"] == 1 else "no"))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def process_table(mixed: dict) -> list[str]:
    idle, busy = mixed.get("idle", {}), mixed["mixed"].get("processes", {})
    lines = ["| process | idle CPU | idle memory | 1× load CPU | 1× load memory |", "|---|---|---|---|---|"]
    for name in sorted(set(idle) | set(busy)):
        cells = [name]
        for figures in (idle.get(name), busy.get(name)):
            cells += [f"{figures['cpu_percent']:.1f}%", f"{figures['rss_mb']:.0f} MB"] if figures else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def counts_line(mixed: dict) -> str:
    run = mixed["mixed"]
    counts = ", ".join(f"{name} {value:,}" for name, value in sorted(run["counts"].items()))
    errors = ", ".join(f"{name} {value:,}" for name, value in sorted(run["errors"].items())) or "none"
    logged = len(mixed.get("service_error_lines", []))
    return f"1× load, counted: {counts}. RPC errors: {errors}. Error lines in the services' logs: {logged}."


def tables(results: dict) -> str:
    lines = ["| figure | value | baseline | ratio | goal | met? |", "|---|---|---|---|---|---|"]
    if "mixed" in results:
        lines += mixed_rows(results["mixed"])
    if "stored" in results:
        lines += stored_rows(results["stored"])
    if "mixed" in results:
        lines += ["", counts_line(results["mixed"])]
        lines += ["", "How the cost grows with the rate:", ""] + scale_table(results["mixed"])
        lines += ["", "CPU (percent of one core) and largest resident memory per process:", ""] + process_table(results["mixed"])
    stamps = ", ".join(f"{name} {section['measured_at']}" for name, section in sorted(results.items()))
    return "\n".join([f"Measured: {stamps} (`bench/results.json`).", "", *lines])


def write_readme(text: str) -> None:
    readme = README.read_text()
    block = f"{START}\n{text}\n{END}"
    if START in readme and END in readme:
        head, rest = readme.split(START, 1)
        readme = head + block + rest.split(END, 1)[1]
    else:
        section = f"{SECTION}\n\n`make bench` (bench/mixed.py, bench/stored.py; see bench/__main__.py):\n\n{block}\n\n"
        readme = readme.replace(SECTION_BEFORE, section + SECTION_BEFORE, 1)
    README.write_text(readme)


def publish(sections: dict[str, dict]) -> None:
    text = tables(save(sections))
    print("\n" + text)
    write_readme(text)
