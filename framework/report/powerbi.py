"""A Power BI data source file (`.pbids`) for the Snowflake warehouse holding the marts.

Format: "Use PBIDS files to get data" in the Power BI Desktop documentation. A .pbids file
holds one connection and no credentials, schema or table: Power BI asks for the sign-in, then
its Navigator lists the databases; the marts are in `<database>.MARTS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError
from framework.settings.targets import Target

SNOWFLAKE_DOMAIN = ".snowflakecomputing.com"


def pbids(target: Target) -> dict[str, Any]:
    """The connection of a Snowflake target, in DirectQuery mode (the marts stay in Snowflake)."""
    wh = target.warehouse
    if wh.type != "snowflake":
        raise FrameworkError(f"target '{target.name}' has a {wh.type} warehouse: a Power BI "
                             "connection file needs a Snowflake target (e.g. --target prod)")
    missing = [f"{name} (SNOWFLAKE_{name.upper()})" for name in ("account", "warehouse")
               if not getattr(wh, name)]
    if missing:
        raise FrameworkError(f"target '{target.name}': a Power BI connection file needs the "
                             f"Snowflake {' and '.join(missing)}")
    account = str(wh.account)
    server = account if account.endswith(SNOWFLAKE_DOMAIN) else account + SNOWFLAKE_DOMAIN
    return {
        "version": "0.1",
        "connections": [{
            "details": {"protocol": "snowflake",
                        "address": {"server": server, "warehouse": wh.warehouse}},
            "options": {},
            "mode": "DirectQuery",
        }],
    }


def write_pbids(target: Target, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "marts.pbids"
    path.write_text(json.dumps(pbids(target), indent=2) + "\n", encoding="utf-8")
    return path
