"""``report.md`` and PNG plots, rendered from ``results.json`` alone (so a report can be
rendered again after a change of wording, without simulating again)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from budgetopt.bench.records import (
    CapResult,
    Fidelity,
    FidelitySubset,
    PoolBootstrap,
    SimulationResults,
    Threshold,
    write_results,
)

FILES = {
    "report": "report.md",
    "results": "results.json",
    "anytime": "anytime.png",
    "fidelity": "rank_fidelity.png",
    "regret": "regret_distribution.png",
}


def format_number(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _signed(x, digits: int = 4) -> str:
    return "—" if x is None else f"{x:+.{digits}f}"


def format_interval(entry: Mapping[str, Any] | None, digits: int = 4, sign: bool = False) -> str:
    """``mean (low to high)`` of an interval record (``—`` for none)."""
    fmt = _signed if sign else format_number
    if entry is None:
        return fmt(None, digits)
    if entry.get("low") is None:
        return fmt(entry.get("mean"), digits)
    return f"{fmt(entry['mean'], digits)} ({fmt(entry['low'], digits)} to {fmt(entry['high'], digits)})"


def _better_or_worse(entry: Mapping[str, Any] | None, better_when_negative: bool) -> str:
    low, high = (None, None) if entry is None else (entry.get("low"), entry.get("high"))
    if low is None or high is None:
        return "not measurable"
    if (high < 0) if better_when_negative else (low > 0):
        return "better"
    if (low > 0) if better_when_negative else (high < 0):
        return "worse"
    return "not distinguishable"


def truth_name(kind: str) -> str:
    """A truth in words: ``restart`` is the linear truth, ``continue_cosine`` the cosine one."""
    if kind == "restart":
        return "linear"
    return kind.removeprefix("continue_") if kind.startswith("continue_") else kind


def verdict_sentences(results: SimulationResults, methods: list[str] | None = None) -> list[str]:
    """One sentence per method (of ``methods``, default all) and cap against the baseline,
    in words, then what the intervals are. The one place the reports and the demo say
    what is significant."""
    baseline = results["settings"]["baseline"]
    maximize = results["table"].get("direction", "maximize") == "maximize"
    lines, comparisons = [], 0
    for cap in results["searches"]["caps"].values():
        for method, e in cap["methods"].items():
            if methods is not None and method not in methods:
                continue
            d, p = e.get("regret_minus_baseline"), e.get("deployable_minus_baseline")
            if d is None or d["low"] is None:
                continue
            comparisons += 1
            selection = {
                "better": "picks better configurations than",
                "worse": "picks worse configurations than",
                "not distinguishable": "cannot be told apart, in the configurations it picks, from",
            }
            deploy = {
                "better": "the model a user gets scores better",
                "worse": "the model a user gets scores worse",
                "not distinguishable": "the model a user gets is not distinguishable",
                "not measurable": "the model a user gets is not measurable",
            }
            truths = e.get("by_truth")  # results before 0.2.0: the linear truth alone
            by_truth = (
                {truth: t["regret_minus_baseline"] for truth, t in truths.items() if t.get("regret_minus_baseline")}
                if truths
                else {"restart": d}
            )
            words = {truth: _better_or_worse(x, True) for truth, x in by_truth.items()}
            figures = "; ".join(f"{truth_name(t)} truth {format_interval(x, sign=True)}" for t, x in by_truth.items())
            if len(set(words.values())) == 1:
                said = f"{selection.get(next(iter(words.values())), 'is not measurable against')} `{baseline}`"
            else:
                said = (
                    f"against `{baseline}` **depends on the final schedule** ("
                    + ", ".join(f"{words[t]} under the {truth_name(t)} truth" for t in words)
                    + ")"
                )
            lines.append(
                f"- `{method}` {said} at {cap['full_budgets']:g} full budgets (selection regret: {figures}); "
                f"{deploy[_better_or_worse(p, not maximize)]} (deployable score {format_interval(p, sign=True)})."
            )
    if lines:
        lines.append(
            f"- Intervals: 95% Student-t over {results['settings']['repeats']} paired search repeats on this table (its "
            f"pool and its seeds); {comparisons} comparisons, not corrected for multiplicity."
        )
    return lines


def render(results: SimulationResults) -> str:
    """``report.md``: the header, then per cap its tables, the verdict, the pool bootstrap,
    rank fidelity and the thresholds given (one function per section below)."""
    lines = _header(results)
    rungs = results["settings"].get("rungs") or results["table"]["rungs"]
    for cap in results["searches"]["caps"].values():
        lines += [*_cap_table(cap), *_truths_table(cap), *_landing_table(cap), *_frontier_table(cap, rungs), ""]
    lines += ["## Reading, against the baseline", "", *verdict_sentences(results), ""]
    lines += _bootstrap_section(results["searches"].get("pool_bootstrap"))
    lines += _fidelity_section(results.get("fidelity"))
    lines += _thresholds_section(results.get("thresholds"))
    return "\n".join(lines)


def _header(results: SimulationResults) -> list[str]:
    t = results["table"]
    s = results["settings"]
    return [
        f"# Simulated searches on `{t['study']}`, ladder {t['ladder_name']} ({'/'.join(map(str, t['rungs']))})",
        "",
        "```",
        results["command"],
        "```",
        "",
        f"Table `{t['directory']}` (made by "
        + " then ".join(f"`{c}`" for c in (t.get("commands") or [t["command"]]))
        + (f"; data: {data['source']}" if (data := t.get("data")) and data.get("source") else "")
        + f"): {t['configs_complete']} complete configurations"
        + (f" of {t['configs']} drawn (**partial table**)" if t["partial"] else "")
        + (f" (pool positions {pool[0]} to {pool[1] - 1} only)" if (pool := s.get("pool")) else "")
        + f", seeds {', '.join(map(str, t['seeds']))}, unit kinds {', '.join(t['kinds'])}, branch cooldown {t['cooldown']:g}."
        + (
            f" Every method searches on the sub-ladder {'/'.join(map(str, s['rungs']))} (reduction factor "
            f"{s['rungs'][1] // s['rungs'][0]})."
            if s.get("rungs") and s["rungs"] != t["rungs"]
            else ""
        ),
        "",
        f"Each search is a real Optuna study (sampler and pruner of its method) whose training is a lookup in the table; "
        f"{s['repeats']} paired repeats per method (repeat k: sampler seed k, the same training seeds); no search spends more "
        "than its cap (a rung that does not fit is not started). **Selection regret**: the pool's best truth minus the "
        "truth of the pick, truth = full-budget linear-decay test score averaged over the seeds (one final schedule for "
        "every method). **Deployable**: test score of the pick trained in the method's own final schedule (mean over "
        f"seeds). Baseline for paired differences: `{s['baseline']}`. Intervals: 95% Student-t over repeats.",
        "",
    ]


def _cap_table(cap: CapResult) -> list[str]:
    lines: list[str] = []
    lines += [
        f"## Searches of {cap['full_budgets']:g} full budgets ({cap['iterations']:,} iterations)",
        "",
        "| method | selection regret | minus baseline (paired) | repeats lower / higher | deployable test score "
        "| minus baseline (paired) | average rank | compute mean / max | trials (full budget) "
        "| compute to reach baseline's final regret |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, e in cap["methods"].items():
        to_reach = e.get("compute_to_reach_baseline")
        reach = None if to_reach is None else to_reach["mean"]
        reach_text = "never" if reach is None else f"{reach['full_budgets']:g} FB ({reach['fraction_of_cap']:.2f}x)"
        paired = "regret_minus_baseline" in e
        regret_diff = format_interval(e["regret_minus_baseline"], sign=True) if paired else ""
        counts = f"{e['regret_lower_than_baseline_in']} / {e['regret_higher_than_baseline_in']}" if paired else ""
        deploy_diff = format_interval(e["deployable_minus_baseline"], sign=True) if paired else ""
        lines.append(
            f"| `{method}` | {format_interval(e['regret_summary'])} | {regret_diff} | {counts} | "
            f"{format_interval(e['deployable_summary'])} | {deploy_diff} | "
            f"{format_number(e.get('average_rank'), 2)} | "
            f"{e['compute_summary']['mean']:,.0f} / {e['compute_summary']['max']:,} | "
            f"{e['trials_summary']['mean']:.1f} ({e['trials_summary']['full_budget']:.1f}) | {reach_text} |"
        )
    return lines


def _truths_table(cap: CapResult) -> list[str]:
    """Selection regret under every truth the table holds (nothing when it holds one)."""
    lines: list[str] = []
    truths = list(next(iter(cap["methods"].values())).get("by_truth", {}))
    if len(truths) > 1:
        lines += [
            "",
            "Selection regret under each truth (the full-budget test score of each final schedule the table holds; "
            "a conclusion stands only where they agree). Paired difference against the baseline, and the repeats "
            "lower / higher with the exact sign test's p:",
            "",
            "| method | truth | selection regret | minus baseline (paired) | repeats lower / higher (sign test p) |",
            "|---|---|---:|---:|---:|",
        ]
        for method, e in cap["methods"].items():
            for t in truths:
                x = e["by_truth"][t]
                sign = x.get("sign_test")
                diff = format_interval(x["regret_minus_baseline"], sign=True) if "regret_minus_baseline" in x else ""
                counts = f"{sign['lower']} / {sign['higher']} ({format_number(sign['p'], 3)})" if sign else ""
                lines.append(
                    f"| `{method}` | {truth_name(t)} | {format_interval(x['regret_summary'])} | {diff} | {counts} |"
                )
    return lines


def _landing_table(cap: CapResult) -> list[str]:
    """Where the suggestions landed (results.json before 0.2.0 has no landing: nothing)."""
    lines: list[str] = []
    if all("landing" in e for e in cap["methods"].values()):  # results.json before 0.2.0 has none
        lines += [
            "",
            "Where the suggestions landed (each lands on the nearest configuration not yet trained at its seed; "
            "moved: landed elsewhere than the nearest; distance in units of the pool's nearest-neighbour spacing; "
            "exhausted: searches that trained every configuration at every seed, at the median compute given):",
            "",
            "| method | suggestions | moved | median distance | exhausted in (at FB) |",
            "|---|---:|---:|---:|---:|",
        ]
        for method, e in cap["methods"].items():
            x = e["landing"]
            at = "" if x["exhausted_at_full_budgets"] is None else f" ({x['exhausted_at_full_budgets']:g})"
            lines.append(
                f"| `{method}` | {x['suggestions']:,} | {format_number(x['moved_fraction'], 3)} | "
                f"{format_number(x['median_distance_ratio'], 2)} | {x['exhausted_in']}{at} |"
            )
    return lines


def _frontier_table(cap: CapResult, rungs: list[int]) -> list[str]:
    lines: list[str] = []
    lines += [
        "",
        "Regret per budget (the frontier: for each budget, the best configuration the search saw reported at that budget, "
        "scored against the best the pool can do for that budget: restart's validation score there, the pick's on the seeds "
        "its search did not see; "
        "in brackets the repeats that reached the budget):",
        "",
        "| method | " + " | ".join(str(b) for b in rungs) + " |",
        "|---|" + "---:|" * len(rungs),
    ]
    for method, e in cap["methods"].items():
        cells = []
        for b in rungs:
            f = e["frontier_regret"][str(b)]
            cells.append("—" if not f["reached"] else f"{format_interval(f)} [{f['reached']}]")
        lines.append(f"| `{method}` | " + " | ".join(cells) + " |")
    return lines


def _bootstrap_section(boot: PoolBootstrap | None) -> list[str]:
    lines: list[str] = []
    if boot:
        lines += [
            f"## How much the answer owes to the pool drawn ({boot['pools']} subsampled pools x {boot['repeats']} repeats, "
            f"searches of {boot['cap']:,} iterations)",
            "",
            "Each pool is the distinct configurations of a bootstrap draw from the table's (an m-out-of-n subsample, "
            "about 63% of them): a smaller, easier pool than the table's, so read the spread, not the level; it also "
            "holds the search noise of its few repeats.",
            "",
            "| method | mean regret, 95% over pools | minus baseline, 95% over pools |",
            "|---|---:|---:|",
        ]
        for method, e in boot["methods"].items():
            diff = (
                ""
                if "regret_minus_baseline_low" not in e
                else f"{_signed(e['regret_minus_baseline_mean'])} "
                f"({_signed(e['regret_minus_baseline_low'])} to {_signed(e['regret_minus_baseline_high'])})"
            )
            lines.append(
                f"| `{method}` | {format_number(e['mean_regret_low'])} to {format_number(e['mean_regret_high'])} | {diff} |"
            )
        lines.append("")
    return lines


def _fidelity_section(fid: Fidelity | None) -> list[str]:
    lines: list[str] = []
    if fid:
        lines += [
            "## Rank fidelity",
            "",
            "Spearman's rho between each kind's validation value at a rung and the truth, across seeds (the rung run of "
            "one seed against the truth of the others), with 95% bootstrap intervals over configurations and seeds.",
            "",
        ]
        for subset, label in (("all", "all configurations"), ("train", "configurations that train")):
            entry: FidelitySubset = fid["subsets"].get(subset, {"configs": 0})
            if "rho" not in entry:
                lines += [f"Too few {label} ({entry.get('configs', 0)}) for a correlation.", ""]
                continue
            lines += [
                f"### Over {label} ({entry['configs']})",
                "",
                "| kind | " + " | ".join(str(r) for r in fid["rungs"]) + " |",
                "|---|" + "---:|" * len(fid["rungs"]),
            ]
            for kind, per_rung in entry["rho"].items():
                lines.append(
                    f"| `{kind}` | "
                    + " | ".join(
                        f"{format_number(p['rho'], 3)} ({format_number(p['low'], 2)} to {format_number(p['high'], 2)})"
                        for p in per_rung
                    )
                    + " |"
                )
            lines += [
                "",
                "| difference | " + " | ".join(str(r) for r in fid["rungs"]) + " |",
                "|---|" + "---:|" * len(fid["rungs"]),
            ]
            for pair, differences in entry.get("differences", {}).items():
                lines.append(
                    f"| {pair} | "
                    + " | ".join(
                        f"{_signed(d['difference'], 3)} ({_signed(d['low'], 2)} to {_signed(d['high'], 2)})"
                        for d in differences
                    )
                    + " |"
                )
            lines.append("")
        eos = fid.get("edge_of_stability", [])
        lines += [
            f"Edge of stability (truth seeds disagree about training at all): {len(eos)} configuration(s)"
            + (f": {', '.join(map(str, eos[:20]))}{' ...' if len(eos) > 20 else ''}." if eos else "."),
            "",
        ]
    return lines


def _thresholds_section(thresholds: list[Threshold] | None) -> list[str]:
    lines: list[str] = []
    if thresholds:
        lines += ["## Thresholds given on the command line", "", "| threshold | method | measured | met |", "|---|---|---:|---|"]
        for row in thresholds:
            lines.append(f"| {row['threshold']} | `{row['method']}` | {row['measured']} | {'yes' if row['met'] else 'no'} |")
        lines.append("")
    return lines


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_anytime(results: SimulationResults, path: Path) -> None:
    plt = _pyplot()
    caps = results["searches"]["caps"]
    cap = caps[max(caps, key=int)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for method, e in cap["methods"].items():
        x = e["curve"]["compute_full_budgets"]
        for ax, points in zip(axes, (e["curve"]["regret"], e["curve"]["deployable"])):
            mean = [p["mean"] for p in points]
            low = [p["low"] if p["low"] is not None else p["mean"] for p in points]
            high = [p["high"] if p["high"] is not None else p["mean"] for p in points]
            xs = [a for a, m in zip(x, mean) if m is not None]
            line = ax.plot(xs, [m for m in mean if m is not None], label=method)[0]
            ax.fill_between(
                xs,
                [lo for lo, m in zip(low, mean) if m is not None],
                [hi for hi, m in zip(high, mean) if m is not None],
                color=line.get_color(),
                alpha=0.15,
            )
    axes[0].set(xlabel="compute (full budgets)", ylabel="selection regret (lower is better)", title="selection regret vs compute")
    axes[1].set(xlabel="compute (full budgets)", ylabel="deployable test score", title="deployable score vs compute")
    axes[0].set_yscale("symlog", linthresh=1e-3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def plot_fidelity(results: SimulationResults, path: Path) -> None:
    plt = _pyplot()
    fid = results.get("fidelity")
    if fid is None:
        return
    subsets = [s for s in ("all", "train") if "rho" in fid["subsets"].get(s, {"configs": 0})]
    fig, axes = plt.subplots(1, max(1, len(subsets)), figsize=(6 * max(1, len(subsets)), 4.5), squeeze=False)
    for ax, subset in zip(axes[0], subsets):
        entry = fid["subsets"][subset]
        for kind, per_rung in entry["rho"].items():
            rho = [math.nan if p["rho"] is None else p["rho"] for p in per_rung]
            # the point estimate averages the seeds, a resample draws one: it may sit outside its interval
            err = [
                [max(0.0, r - (p["low"] if p["low"] is not None else r)) for r, p in zip(rho, per_rung)],
                [max(0.0, (p["high"] if p["high"] is not None else r) - r) for r, p in zip(rho, per_rung)],
            ]
            ax.errorbar(fid["rungs"], rho, yerr=err, marker="o", capsize=3, label=kind)
        ax.set_xscale("log")
        ax.set(
            xlabel="rung budget (iterations)",
            ylabel="Spearman rho with truth (across seeds)",
            title=f"rank fidelity, {'all configurations' if subset == 'all' else 'those that train'} ({entry['configs']})",
        )
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def plot_regret(results: SimulationResults, path: Path) -> None:
    plt = _pyplot()
    caps = results["searches"]["caps"]
    cap = caps[max(caps, key=int)]
    names = list(cap["methods"])
    data = [[x for x in cap["methods"][m]["regret"] if x is not None] for m in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 4.5))
    ax.boxplot(data, showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
    ax.set(ylabel="selection regret", title=f"selection regret per repeat, {cap['full_budgets']:g} full budgets")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write_outputs(results: SimulationResults, out: Path) -> None:
    """results.json (:func:`~budgetopt.bench.records.write_results`), report.md and the
    plots, each written atomically."""
    from budgetopt.bench.table import write_atomic as atomic

    atomic(out / FILES["anytime"], lambda p: plot_anytime(results, p))
    if results.get("fidelity"):
        atomic(out / FILES["fidelity"], lambda p: plot_fidelity(results, p))
    atomic(out / FILES["regret"], lambda p: plot_regret(results, p))
    write_results(results, out / FILES["results"])
    atomic(out / FILES["report"], lambda p: p.write_text(render(results) + "\n"))
