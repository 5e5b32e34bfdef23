"""Evaluation report: metrics.json, report.md and the two figures of seed 002.

``write_report`` writes four files into a folder:

- ``metrics.json``: the title, the primary method, the notes and every method's
  ``PoseMetrics.to_dict()``. ``load_results`` reads it back.
- ``report.md``: a summary table (frames, mean and median error, percentage of frames within
  10/20/30/40/50/80 mm), a per-joint table with keypoint names, the figures and the notes.
- ``per_joint_error.png``: grouped bars of each keypoint's mean error, one colour per method,
  with the overall mean as the last group (seed 002, Figs. 3-5 left).
- ``frames_within_threshold.png``: percentage of frames whose worst joint error is within a
  threshold, 0-80 mm, one line per method (seed 002, Figs. 3-5 right).

The primary method, usually the model under test with the others as baselines, comes first
and is drawn in bold.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hand_pose_ros.evaluation.metrics import PoseMetrics
from hand_pose_ros.skeleton import KEYPOINT_NAMES, WRIST, keypoint_colour

if TYPE_CHECKING:
    from matplotlib.figure import Figure

REPORT_THRESHOLDS_MM: tuple[float, ...] = (10.0, 20.0, 30.0, 40.0, 50.0, 80.0)
FILES: dict[str, str] = {
    "metrics": "metrics.json",
    "report": "report.md",
    "per_joint": "per_joint_error.png",
    "frames_within": "frames_within_threshold.png",
}
_DPI = 120


def _joint_name(index: int, num_keypoints: int) -> str:
    # Only a 21-keypoint result follows the skeleton's order; any other K gets plain numbers.
    return KEYPOINT_NAMES[index] if num_keypoints == len(KEYPOINT_NAMES) else f"joint {index}"


def _evaluated_joints(results: Mapping[str, PoseMetrics]) -> list[int]:
    return sorted({j for metrics in results.values() for j in metrics.joints})


def _mm(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else ("inf" if value == np.inf else "–")


def _percent(fraction: float) -> str:
    return f"{100.0 * fraction:.1f}" if np.isfinite(fraction) else "–"


def _cell(name: str, primary: str) -> str:
    text = name.replace("|", "\\|")
    return f"**{text}**" if name == primary else text


def _automatic_notes(results: Mapping[str, PoseMetrics]) -> list[str]:
    notes = []
    for name, metrics in results.items():
        if metrics.frames_without_joints:
            notes.append(
                f"{name}: {metrics.frames_without_joints} frames had no labelled evaluated "
                "joint and were left out."
            )
        if metrics.missing_predictions:
            notes.append(
                f"{name}: {metrics.missing_predictions} labelled joints had no finite "
                "prediction; each counts as an infinite error (its frame fails every threshold)."
            )
    return notes


def _markdown(
    results: Mapping[str, PoseMetrics], title: str, primary: str, notes: Sequence[str]
) -> str:
    thresholds = "".join(f" ≤ {t:g} mm (%) |" for t in REPORT_THRESHOLDS_MM)
    lines = [
        f"# {title}",
        "",
        f"Primary method: **{primary}**. Errors are 3D Euclidean distances between predicted "
        'and true joint positions, in mm. Each "≤ t mm" column is the percentage of frames '
        "whose worst evaluated joint error is at most t mm.",
        "",
        f"| method | frames | mean (mm) | median (mm) |{thresholds}",
        "|---|" + "--:|" * (3 + len(REPORT_THRESHOLDS_MM)),
    ]
    for name, m in results.items():
        within = "".join(f" {_percent(m.fraction_within(t))} |" for t in REPORT_THRESHOLDS_MM)
        lines.append(
            f"| {_cell(name, primary)} | {m.frames} | {_mm(m.mean_mm)} | {_mm(m.median_mm)} |"
            + within
        )

    num_keypoints = len(results[primary].per_joint_mm)
    lines += ["", "## Per-joint mean error (mm)", ""]
    lines.append("| joint |" + "".join(f" {_cell(n, primary)} |" for n in results))
    lines.append("|---|" + "--:|" * len(results))
    for joint in _evaluated_joints(results):
        row = "".join(f" {_mm(m.per_joint_mm[joint])} |" for m in results.values())
        lines.append(f"| {_joint_name(joint, num_keypoints)} |{row}")
    lines.append("| **all joints** |" + "".join(f" {_mm(m.mean_mm)} |" for m in results.values()))

    lines += [
        "",
        f"![Per-joint mean error]({FILES['per_joint']})",
        "",
        f"![Frames within threshold]({FILES['frames_within']})",
    ]
    all_notes = [*notes, *_automatic_notes(results)]
    if all_notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in all_notes)]
    return "\n".join(lines) + "\n"


def _method_colours(count: int) -> list[tuple[float, float, float, float]]:
    import matplotlib

    palette = matplotlib.colormaps["tab10"]
    return [palette(i % palette.N) for i in range(count)]


def _wrapped_title(text: str, figure: Figure) -> str:
    """``text`` broken into lines that fit the figure's width: a long report title would
    otherwise run off both sides (about 9 characters of title per inch)."""
    return textwrap.fill(text, width=max(20, int(9 * figure.get_figwidth())))


def _new_figure(width_in: float, height_in: float) -> Figure:
    # The object API needs no pyplot and no backend switch: saving a PNG renders with Agg.
    # matplotlib.use("Agg") would change the backend of a caller's interactive session.
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def _plot_per_joint(
    results: Mapping[str, PoseMetrics], title: str, primary: str, path: Path
) -> None:
    joints = _evaluated_joints(results)
    num_keypoints = len(results[primary].per_joint_mm)
    labels = [_joint_name(j, num_keypoints) for j in joints] + ["mean"]
    groups = np.arange(len(labels))
    width = 0.8 / len(results)
    figure = _new_figure(max(8.0, 0.45 * len(labels) * max(1.0, len(results) / 2)), 4.8)
    axes = figure.subplots()
    for i, ((name, m), colour) in enumerate(
        zip(results.items(), _method_colours(len(results)), strict=True)
    ):
        heights = np.append(m.per_joint_mm[joints], m.mean_mm)
        # An infinite mean (missing predictions) cannot be drawn; report.md says so instead.
        heights = np.where(np.isfinite(heights), heights, np.nan)
        offset = (i - (len(results) - 1) / 2) * width
        axes.bar(
            groups + offset, heights, width, label=name, color=colour,
            edgecolor="black" if name == primary else "none", linewidth=0.6,
        )  # fmt: skip
    axes.axvline(len(joints) - 0.5, color="grey", linestyle="--", linewidth=0.8)
    axes.set_xticks(groups, labels, rotation=60, ha="right", rotation_mode="anchor")
    for index, tick in zip([*joints, None], axes.get_xticklabels(), strict=True):
        # Finger colours tie the labels to the skeleton drawings; the white wrist stays black.
        if index is not None and index != WRIST and num_keypoints == len(KEYPOINT_NAMES):
            tick.set_color(keypoint_colour(index))
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_xlabel("joint")
    axes.set_ylabel("mean 3D joint error (mm)")
    axes.set_title(_wrapped_title(f"{title}: per-joint mean error", figure))
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    # Beside the axes: inside, the legend would hide the tallest bars, which sit at the left.
    axes.legend(title="method", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.savefig(path, dpi=_DPI)


def _plot_frames_within(
    results: Mapping[str, PoseMetrics], title: str, primary: str, path: Path
) -> None:
    figure = _new_figure(6.4, 4.8)
    axes = figure.subplots()
    for (name, m), colour in zip(results.items(), _method_colours(len(results)), strict=True):
        axes.plot(
            m.thresholds_mm, 100.0 * m.frames_within, color=colour,
            linewidth=2.4 if name == primary else 1.5, zorder=3 if name == primary else 2,
            label=f"{name} (mean {_mm(m.mean_mm)} mm)",
        )  # fmt: skip
    low = min(float(m.thresholds_mm.min()) for m in results.values())
    high = max(float(m.thresholds_mm.max()) for m in results.values())
    axes.set_xlim(low, high)
    # A little room past 0 and 100 %, or curves lying on them would hide behind the frame.
    axes.set_ylim(-2.0, 102.0)
    axes.set_xlabel("maximum allowed distance to ground truth (mm)")
    axes.set_ylabel("frames with all joints within distance (%)")
    axes.set_title(_wrapped_title(f"{title}: frames within threshold", figure))
    axes.grid(alpha=0.3)
    axes.legend(title="method", loc="lower right")
    figure.savefig(path, dpi=_DPI)


def write_report(
    folder: str | Path,
    results: Mapping[str, PoseMetrics],
    *,
    title: str,
    notes: Sequence[str] = (),
    primary: str,
) -> dict[str, Path]:
    """Write metrics.json, report.md and the two figures into ``folder`` (created if needed).

    Args:
        folder: output folder; existing files of the same names are replaced.
        results: method name -> its metrics on one test set. All methods must have the same
            number of keypoints K.
        title: the report's heading and the figures' title, e.g. "SynthHands test, 2,000 frames".
        notes: lines appended to report.md, e.g. the checkpoint, the data, the command.
        primary: the method under test, a key of ``results``; it comes first and is drawn
            in bold.
    Returns:
        The paths written, keyed as ``FILES``: "metrics", "report", "per_joint",
        "frames_within".
    """
    if primary not in results:
        raise ValueError(f"primary {primary!r} is not one of the results {list(results)}")
    if len({len(m.per_joint_mm) for m in results.values()}) != 1:
        raise ValueError("all results must have the same number of keypoints")
    ordered = {primary: results[primary], **{k: v for k, v in results.items() if k != primary}}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in FILES.items()}

    document = {
        "title": title,
        "primary": primary,
        "notes": list(notes),
        "results": {name: m.to_dict() for name, m in ordered.items()},
    }
    paths["metrics"].write_text(json.dumps(document, indent=2, allow_nan=False) + "\n")
    paths["report"].write_text(_markdown(ordered, title, primary, notes), encoding="utf-8")
    _plot_per_joint(ordered, title, primary, paths["per_joint"])
    _plot_frames_within(ordered, title, primary, paths["frames_within"])
    return paths


def load_results(path: str | Path) -> dict[str, PoseMetrics]:
    """Read the results back from a metrics.json, or from the folder that holds one."""
    path = Path(path)
    if path.is_dir():
        path = path / FILES["metrics"]
    document = json.loads(path.read_text())
    return {name: PoseMetrics.from_dict(data) for name, data in document["results"].items()}
