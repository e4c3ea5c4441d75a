"""The end-of-run summary of an in situ run: what was cached, how well, at what cost.

``summarize(output_dir, timings, triggers)`` reads the run's cache (through
``insitu info``'s figures) and the per-cycle timings the simulation recorded,
writes ``quality.png`` (PSNR and compression ratio over the cycles) and
``summary.json``, and returns the lines to print. The capacity factor is
:func:`insitu.cache.summary.capacity`'s (raw float32 bytes of every cached
block / every byte of the cache folder), printed as ``insitu info`` prints it.
"""
from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Sequence


def plot_quality(per_cycle: dict[str, dict[int, dict]], path: Path) -> Path:
    """PSNR (mean and min) and ratio per cycle for every field, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True)
    for field, cycles in per_cycle.items():
        xs = sorted(cycles)
        ax1.plot(xs, [cycles[c]["psnr"]["mean"] for c in xs], label=f"{field} mean")
        ax1.plot(xs, [cycles[c]["psnr"]["min"] for c in xs], "--", label=f"{field} min")
        ax2.plot(xs, [cycles[c]["ratio"] for c in xs], label=field)
    ax1.set_ylabel("PSNR (dB)")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.set_ylabel("compression ratio")
    ax2.ticklabel_format(axis="y", useOffset=False)
    ax2.set_xlabel("cycle")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.suptitle("in situ compression quality per cycle")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summarize(output_dir: str | Path, timings: Sequence[dict] = (), triggers: Sequence[dict] = (),
              cache: str = "run.cache", ranks: int | None = None) -> tuple[dict[str, Any], list[str]]:
    """Figures of a finished run in ``output_dir`` (dict, also saved as summary.json) and printable lines."""
    from insitu.cache import CacheReader
    from insitu.cache.summary import summary

    out = Path(output_dir)
    doc: dict[str, Any] = {"output": str(out)}
    lines = [f"== insitu-inr run summary ({out}) =="]
    cache_path = out / cache
    if cache_path.is_dir():
        with CacheReader(cache_path) as reader:
            info = summary(reader, per_cycle=True)
        disk = info["folder_bytes"]
        raw = info["total"]["raw_bytes"]
        psnr = info["total"]["psnr"]
        doc.update(cache=str(cache_path), raw_bytes=raw, cache_bytes=disk, model_bytes=info["total"]["stored_bytes"],
                   capacity=info["capacity"], psnr=psnr, fields={})
        for field, f in info["fields"].items():
            doc["fields"][field] = {"cycles": len(f["cycles"]), "domains": len(f["domains"]), "ratio": f["ratio"],
                                    "psnr": f["psnr"]}
            lines.append(f"field {field!r}: {len(f['cycles'])} cycles cached ({f['cycles'][0]}..{f['cycles'][-1]}), "
                         f"{len(f['domains'])} domains, model ratio {f['ratio']:.1f}:1, PSNR min "
                         f"{_db(f['psnr']['min'])} mean {_db(f['psnr']['mean'])} dB")
        lines.append(info["capacity_text"])  # the figure insitu info and the viewer print
        per_cycle = {field: {int(c): g for c, g in f["per_cycle"].items()} for field, f in info["fields"].items()}
        if per_cycle:
            try:
                doc["plot"] = str(plot_quality(per_cycle, out / "quality.png"))
            except OSError as exc:  # disk full: the summary still comes
                lines.append(f"could not write {out / 'quality.png'}: {exc.strerror or exc}")
    else:
        lines.append(f"no cache at {cache_path}")
    if timings:
        sim = [t["sim_s"] for t in timings]
        ins = [t["insitu_s"] for t in timings]
        fit = [t["fit_s"] for t in timings if t.get("fit_s") is not None]
        doc["timings"] = {"cycles": len(timings), "sim_s_per_cycle": statistics.mean(sim),
                          "insitu_s_per_cycle": statistics.mean(ins),
                          "fit_s_per_cycle": statistics.mean(fit) if fit else None,
                          "overhead": sum(ins) / sum(sim) if sum(sim) else None,
                          # a typical cycle's, beside the run's: scenes and trigger look-backs fall on a few cycles
                          "median_cycle_overhead": statistics.median(i / s for i, s in zip(ins, sim) if s > 0)
                          if any(s > 0 for s in sim) else None}
        tm = doc["timings"]
        lines.append(f"{len(timings)} published cycles on {ranks or '?'} ranks: simulation {tm['sim_s_per_cycle']:.3f} "
                     f"s/cycle, in situ {tm['insitu_s_per_cycle']:.3f} s/cycle"
                     + (f" (fitting {tm['fit_s_per_cycle']:.3f} s)" if fit else "")
                     + (f", overhead {tm['overhead']:.2f}x the simulation" if tm["overhead"] is not None else "")
                     + (f" (median cycle {tm['median_cycle_overhead']:.2f}x)"
                        if tm["median_cycle_overhead"] is not None else ""))
    problems = _errors_per_action(timings)
    doc["errors"] = problems
    if problems:
        total = sum(e["count"] for e in problems.values())
        cycles = len({c for e in problems.values() for c in e["cycles"]})
        lines.append(f"errors: {total} in {cycles} of {len(timings)} cycles")
        for head, e in problems.items():
            lines.append(f"  {head}: {e['count']}x in cycles {_cycle_list(e['cycles'])}; first: {e['first']}")
    doc["triggers"] = list(triggers)
    fired: dict[str, list[int]] = {}
    for t in triggers:
        fired.setdefault(t["trigger"], []).append(t["cycle"])
    lines.append("trigger firings: " + (", ".join(f"{k} x{len(v)} (cycles {v[:5]}{' ...' if len(v) > 5 else ''})"
                                                  for k, v in fired.items()) or "none"))
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png") if ".cdb" not in str(p)
                  and p.name != "quality.png")
    dbs = sorted(str(p.relative_to(out)) for p in out.rglob("*.cdb") if p.is_dir())
    doc["images"], doc["cinema"] = pngs, dbs
    lines.append(f"images: {len(pngs)} PNG" + (f" (e.g. {pngs[-1]})" if pngs else "")
                 + (f"; Cinema: {', '.join(dbs)}" if dbs else ""))
    if "plot" in doc:
        lines.append(f"quality plot: {Path(doc['plot']).relative_to(out)}")
    try:
        (out / "summary.json").write_text(json.dumps(doc, indent=2, default=_json))
    except OSError as exc:  # disk full: the lines are printed all the same
        lines.append(f"could not write {out / 'summary.json'}: {exc.strerror or exc}")
    return doc, lines


def _errors_per_action(timings: Sequence[dict]) -> dict[str, dict]:
    """Errors per action (the ``kind 'name'`` an error line starts with): count, cycles, first line."""
    out: dict[str, dict] = {}
    for rec in timings:
        for line in rec.get("errors") or []:
            entry = out.setdefault(line.split(":", 1)[0], {"count": 0, "cycles": [], "first": line})
            entry["count"] += 1
            if rec["cycle"] not in entry["cycles"]:
                entry["cycles"].append(rec["cycle"])
    return out


def _cycle_list(cycles: list[int]) -> str:
    return ", ".join(map(str, cycles[:5])) + (f" ... {cycles[-1]}" if len(cycles) > 5 else "")


def _db(v: float | None) -> str:
    return "n/a" if v is None else ("inf" if math.isinf(v) else f"{v:.2f}")


def _json(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else str(v)
