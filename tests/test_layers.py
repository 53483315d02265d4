"""The layer contract in pyproject.toml ([tool.importlinter]): each stage imports only the ones below
it (flows > agents > pipeline > evidence | storage > schemas), checked by import-linter over every
import statement, function-level ones included."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest
from importlinter import api  # configures import-linter as its command line does
from importlinter.application.use_cases import lint_imports
from importlinter.contracts.layers import LayersContract

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _settings() -> tuple[dict, dict]:
    cfg = api.read_configuration(str(PYPROJECT))
    (contract,) = [c for c in cfg["contracts_options"] if c["type"] == "layers"]
    return cfg["session_options"], contract


def test_the_code_keeps_the_layer_contract(capsys):
    kept = lint_imports(str(PYPROJECT), cache_dir=None, no_logo=True)  # what `lint-imports` runs
    out = capsys.readouterr().out
    assert kept, out
    assert "1 kept, 0 broken" in out


@pytest.mark.parametrize("importer, imported", [
    ("schemas.clip", "pipeline.models"),  # a record type reaching up into a stage
    ("storage.run_dir", "agents.base"),
    ("pipeline.export.evaluate", "agents.judge.stage"),  # the import this contract was written to stop
    ("evidence.grounding", "storage.parquet"),  # the two middle layers stay independent
])
def test_the_contract_catches_an_import_that_reaches_up(importer, imported):
    session, options = _settings()
    graph = grimp.build_graph(*session["root_packages"], cache_dir=None)
    graph.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    contract = LayersContract(name=options["name"], session_options=session,
                              contract_options={k: v for k, v in options.items() if k not in ("name", "type")})
    check = contract.check(graph, verbose=False)
    assert not check.kept
    found = [(r["importer"], r["imported"]) for d in check.metadata["invalid_dependencies"] for route in d["routes"]
             for r in route["chain"]]
    assert (importer, imported) in found
