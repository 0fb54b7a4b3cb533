"""The ``swarmsim`` command as a user runs it."""

from __future__ import annotations

import json

import yaml
from typer.testing import CliRunner

import swarmsim
from swarmsim.cli import app
from tests.conftest import TINY

runner = CliRunner()


def write(tmp_path, data=TINY):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_run_writes_tables_manifest_and_figure(tmp_path):
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "run",
            str(write(tmp_path)),
            "--out",
            str(out),
            "--seed",
            "3",
            "--set",
            "choker.unchoke_slots=3",
        ],
    )
    assert res.exit_code == 0, res.output
    for name in ("peers", "timeseries", "pieces", "transfers"):
        assert (out / f"{name}.parquet").is_file()
    assert (out / "overview.png").stat().st_size > 10_000 and (out / "overview.pdf").is_file()
    m = json.loads((out / "manifest.json").read_text())
    assert m["seed"] == 3 and m["scenario"]["choker"]["unchoke_slots"] == 3
    assert "peers done" in res.output and "events per second" in res.output
    r = swarmsim.Result.read(out)
    assert r.summary["completed"] == 16


def test_validate_prints_resolved_scenario_or_errors(tmp_path):
    res = runner.invoke(app, ["validate", str(write(tmp_path))])
    assert res.exit_code == 0
    resolved = yaml.safe_load(res.output.split("# ok")[0])
    assert resolved["tracker"]["max_connections"] == 80
    bad = dict(TINY, torrent={"file_bytes": "lots"})
    res = runner.invoke(app, ["validate", str(write(tmp_path, bad))])
    assert res.exit_code == 2
    assert "torrent.file_bytes" in res.output and "lots" in res.output


def test_schema_and_policies_list_every_plugin():
    res = runner.invoke(app, ["schema"])
    assert res.exit_code == 0 and json.loads(res.output)["title"] == "Scenario"
    res = runner.invoke(app, ["policies"], terminal_width=200)
    assert res.exit_code == 0
    for registry in swarmsim.policies.REGISTRIES.values():
        for name in registry.names():
            assert name in res.output
    assert "unchoke_slots = 4" in res.output


def test_missing_file_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["run", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "does not exist" in res.output
