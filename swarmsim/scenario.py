"""The scenario: one YAML file that fully describes an experiment, validated into a frozen model.

Units are in the field names (``_s``, ``_bytes``, ``_bps``). Every ``{name: ..., ...}`` block
is a registry lookup plus that plug-in's own pydantic parameters. Any fault becomes a
``ScenarioError`` listing each bad field by path (``peers[1].upload_bps``), the value given and
what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmsim.errors import ScenarioError
from swarmsim.policies import ARRIVALS, BANDWIDTH, CHOKERS, DEPARTURES, INCENTIVES, PICKERS
from swarmsim.policyspec import PolicySpec, policy_field, policy_problems

BLOCK_BYTES = 16384  # BEP 3: requests are 16 KiB blocks

ChokerSpec = policy_field(CHOKERS, "mainline")
PickerSpec = policy_field(PICKERS, "rarest_first")
ArrivalSpec = policy_field(ARRIVALS, "flash_crowd")
DepartureSpec = policy_field(DEPARTURES, "leave")
BandwidthSpec = policy_field(BANDWIDTH, "slot_share")
IncentiveSpec = policy_field(INCENTIVES, "none")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Torrent(_Model):
    """The file shared: its size, its piece size and the size of one request (block)."""

    file_bytes: int = Field(..., gt=0, description="payload size")
    piece_bytes: int = Field(262144, gt=0, description="piece size (default 256 KiB)")
    block_bytes: int = Field(BLOCK_BYTES, gt=0, description="request size (BEP 3: 16 KiB)")

    @property
    def n_pieces(self) -> int:
        """Pieces in the file (the last may be short)."""
        return math.ceil(self.file_bytes / self.piece_bytes)


class Amount(_Model):
    """A per-peer quantity drawn once per peer: ``fixed`` gives everyone ``mean``."""

    mean: float = Field(0.0, ge=0)
    distribution: Literal["fixed", "exponential", "lognormal", "uniform"] = "fixed"
    sigma: float = Field(1.0, gt=0, description="lognormal: standard deviation of the log")

    def sample(self, rng, n: int):
        """``n`` draws from this distribution."""
        import numpy as np

        if self.distribution == "fixed" or self.mean == 0:
            return np.full(n, self.mean)
        if self.distribution == "exponential":
            return rng.exponential(self.mean, n)
        if self.distribution == "uniform":
            return rng.uniform(0.0, 2.0 * self.mean, n)
        return rng.lognormal(math.log(self.mean) - self.sigma**2 / 2, self.sigma, n)


class PeerClass(_Model):
    """A group of peers alike in capacity, arrival, departure, tokens and client."""

    name: str = Field(
        ...,
        alias="class",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="class label used in the results",
    )
    count: int = Field(..., ge=1, le=1_000_000)
    upload_bps: float = Field(..., ge=0, description="upload capacity, bytes per second")
    download_bps: float = Field(..., gt=0, description="download capacity, bytes per second")
    starts_as: Literal["leecher", "seed"] = "leecher"
    free_rider: bool = Field(
        False, description="never uploads (its upload_bps is kept as a record)"
    )
    arrival: ArrivalSpec = Field(
        default_factory=lambda: PolicySpec.default(ARRIVALS, "flash_crowd")
    )
    departure: policy_field(DEPARTURES) | None = Field(
        None,
        description="overrides the scenario's departure; classes that start as seeds "
        "default to 'stay'",
    )
    choker: policy_field(CHOKERS) | None = Field(
        None, description="overrides the scenario's choker"
    )
    tokens: Amount = Field(default_factory=Amount, description="initial token balance")
    seeding_cost_per_hour: Amount = Field(
        default_factory=Amount, description="tokens an hour online costs the peer"
    )
    collusion_group: str | None = Field(
        None, description="identities of one operator (sybils, colluders) share a group name"
    )
    self_dealing_bps: float = Field(
        0.0, ge=0, description="fake uploads each identity claims to send its group, bytes/s"
    )


class Tracker(_Model):
    """Who a peer meets: peers per announce, connection limits, re-announces."""

    peers_per_announce: int = Field(50, ge=1, description="peers returned per announce")
    max_connections: int = Field(80, ge=1, le=2000, description="connections per peer")
    min_peers: int = Field(20, ge=0, description="re-announce when below this many connections")
    reannounce_interval_s: float = Field(300.0, gt=0, description="mainline rerequest_interval")


class Stop(_Model):
    """When a run ends."""

    all_done: bool = Field(True, description="stop when no leecher is left and none will arrive")
    max_time_s: float = Field(86400.0, gt=0, description="hard limit on simulated time")


class Timers(_Model):
    """The engine's timer granularity."""

    tick_s: float = Field(
        1.0,
        ge=0,
        description="periodic rechokes fire on this grid, as "
        "libtorrent's 1 s tick does; 0 = exactly every interval_s",
    )


class Wire(_Model):
    """What connections cost beyond payload: set-up time and headers."""

    handshake_s: float = Field(
        0.0,
        ge=0,
        description="connection set-up: seconds from dialling until the peers exchange "
        "bitfields, interest and unchokes (0 = at once)",
    )
    header_overhead: bool = Field(
        False,
        description="capacities count TCP/IP headers (40 B per 1,460 B segment) and "
        "BitTorrent message headers (13 B per block), as libtorrent's rate limits do "
        "(rate_limit_ip_overhead): payload runs at about 97.3 % of a capacity, and each "
        "direction's cap also carries the ACKs of the other direction's traffic (2.7 %)",
    )


class Record(_Model):
    """What a run records, and how often it samples."""

    sample_every_s: float = Field(10.0, gt=0, description="time-series sampling interval")
    pieces: bool = Field(True, description="write one row per piece completion")


class Scenario(_Model):
    """One experiment: torrent, peers and every plug-in, validated and frozen."""

    name: str = Field(..., pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    seed: int = Field(0, ge=0)
    torrent: Torrent
    peers: Annotated[list[PeerClass], Field(min_length=1)]
    departure: DepartureSpec = Field(
        default_factory=lambda: PolicySpec.default(DEPARTURES, "leave")
    )
    tracker: Tracker = Field(default_factory=Tracker)
    choker: ChokerSpec = Field(default_factory=lambda: PolicySpec.default(CHOKERS, "mainline"))
    picker: PickerSpec = Field(default_factory=lambda: PolicySpec.default(PICKERS, "rarest_first"))
    bandwidth: BandwidthSpec = Field(
        default_factory=lambda: PolicySpec.default(BANDWIDTH, "slot_share")
    )
    incentive: IncentiveSpec = Field(default_factory=lambda: PolicySpec.default(INCENTIVES, "none"))
    stop: Stop = Field(default_factory=Stop)
    timers: Timers = Field(default_factory=Timers)
    wire: Wire = Field(default_factory=Wire)
    record: Record = Field(default_factory=Record)

    @property
    def n_peers(self) -> int:
        """Peers across all classes."""
        return sum(c.count for c in self.peers)

    def resolved(self) -> dict[str, Any]:
        """Every field, defaults filled, as plain JSON data (what the manifest stores)."""
        return self.model_dump(mode="json", by_alias=True)

    def digest(self) -> str:
        """sha256 of the resolved scenario without its seed: same experiment, same hash."""
        data = self.resolved()
        data.pop("seed", None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def with_seed(self, seed: int) -> Scenario:
        """The same scenario with another seed."""
        return self.model_copy(update={"seed": int(seed)})


def _cross_checks(s: Scenario) -> list[tuple[str, str]]:
    """Rules that span fields; each names the field to change."""
    problems = []
    t = s.torrent
    if t.piece_bytes % t.block_bytes:
        problems.append(
            (
                "torrent.piece_bytes",
                f"{t.piece_bytes} is not a multiple of block_bytes ({t.block_bytes})",
            )
        )
    if t.piece_bytes > t.file_bytes:
        problems.append(
            ("torrent.piece_bytes", f"{t.piece_bytes} exceeds file_bytes ({t.file_bytes})")
        )
    names = [c.name for c in s.peers]
    for i, c in enumerate(s.peers):
        if names.index(c.name) != i:
            problems.append(
                (f"peers[{i}].class", f"{c.name!r} is used by peers[{names.index(c.name)}] too")
            )
        if c.self_dealing_bps > 0 and c.collusion_group is None:
            problems.append(
                (f"peers[{i}].self_dealing_bps", "needs a collusion_group to deal with")
            )
        if c.starts_as == "seed" and (c.free_rider or c.upload_bps == 0):
            problems.append(
                (
                    f"peers[{i}].upload_bps",
                    "a class that starts as seed must upload "
                    f"(upload_bps > 0, free_rider false); got {c.upload_bps}",
                )
            )
    if not any(c.starts_as == "seed" for c in s.peers):
        problems.append(("peers", "no class has starts_as: seed, so nobody has the file"))
    chokers = [s.choker.name] + [c.choker.name for c in s.peers if c.choker is not None]
    if "libtorrent" in chokers and s.timers.tick_s not in (0.0, 1.0):
        problems.append(
            (
                "timers.tick_s",
                f"{s.timers.tick_s}: libtorrent's choker runs on its session's 1 s tick, so "
                "with a libtorrent choker the tick is 1 (or 0, exact times)",
            )
        )
    if s.record.sample_every_s > s.stop.max_time_s:
        problems.append(
            (
                "record.sample_every_s",
                f"{s.record.sample_every_s} exceeds stop.max_time_s ({s.stop.max_time_s})",
            )
        )
    return problems


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _format_loc(loc: tuple) -> str:
    """('peers', 1, 'upload_bps') -> 'peers[1].upload_bps'; odd keys are quoted: ['a.b']."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.match(str(part)):
            out += f"[{str(part)!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        path = _format_loc(err["loc"])
        if err["type"].startswith("policy_"):
            problems.extend(policy_problems(path, err))
        elif err["type"] == "extra_forbidden":
            parent = _model_at(Scenario, err["loc"][:-1])
            allowed = ", ".join(_field_names(parent)) if parent else "?"
            problems.append((path, f"unknown field; allowed here: {allowed}"))
        elif err["type"] == "missing":
            problems.append((path, "required field is missing"))
        else:
            problems.append((path, f"{err['msg']} (got {_short(err.get('input'))})"))
    return problems


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that a location inside a scenario refers to (for 'allowed' lists)."""
    for part in loc:
        if isinstance(part, int):
            continue
        by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
        field = by_alias.get(part)
        if field is None:
            return None
        model = _inner_model(field.annotation)
        if model is None:
            return None
    return model


def _inner_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in getattr(tp, "__args__", ()) or ():
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def load_scenario(
    data: dict[str, Any] | str | Path,
    *,
    overrides: list[str] | None = None,
    base_dir: str | Path | None = None,
) -> Scenario:
    """A validated ``Scenario`` from a dict, a YAML file path, plus ``path=value`` overrides."""
    source = None
    if isinstance(data, str | Path):
        path = Path(data)
        source = str(path)
        if not path.is_file():
            raise ScenarioError([("", f"file {str(path)!r} does not exist")], source)
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ScenarioError([("", f"not valid YAML: {exc}")], source) from None
        base_dir = base_dir or path.parent
    if not isinstance(data, dict):
        raise ScenarioError(
            [("", f"a scenario is a mapping of fields, got {_short(data)}")], source
        )
    data = apply_overrides(data, overrides or [])
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(_problems(exc), source) from None
    problems = _cross_checks(scenario)
    if problems:
        raise ScenarioError(problems, source)
    return scenario


_INDEX = re.compile(r"\[(\d+)\]")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b[1].c=value`` (or ``a.b.1.c=value``) overrides; values are parsed as YAML."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        if "=" not in item:
            raise ScenarioError([(item, "an override is written path=value, e.g. seed=3")])
        path, _, raw = item.partition("=")
        keys = [
            int(k) if k.isdigit() else k for k in _INDEX.sub(r".\1", path.strip()).split(".") if k
        ]
        if not keys:
            raise ScenarioError([(item, "empty override path")])
        node: Any = data
        for depth, key in enumerate(keys[:-1]):
            if isinstance(node, dict) and isinstance(key, str) and node.get(key) is None:
                node[key] = {}  # a block left at its defaults: start an explicit one
            try:
                node = node[key]
            except (KeyError, IndexError, TypeError):
                where = _format_loc(tuple(keys[: depth + 1]))
                raise ScenarioError(
                    [(where, f"override {item!r}: no such field to descend into")]
                ) from None
        last = keys[-1]
        if isinstance(node, list) and not (isinstance(last, int) and last < len(node)):
            raise ScenarioError(
                [(_format_loc(tuple(keys)), f"index out of range (length {len(node)})")]
            )
        if not isinstance(node, dict | list):
            raise ScenarioError([(_format_loc(tuple(keys)), "cannot set a field inside a scalar")])
        node[last] = yaml.safe_load(raw)
    return data


def json_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file (``swarmsim schema``)."""
    return Scenario.model_json_schema(by_alias=True)
