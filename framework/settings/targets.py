"""Targets (`local`, `prod`, ...) from `framework.yml`: where the lake, warehouse and Spark are.

Named like dbt's targets; values come from the environment, never from pipeline files.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from framework.settings.envvars import register_secret


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)


class LakeTarget(_Settings):
    url: str = Field(description="Lake root: a local folder or `s3://bucket/prefix`.")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint override.")
    region: str | None = Field(default=None, description="S3 region.")
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _folder_or_s3(cls, url: str) -> str:
        # Anything else was taken for a folder name: `foo://x` made ./foo:/x, `memory://`
        # reported success with nothing landed.
        if "://" in url and not url.startswith("s3://"):
            raise ValueError(f"'{url}': the lake is a local folder or s3://bucket/prefix")
        return url

    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")


class WarehouseType(StrEnum):
    duckdb = "duckdb"
    snowflake = "snowflake"


class WarehouseTarget(_Settings):
    type: WarehouseType = WarehouseType.duckdb
    path: str | None = Field(default=None, description="DuckDB warehouse file.")
    account: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    private_key_path: str | None = None
    private_key_passphrase: SecretStr | None = None
    role: str | None = None
    warehouse: str | None = None
    database: str | None = None
    host: str | None = None
    port: int | None = None
    protocol: str | None = None
    stage_url: str | None = Field(
        default=None, description="External stage URL (`s3://...`); PUT to an internal stage when unset."
    )
    storage_integration: str | None = None


class SparkTarget(_Settings):
    master: str = "local[*]"
    conf: dict[str, str] = Field(default_factory=dict)


class Target(_Settings):
    name: str
    lake: LakeTarget
    warehouse: WarehouseTarget
    spark: SparkTarget = Field(default_factory=SparkTarget)
    dbt_target: str | None = Field(default=None, description="dbt target; defaults to the name.")

    @property
    def dbt_target_name(self) -> str:
        return self.dbt_target or self.name


def build_target(name: str, raw: dict[str, Any]) -> Target:
    target = Target.model_validate({"name": name, **_drop_empty(raw)})
    for secret in (target.lake.secret_access_key, target.warehouse.password,
                   target.warehouse.private_key_passphrase):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return target


def _drop_empty(value: Any) -> Any:
    """`${VAR:-}` left empty means "not set", so optional settings fall back to defaults."""
    if isinstance(value, dict):
        return {k: _drop_empty(v) for k, v in value.items() if v != ""}
    return value
