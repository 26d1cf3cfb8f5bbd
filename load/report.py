"""A run's result as people read it: a short Markdown summary and a latency chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def summary(result: dict[str, Any]) -> str:
    scenario = result["scenario"]
    lines = [
        f"## imload {result['command']} `{scenario['name']}` ({result['started']})",
        "",
        f"Server {result['url']}; {result['connected']} clients connected"
        f" ({scenario['workers']} load workers); machine: {result['machine']}.",
        "",
        "| offered/s | accepted/s | delivered/s | expected | delivered | missing | dup | out of order "
        "| ack p50 / p99 ms | deliver p50 / p99 / p99.9 / max ms | server CPU % | server RSS MB "
        "| Postgres CPU % | load CPU % | machine CPU % | pass |",
        "|" + "---:|" * 16,
    ]
    for s in result["steps"]:
        ack, dl = s["send_to_ack_ms"], s["send_to_deliver_ms"]
        lines.append(
            f"| {s['offered_per_s']:g} | {s['accepted_per_s']:g} | {s['delivered_per_s']:g} "
            f"| {s['expected_deliveries']} | {s['delivered']} | {s['missing']} | {s['duplicates']} "
            f"| {s['out_of_order']} | {ack['p50']} / {ack['p99']} "
            f"| {dl['p50']} / {dl['p99']} / {dl['p99.9']} / {dl['max']} "
            f"| {_num(s['server_cpu_pct'])} | {_num(s['server_rss_mb'])} | {_num(s['postgres_cpu_pct'])} "
            f"| {_num(s['load_cpu_pct'])} | {_num(s['machine_cpu_pct'])} | {'yes' if s['passes'] else 'no'} |"
        )
    errors = {k: v for s in result["steps"] for k, v in s["errors"].items()}
    if errors:
        lines += ["", f"Send errors: {errors}"]
    lines += ["", "Acks against the database: " + ", ".join(
        f"{s['acked_not_stored']} acked but not stored (lost), {s['stored_not_acked']} stored without an ack"
        for s in result["steps"]) + "."]
    for s in result["steps"]:
        if "flood" in s:
            lines += _flood_lines(result["scenario"], s)
    if result.get("ceiling_per_s") is not None or result["command"] == "ramp":
        lines += ["", f"Ceiling (complete delivery, p99 send→deliver ≤ {scenario['p99_target_ms']:g} ms): "
                  f"{result.get('ceiling_per_s')} msg/s"]
    storm = result.get("reconnect_storm")
    if storm:
        lines += [
            "", f"Reconnect storm: {storm['clients']} clients dropped, {storm['missed_each']} messages missed each; "
            f"{storm['reconnected']} reconnected and synced in {storm['all_synced_s']} s "
            f"(p50 {storm['synced_s']['p50']} s, p99 {storm['synced_s']['p99']} s); "
            f"missing {storm['missing']}, duplicates {storm['duplicates']}, out of order {storm['out_of_order']}; "
            f"failures {storm['failures'] or 'none'}.",
        ]
    if result.get("idle_server_rss_mb") is not None:
        lines += ["", f"Server RSS with all clients connected, before traffic: {result['idle_server_rss_mb']} MB."]
    return "\n".join(lines) + "\n"


def _flood_lines(scenario: dict[str, Any], step: dict[str, Any]) -> list[str]:
    flood, spec = step["flood"], scenario["flood"]
    start, end = flood["window_s"]
    lines = [
        "", f"Flood: {spec['senders']} accounts, {spec['in_flight']} sends in flight each, from {start:g} s to "
        f"{end:g} s: {flood['sent']} sends, {flood['acked']} acked ({flood['acked_per_s']}/s), "
        f"errors {flood['errors'] or 'none'}; the server shed {step['server_shed']} sends (each resent or given up).",
        "", "| light traffic | messages | deliver p50 / p99 / max ms | ack p50 / p99 ms |", "|---|---:|---:|---:|",
    ]
    for name in ("before", "during", "after"):
        dl, ack = flood["light_deliver_ms"][name], flood["light_ack_ms"][name]
        lines.append(f"| {name} the flood | {dl['count']} | {dl['p50']} / {dl['p99']} / {dl['max']} "
                     f"| {ack['p50']} / {ack['p99']} |")
    lines += [
        "", f"Light p99 send→deliver back within {scenario['p99_target_ms']:g} ms for good "
        f"{flood['recovered_after_s']} s after the flood ended (its sends in flight were answered until "
        f"{flood['last_answer_after_s']} s after). By second: {flood['light_p99_ms_by_second']}.",
    ]
    return lines


def chart(result: dict[str, Any], path: Path) -> None:
    """Send→deliver percentiles against the offered rate (log scale), with the 100 ms line."""
    import matplotlib  # imported here: only runs that write a chart pay for it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result["steps"]
    rates = [s["offered_per_s"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for key in ("p50", "p90", "p99", "p99.9", "max"):
        ax.plot(rates, [max(s["send_to_deliver_ms"][key], 0.01) for s in steps], marker="o", label=key)
    target = result["scenario"]["p99_target_ms"]
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"p99 target {target:g} ms")
    ax.set_yscale("log")
    ax.set_xlabel("offered messages/s")
    ax.set_ylabel("send → deliver (ms)")
    ax.set_title(f"imload {result['command']} {result['scenario']['name']}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"
