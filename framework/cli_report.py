"""`framework report`: the dashboard of the marts as one HTML file, and a Power BI connection.

Registered by `framework.cli` (`main.add_command(report_command)` at its end), whose error
handler and `--target` option it shares: import `framework.cli`, not this module, first.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path

import click

from framework.cli import handle_errors, out, target_option


@click.command("report")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for index.html (default: <state dir>/report).")
@click.option("--open", "open_browser", is_flag=True,
              help="Open the dashboard in the default browser.")
@click.option("--powerbi", is_flag=True,
              help="Also write marts.pbids: a Power BI connection to the Snowflake marts "
                   "(this target if it is Snowflake, else the prod target).")
@target_option
@handle_errors
def report_command(output: Path | None, open_browser: bool, powerbi: bool,
                   target: str | None) -> None:
    """Render a static HTML dashboard of the marts (KPIs, charts; no network needed)."""
    from framework.project import Project
    from framework.report import default_output, render_report
    from framework.report.powerbi import pbids, write_pbids

    project = Project.discover()
    folder = output or default_output(project)
    if powerbi:  # check the Snowflake settings before reading any warehouse
        chosen = project.target(target)
        snowflake = chosen if chosen.warehouse.type == "snowflake" else project.target("prod")
        pbids(snowflake)
    path = render_report(project, target, folder)
    if powerbi:
        pbids_path = write_pbids(snowflake, path.parent)
        wh = snowflake.warehouse
        out.print(f"Power BI connection: {pbids_path} (database {wh.database}, schema MARTS)")
    if open_browser:
        webbrowser.open(path.as_uri())
    out.print(str(path))
