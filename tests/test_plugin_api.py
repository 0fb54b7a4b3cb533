"""The plug-in API: a researcher's own plug-ins run with the declared defaults, broken ones
get a named error before or during the run, and plug-ins never reach into the engine."""

from __future__ import annotations

import ast
import textwrap
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

import swarmsim
from swarmsim.build import build_plugins
from swarmsim.cli import app
from swarmsim.errors import PluginError, ScenarioError
from swarmsim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]

HEAD = """
import numpy as np
from pydantic import BaseModel, ConfigDict


class P(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
"""


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Write a user's module (``HEAD`` + source) and return its import name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str, head: str = HEAD) -> str:
        name = f"user_{uuid.uuid4().hex[:8]}"
        (tmp_path / f"{name}.py").write_text(head + textwrap.dedent(source))
        return name

    return write


def test_a_plain_choker_written_from_the_docs_runs_without_interval_s(tiny, user_module):
    """The choker a researcher writes first: ``Params``, a constructor and ``rechoke``, no
    base class, no ``interval_s`` (it used to fail inside the engine)."""
    mod = user_module(
        """
        class LowestId:
            Params = P

            def __init__(self, params):
                self.params = params

            def rechoke(self, view, rng):
                ids = np.where(view.interested, view.nbr, 1 << 40)
                rank = ids.argsort(axis=1).argsort(axis=1)
                return view.interested & (rank < 3)
        """
    )
    tiny["choker"] = {"name": f"{mod}:LowestId"}
    r = swarmsim.simulate(tiny, check=True)
    assert r.manifest["status"] == "ok"
    assert r.peers.complete_s.notna().sum() == 16
    # the declared default: rechoke every 10 s
    assert build_plugins(load_scenario(tiny)).choker.interval_s == 10.0


def test_an_incentive_with_its_own_payment_reason_and_no_credit_parameter(tiny, user_module):
    mod = user_module(
        """
        class Tip:
            Params = P
            reasons = ("tip",)

            def __init__(self, params):
                self.params = params

            def setup(self, ctx):
                self.ledger = ctx.ledger

            def on_piece(self, t, uploader, downloader, nbytes, duration_s=0.0):
                self.ledger.transfer(t, downloader, uploader, nbytes / 2**20, "tip")
        """
    )
    tiny["incentive"] = {"name": f"{mod}:Tip"}
    for cls in tiny["peers"]:
        cls["tokens"] = {"mean": 100}
    r = swarmsim.simulate(tiny, check=True)
    assert r.manifest["status"] == "ok"
    tips = r.payments[r.payments.reason == "tip"]
    # 16 leechers each tip 1 token per MiB of a 4 MiB file (100 tokens each: none runs dry)
    assert tips.amount.sum() == pytest.approx(16 * 4.0, rel=1e-6)
    assert set(r.payments.reason) <= {"tip", "initial"}


def test_a_user_departure_rules_serves_is_honoured(tiny, user_module):
    """A rule loaded as ``module:Class`` that says its peers never serve: its leechers upload
    nothing (it used to be ignored: 48 MB uploaded where the rule said 0)."""
    mod = user_module(
        """
        class NeverServe:
            Params = P

            def __init__(self, params):
                self.params = params

            def serves(self, wealth):
                return False
        """
    )
    tiny["departure"] = {"name": f"{mod}:NeverServe"}
    r = swarmsim.simulate(tiny, check=True)
    leechers = r.peers[~r.peers.starts_as_seed]
    assert (leechers.uploaded_bytes == 0).all()
    assert r.peers[r.peers.starts_as_seed].uploaded_bytes.sum() > 0


BUILD_FAULTS = {
    "no rechoke": (
        """
        class C:
            Params = P
            def __init__(self, params):
                pass
        """,
        "choker.name",
        "has no rechoke()",
    ),
    "constructor raises": (
        """
        class C:
            Params = P
            def __init__(self, params):
                raise RuntimeError("no licence for this choker")
            def rechoke(self, view, rng):
                return view.interested
        """,
        "choker.name",
        "could not be built: RuntimeError: no licence for this choker",
    ),
    "interval of the wrong type": (
        """
        class C:
            Params = P
            interval_s = "often"
            def __init__(self, params):
                pass
            def rechoke(self, view, rng):
                return view.interested
        """,
        "choker.name",
        "interval_s must be int or float, got 'often'",
    ),
    "hook that is not a method": (
        """
        class C:
            Params = P
            has_free_slot = True
            def __init__(self, params):
                pass
            def rechoke(self, view, rng):
                return view.interested
        """,
        "choker.name",
        "has_free_slot must be a method",
    ),
}


@pytest.mark.parametrize("fault", sorted(BUILD_FAULTS))
def test_a_broken_plugin_is_a_named_scenario_error_before_the_run(fault, tiny, user_module):
    source, path, message = BUILD_FAULTS[fault]
    mod = user_module(source)
    tiny["choker"] = {"name": f"{mod}:C"}
    sc = load_scenario(tiny)
    with pytest.raises(ScenarioError) as info:
        build_plugins(sc)
    text = str(info.value)
    assert f"{path}: choker '{mod}:C' " in text and message in text
    with pytest.raises(ScenarioError, match="choker"):
        swarmsim.simulate(sc)


@pytest.mark.parametrize(
    "source, error",
    [
        ("class C(:\n    pass\n", "SyntaxError"),
        ("raise ImportError('needs torch')\n", "ImportError: needs torch"),
        ("import no_such_module_here\n", "ModuleNotFoundError"),
    ],
)
def test_a_module_that_cannot_be_imported_is_named(source, error, tiny, user_module):
    mod = user_module(source, head="")
    tiny["choker"] = {"name": f"{mod}:C"}
    with pytest.raises(ScenarioError) as info:
        load_scenario(tiny)
    assert "choker" in str(info.value) and error in str(info.value) and mod in str(info.value)


RUN_FAULTS = {
    "choker raises": (
        "choker",
        """
        class C:
            Params = P
            def __init__(self, params):
                pass
            def rechoke(self, view, rng):
                raise ValueError("rates must be positive")
        """,
        "raised ValueError: rates must be positive",
    ),
    "choker answers the wrong shape": (
        "choker",
        """
        class C:
            Params = P
            def __init__(self, params):
                pass
            def rechoke(self, view, rng):
                return view.interested[:, :2]
        """,
        "array for a batch of shape",
    ),
    "picker chooses a piece the uploader lacks": (
        "picker",
        """
        class C:
            Params = P
            def __init__(self, params):
                pass
            def pick(self, view, rng):
                # a valid piece first; once the downloader holds one, that one again
                held = np.flatnonzero(~view.wanted)
                return int(held[0]) if held.size else int(np.flatnonzero(view.wanted)[0])
        """,
        "chose piece",
    ),
    "incentive pays for an undeclared reason": (
        "incentive",
        """
        class C:
            Params = P
            def __init__(self, params):
                pass
            def setup(self, ctx):
                self.ledger = ctx.ledger
            def on_piece(self, t, uploader, downloader, nbytes, duration_s=0.0):
                self.ledger.transfer(t, downloader, uploader, 1.0, "gift")
        """,
        "payment reason 'gift' is not declared",
    ),
}


@pytest.mark.parametrize("fault", sorted(RUN_FAULTS))
def test_a_plugin_failing_during_the_run_is_named_with_the_time(fault, tiny, user_module, tmp_path):
    kind, source, message = RUN_FAULTS[fault]
    mod = user_module(source)
    tiny[kind] = {"name": f"{mod}:C"}
    for cls in tiny["peers"]:
        cls["tokens"] = {"mean": 10}  # so that a payment moves tokens and is logged
    with pytest.raises(PluginError) as info:
        swarmsim.simulate(tiny, out=tmp_path / "run")
    text = str(info.value)
    assert f"{kind} '{mod}:C'" in text and message in text
    assert "at simulated time" in text and info.value.t_s is not None
    manifest = swarmsim.Result.read(tmp_path / "run", allow_failed=True).manifest
    assert manifest["status"] == "failed" and message in manifest["error"]


def test_validate_names_a_plugin_that_cannot_be_built(tiny, user_module, tmp_path):
    """``swarmsim validate`` builds every plug-in: no '# ok' for one that cannot run."""
    import yaml

    mod = user_module(BUILD_FAULTS["constructor raises"][0])
    tiny["choker"] = {"name": f"{mod}:C"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny))
    out = CliRunner().invoke(app, ["validate", str(path)])
    assert out.exit_code == 2
    assert "could not be built" in out.output and "# ok" not in out.output
    assert "Traceback" not in out.output


def test_the_example_plugins_run_from_their_scenario(monkeypatch):
    """examples/my_plugins.py: a choker, a picker, an incentive with its own reason and a
    departure rule, every one loaded as ``module:Class`` (docs/plugins.md)."""
    monkeypatch.chdir(ROOT)
    r = swarmsim.simulate(ROOT / "examples" / "my-plugins.yaml", check=True)
    assert r.manifest["status"] == "ok"
    assert r.peers.complete_s.notna().sum() == 30
    tips = r.payments[r.payments.reason == "tip"]
    assert tips.amount.sum() > 0
    # its own table: one row per tip, what moved matching the ledger's payments
    assert len(r.tips) == r.pieces.shape[0] and list(r.tips.columns)[0] == "t_s"
    assert r.tips.paid.sum() == pytest.approx(tips.amount.sum())
    # the lowest-index picker fetches in order: a peer's first pieces are the file's first
    first = r.pieces.sort_values("t_s").groupby("peer_id").piece.first()
    assert (first <= 4).mean() > 0.9


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", ["api", "policies"])
def test_plugins_and_their_api_never_import_the_engine(package):
    for path in (ROOT / "swarmsim" / package).glob("*.py"):
        engine = {m for m in _imports(path) if m.startswith("swarmsim.engine")}
        assert not engine, (path.name, engine)
    for path in (ROOT / "swarmsim" / "api").glob("*.py"):
        outside = {
            m
            for m in _imports(path)
            if m.startswith("swarmsim") and not m.startswith("swarmsim.api")
        }
        assert not outside, (path.name, outside)


@pytest.mark.parametrize(
    ("kind", "value", "ok"),
    [
        ("incentive", None, True),  # declared float | None: no periodic call
        ("incentive", 30, True),
        ("choker", None, False),  # declared float: a choker always has a period
        ("choker", True, False),  # a bool is not a number of seconds
        ("choker", 2.5, True),
    ],
)
def test_value_hooks_take_the_types_their_family_declares(kind, value, ok):
    from swarmsim.api.plugins import FAMILIES, PluginProblem, bind

    class Mine(FAMILIES[kind]):
        def __init__(self):
            self.interval_s = value

        def rechoke(self, view, rng):
            return view.interested

    if ok:
        assert bind(kind, Mine()).interval_s == value
    else:
        with pytest.raises(PluginProblem, match="interval_s must be"):
            bind(kind, Mine())


def test_a_choker_answers_an_unchoke_or_a_bare_mask_that_names_no_optimistic_set():
    """The engine always gets an ``Unchoke``: a choker's own passes through, a bare mask (or
    weights) becomes one with no optimistic set, whatever attributes the choker has."""
    import numpy as np

    from swarmsim.api import Choker, ChokeView, Unchoke, bind

    mask = np.array([[True, False, True, False]])
    optimistic = np.array([[False, False, True, False]])

    class Bare(Choker):
        def __init__(self):
            self.interval_s = 10.0
            self.optimistic = optimistic  # not part of the API: never read

        def rechoke(self, view, rng):
            return mask.tolist()

    class Named(Bare):
        def rechoke(self, view, rng):
            return Unchoke(mask, optimistic)

    view, rng = ChokeView.build(4), np.random.default_rng(0)
    bare = bind("choker", Bare()).rechoke(view, rng)
    assert isinstance(bare, Unchoke) and bare.optimistic is None
    assert isinstance(bare.mask, np.ndarray) and np.array_equal(bare.mask, mask)
    named = bind("choker", Named()).rechoke(view, rng)
    assert np.array_equal(named.mask, mask) and named.optimistic is optimistic
