"""What the plan checks of its Cilium releases beyond the gate, and their summary section.

- every release rendered by the vendored chart with real Helm, its objects written beside the
  manifests and checked (infra/chart_render.py);
- the version move of every release against a base plan (infra/upgrade.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.export_format import ExportError, StackExport, read_export

__all__ = ["ReleaseChecks", "release_checks", "upgrade_base"]


@dataclass
class ReleaseChecks:
    """What the rendered releases or the version moves block on, and their summary section."""

    problems: list[str]
    markdown: str
    objects: int = 0


def render_releases(export: StackExport, helm: Path, manifests: Path) -> ReleaseChecks:
    """Render every Cilium release (infra/chart_render.py), write its objects, check them."""
    from infra.chart_render import check_rendered, render_plan, write_rendered

    releases = render_plan(export, helm)
    written = write_rendered(releases, manifests)
    problems = [p for release in releases for p in check_rendered(release)]
    lines = ["## Rendered Cilium releases", ""]
    for release in releases:
        lines.append(
            f"- `{release.folder}`: chart {release.version}, {len(release.objects)} objects "
            f"rendered by Helm into `manifests/{release.folder}/`"
        )
    lines += [f"- ⛔ {problem}" for problem in problems]
    if releases and not problems:
        lines.append(
            "- every container image is a catalog digest, cilium-config has "
            'kube-proxy-replacement "true", no kube-proxy object'
        )
    return ReleaseChecks(problems, "\n".join(lines) + "\n\n", written)


def check_upgrades(base: StackExport | None, head: StackExport, config: Any) -> ReleaseChecks:
    """Version moves of the Cilium releases against a base plan (infra/upgrade.py)."""
    from infra.upgrade import upgrade_steps, upgrades_markdown

    if base is None:
        return ReleaseChecks([], "")
    reasons = {
        f"{c.name}-cilium-release": c.cilium_settings.downgrade_reason
        for c in config.clusters
        if c.cilium_settings.downgrade_reason
    }
    steps = upgrade_steps(base, head, reasons)
    return ReleaseChecks([p for s in steps for p in s.problems], upgrades_markdown(steps))


def upgrade_base(plan_dir: Path | None, *, required: bool) -> StackExport | None:
    """The export of the plan the version moves start from. ``required`` (an explicit
    --upgrade-from): a plan that cannot be read is an ExportError naming the folder. Otherwise
    (the base of --compare) it is None, and the comparison itself reports why."""
    if plan_dir is None:
        return None
    if required and not plan_dir.is_dir():
        raise ExportError(
            f"--upgrade-from {plan_dir}: not a plan folder; give the output folder of a plan "
            "(out/<stack>, which holds resources.json)"
        )
    try:
        return read_export(plan_dir / "resources.json", "--upgrade-from plan")
    except ExportError:
        if required:
            raise
        return None


def release_checks(
    export: StackExport, helm: Path, target: Path, base: StackExport | None, config: Any
) -> ReleaseChecks:
    """The releases rendered and checked, and their version moves against the base plan.
    Raises chart_render.RenderError when Helm cannot render a release at all."""
    rendered = render_releases(export, helm, target / "manifests")
    upgrades = check_upgrades(base, export, config)
    return ReleaseChecks(
        rendered.problems + upgrades.problems,
        rendered.markdown + upgrades.markdown,
        rendered.objects,
    )
