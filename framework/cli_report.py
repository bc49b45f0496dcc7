"""`framework report`: the dashboard of the marts as one HTML file, and a Power BI connection.

`framework.cli` registers this command at its end. Nothing here imports `framework.cli` at
import time (its error handler is applied per call), so the two modules load in either order,
`python -m framework.cli` included; the `--target` option repeats `framework.cli`'s for that.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click


@click.command("report")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for index.html (default: <state dir>/report).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the dashboard in the default browser.")
@click.option("--powerbi", is_flag=True,
              help="Also write marts.pbids: a Power BI connection to the Snowflake marts "
                   "(this target if it is Snowflake, else the prod target).")
@click.option("--target", "-t", default=None, envvar="FRAMEWORK_TARGET",
              help="Target from framework.yml (default: local, or FRAMEWORK_TARGET).")
def report_command(output: Path | None, open_browser: bool, powerbi: bool,
                   target: str | None) -> None:
    """Render a static HTML dashboard of the marts (KPIs, charts; no network needed)."""
    from framework.cli import handle_errors

    handle_errors(_report)(output, open_browser, powerbi, target)


def _report(output: Path | None, open_browser: bool, powerbi: bool, target: str | None) -> None:
    from framework.cli import out
    from framework.project import Project
    from framework.report import default_output, render_report
    from framework.report.powerbi import pbids, write_pbids

    project = Project.discover()
    snowflake = None
    if powerbi:  # check the Snowflake settings before reading any warehouse
        chosen = project.target(target)
        snowflake = chosen if chosen.warehouse.type == "snowflake" else project.target("prod")
        pbids(snowflake)
    path = render_report(project, target, output or default_output(project))
    if snowflake is not None:
        pbids_path = write_pbids(snowflake, path.parent)
        out.print(f"Power BI connection: {pbids_path} (Snowflake database "
                  f"{snowflake.warehouse.database}, schema MARTS)", soft_wrap=True)
    if open_browser:
        webbrowser.open(path.as_uri())
    out.print(str(path), soft_wrap=True)  # a path for scripts: never wrapped
