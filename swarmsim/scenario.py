"""The scenario: one YAML file that fully describes an experiment, validated into a frozen model.

Units are in the field names (``_s``, ``_bytes``, ``_bps``). Every ``{name: ..., ...}`` block
is a registry lookup plus that plug-in's own pydantic parameters. Any fault becomes a
``ScenarioError`` listing each bad field by path (``peers[1].upload_bps``), the value given and
what is allowed, before anything runs: numbers are numbers (``true`` is no count), finite and
in range, trace files are read and checked, every class can join, and the run's periodic
events are bounded (``MAX_EVENTS``). Files are read through ``swarmsim.safeyaml``.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from swarmsim.errors import ScenarioError
from swarmsim.policies import ARRIVALS, BANDWIDTH, CHOKERS, DEPARTURES, INCENTIVES, PICKERS
from swarmsim.policyspec import PolicySpec, number_problem, policy_field, policy_problems
from swarmsim.safeyaml import format_loc as _format_loc
from swarmsim.safeyaml import parse_yaml, plain, read_yaml
from swarmsim.safeyaml import short as _short

BLOCK_BYTES = 16384  # BEP 3: requests are 16 KiB blocks

#: periodic events one timer may make over stop.max_time_s: samples, ticks, and per peer its
#: rechoke rounds and re-announces (a run past this is a hang, not an experiment)
MAX_EVENTS = 10_000_000
MAX_PEERS = 1_000_000  # peers in a scenario
MAX_PIECES = 1_000_000  # pieces in the torrent
MAX_PEER_PIECES = 1_000_000_000  # peers x pieces: the engine keeps 3 bytes for each
MAX_BPS = 1e12  # a terabyte a second: no link is faster
MAX_TOKENS = 1e15  # per-peer token amounts
MAX_TRACE_BYTES = 256 * 1024 * 1024  # an arrival trace (a million joins is ~10 MB)

ChokerSpec = policy_field(CHOKERS, "mainline")
PickerSpec = policy_field(PICKERS, "rarest_first")
ArrivalSpec = policy_field(ARRIVALS, "flash_crowd")
DepartureSpec = policy_field(DEPARTURES, "leave")
BandwidthSpec = policy_field(BANDWIDTH, "slot_share")
IncentiveSpec = policy_field(INCENTIVES, "none")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _strict_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """A number field takes a number: not a boolean, not a quoted string."""
        field = cls.model_fields.get(info.field_name or "")
        problem = None if field is None else number_problem(field.annotation, value)
        if problem:
            raise PydanticCustomError("number_type", problem)
        return value


class Torrent(_Model):
    """The file shared: its size, its piece size and the size of one request (block)."""

    file_bytes: int = Field(..., gt=0, le=2**50, description="payload size")
    piece_bytes: int = Field(262144, gt=0, le=2**30, description="piece size (default 256 KiB)")
    block_bytes: int = Field(
        BLOCK_BYTES, gt=0, le=2**30, description="request size (BEP 3: 16 KiB)"
    )

    @property
    def n_pieces(self) -> int:
        """Pieces in the file (the last may be short)."""
        return math.ceil(self.file_bytes / self.piece_bytes)


class Amount(_Model):
    """A per-peer quantity drawn once per peer: ``fixed`` gives everyone ``mean``."""

    mean: float = Field(0.0, ge=0, le=MAX_TOKENS)
    distribution: Literal["fixed", "exponential", "lognormal", "uniform"] = "fixed"
    sigma: float = Field(1.0, gt=0, le=10, description="lognormal: standard deviation of the log")

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
        max_length=100,
        description="class label used in the results",
    )
    count: int = Field(..., ge=1, le=MAX_PEERS)
    upload_bps: float = Field(
        ..., ge=0, le=MAX_BPS, description="upload capacity, bytes per second"
    )
    download_bps: float = Field(
        ..., gt=0, le=MAX_BPS, description="download capacity, bytes per second"
    )
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
        0.0,
        ge=0,
        le=MAX_BPS,
        description="fake uploads each identity claims to send its group, bytes/s",
    )


class Tracker(_Model):
    """Who a peer meets: peers per announce, connection limits, re-announces."""

    peers_per_announce: int = Field(
        50, ge=1, le=MAX_PEERS, description="peers returned per announce"
    )
    max_connections: int = Field(80, ge=1, le=2000, description="connections per peer")
    min_peers: int = Field(
        20, ge=0, le=MAX_PEERS, description="re-announce when below this many connections"
    )
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


#: a scenario's (or sweep's) name is one folder name: no separators, no '.' or '..'
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"


class Scenario(_Model):
    """One experiment: torrent, peers and every plug-in, validated and frozen."""

    name: str = Field(
        ...,
        pattern=NAME_PATTERN,
        max_length=100,
        description="names the result folder (results/NAME-seedS): letters, digits, "
        "'_', '-' and '.' ('.' not first)",
    )
    description: str = ""
    seed: int = Field(0, ge=0, le=2**63 - 1)
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
        """The same scenario with another seed (an int from 0 to 2**63 - 1)."""
        try:
            value = None if isinstance(seed, bool) else operator.index(seed)
        except TypeError:
            value = None
        if value is None or not 0 <= value < 2**63:
            raise ScenarioError([("seed", f"an int from 0 to 2**63 - 1, got {_short(seed)}")])
        return self.model_copy(update={"seed": value})


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
    if s.wire.handshake_s >= s.stop.max_time_s:
        problems.append(
            (
                "wire.handshake_s",
                f"{s.wire.handshake_s:g}: no connection would open before stop.max_time_s "
                f"({s.stop.max_time_s:g})",
            )
        )
    problems.extend(_size_problems(s))
    problems.extend(_run_length_problems(s))
    for i, pc in enumerate(s.peers):
        problems.extend(_join_problems(i, pc, s.stop.max_time_s))
    return problems


def _size_problems(s: Scenario) -> list[tuple[str, str]]:
    """A swarm the engine can hold: peers, pieces and their product bounded."""
    n_pieces, n_peers = s.torrent.n_pieces, s.n_peers
    if n_pieces > MAX_PIECES:
        return [
            (
                "torrent.file_bytes",
                f"{s.torrent.file_bytes:,} bytes in pieces of {s.torrent.piece_bytes:,} make "
                f"{n_pieces:,} pieces; at most {MAX_PIECES:,} (raise torrent.piece_bytes)",
            )
        ]
    if n_peers > MAX_PEERS:
        return [("peers", f"{n_peers:,} peers in all classes; at most {MAX_PEERS:,}")]
    if n_peers * n_pieces > MAX_PEER_PIECES:
        return [
            (
                "peers",
                f"{n_peers:,} peers x {n_pieces:,} pieces = {n_peers * n_pieces:,}; the engine "
                f"keeps 3 bytes for each, so at most {MAX_PEER_PIECES:,}",
            )
        ]
    return []


def _timers(s: Scenario) -> list[tuple[str, float, str]]:
    """Every periodic timer of a run: (field, interval in seconds, what it makes)."""
    timers = [
        ("record.sample_every_s", s.record.sample_every_s, "samples"),
        ("tracker.reannounce_interval_s", s.tracker.reannounce_interval_s, "re-announces a peer"),
    ]
    if s.timers.tick_s > 0:
        timers.append(("timers.tick_s", s.timers.tick_s, "ticks"))
    specs = [("choker", s.choker, "rounds a peer")]
    specs += [(f"peers[{i}].choker", c.choker, "rounds a peer") for i, c in enumerate(s.peers)]
    specs.append(("incentive", s.incentive, "rounds"))
    for path, spec, what in specs:
        if spec is None:
            continue
        for key, value in spec.params:
            if key.endswith("interval_s") and isinstance(value, int | float) and value > 0:
                timers.append((f"{path}.{key}", float(value), what))
    return timers


def _run_length_problems(s: Scenario) -> list[tuple[str, str]]:
    """No timer makes more than ``MAX_EVENTS`` events over the run's time limit."""
    horizon = s.stop.max_time_s
    problems = []
    for path, interval, what in _timers(s):
        n = horizon / interval
        if n > MAX_EVENTS:
            count = f"{n:,.0f}" if n < 1e15 else f"{n:.3g}"
            problems.append(
                (
                    path,
                    f"{interval:g} s makes {count} {what} in stop.max_time_s ({horizon:g} s); "
                    f"at most {MAX_EVENTS:,} are allowed: raise it or lower stop.max_time_s",
                )
            )
    return problems


def _join_problems(i: int, pc: PeerClass, horizon: float) -> list[tuple[str, str]]:
    """A class of the built-in arrivals must be able to join before the time limit; a trace
    is read and checked here, not when the run starts."""
    spec, p = pc.arrival, pc.arrival.params
    where = f"peers[{i}].arrival"
    if spec.name == "trace":
        return _trace_problems(f"{where}.path", p.path, p.column, pc.count, horizon)
    start = getattr(p, "start_s", 0.0)
    if spec.name not in ("flash_crowd", "poisson", "decaying"):
        return []  # a user's arrival process: only its own code knows
    if start >= horizon:
        return [
            (
                f"{where}.start_s",
                f"{start:g}: class {pc.name!r} would join after stop.max_time_s "
                f"({horizon:g} s), so never",
            )
        ]
    span = horizon - start
    if spec.name == "flash_crowd":
        if p.window_s <= span:
            return []
        chance = 1.0 - (1.0 - span / p.window_s) ** pc.count
        field, why = "window_s", f"joins spread over {p.window_s:g} s"
    elif spec.name == "poisson":
        chance = -math.expm1(-p.rate_per_s * span)
        field, why = "rate_per_s", f"{p.rate_per_s:g} arrivals a second"
    else:
        expected = p.lambda0_per_s * p.tau_s * -math.expm1(-span / p.tau_s)
        chance = -math.expm1(-expected)
        field, why = "lambda0_per_s", f"{expected:.3g} arrivals expected in all"
    if chance >= 0.01:
        return []
    return [
        (
            f"{where}.{field}",
            f"class {pc.name!r} would almost surely never join ({why}: a {chance:.2%} chance "
            f"that anyone joins before stop.max_time_s, {horizon:g} s); at least 1 % is needed",
        )
    ]


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _trace_problems(
    where: str, path: str, column: str, count: int, horizon: float
) -> list[tuple[str, str]]:
    """Read a trace as the ``trace`` arrival will, and check every row it will use. Nothing
    of the file's content is echoed: a path can name any file."""
    import numpy as np
    import pandas as pd

    file = Path(path)
    try:
        size = file.stat().st_size
    except OSError as exc:
        return [(where, f"trace file {path!r} cannot be read: {exc.strerror or exc}")]
    if size > MAX_TRACE_BYTES:
        return [(where, f"trace file {path!r} is {size:,} bytes; at most {MAX_TRACE_BYTES:,}")]
    need = f"a CSV file with a header line naming column {column!r} and {count} join times"
    try:
        frame = pd.read_csv(file)
    except UnicodeDecodeError:
        return [(where, f"trace file {path!r} is not UTF-8 text; it should be {need}")]
    except Exception as exc:  # empty, binary, ragged: whatever pandas cannot parse
        return [(where, f"trace file {path!r} is not a CSV table ({type(exc).__name__}); {need}")]
    if column not in frame.columns:
        names = [str(c) for c in frame.columns]
        shown = (
            f"; its columns: {', '.join(names)}"
            if len(names) <= 20 and all(re.fullmatch(r"[A-Za-z0-9_. -]{1,40}", c) for c in names)
            else ""
        )
        return [(where, f"trace file {path!r} has no column {column!r}{shown}")]
    try:
        values = frame[column].to_numpy(dtype=float)  # as the trace arrival reads it
    except (TypeError, ValueError):  # find the first cell that is not a number
        values = np.array([_as_float(v) for v in frame[column]], dtype=float)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 1
        return [
            (
                where,
                f"trace file {path!r}, row {row} after the header: column {column!r} is not "
                "a finite number of seconds >= 0 there (join times are)",
            )
        ]
    if len(values) < count:
        return [
            (
                where,
                f"trace file {path!r} has {len(values)} join times; the class has count "
                f"{count}, so it needs at least that many",
            )
        ]
    if len(values) and np.sort(values)[0] >= horizon:
        return [
            (
                where,
                f"trace file {path!r}: its first join is at {values.min():g} s, after "
                f"stop.max_time_s ({horizon:g} s), so the class never joins",
            )
        ]
    return []


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


def load_scenario(
    data: dict[str, Any] | str | Path,
    *,
    overrides: list[str] | None = None,
    base_dir: str | Path | None = None,
) -> Scenario:
    """A validated ``Scenario`` from a dict, a YAML file path, plus ``path=value`` overrides.

    Raises ``ScenarioError`` for every fault, never another exception."""
    source = None
    if isinstance(data, str | Path):
        path = Path(data)
        source = str(path)
        data = read_yaml(path)
        base_dir = base_dir or path.parent
    if not isinstance(data, dict):
        raise ScenarioError(
            [("", f"a scenario is a mapping of fields, got {_short(data)}")], source
        )
    try:
        data = apply_overrides(data, overrides or [])
    except ScenarioError as exc:
        raise ScenarioError(exc.problems, source) from None
    try:
        scenario = Scenario.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ScenarioError(_problems(exc), source) from None
    problems = _cross_checks(scenario)
    if problems:
        raise ScenarioError(problems, source)
    return scenario


_INDEX = re.compile(r"\[(\d+)\]")
_DIGITS = re.compile(r"[0-9]+")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b[1].c=value`` (or ``a.b.1.c=value``) overrides; values are parsed as YAML.

    Works on a bounded plain copy of ``data`` (``swarmsim.safeyaml.plain``): what
    ``yaml.safe_load`` keeps shared is expanded here, so a shared-alias document cannot
    grow past the value limit."""
    if isinstance(overrides, str):
        overrides = [overrides]
    values = []
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise ScenarioError([(str(item), "an override is written path=value, e.g. seed=3")])
        path, _, raw = item.partition("=")
        keys = _override_keys(path, item)
        try:
            values.append((keys, parse_yaml(raw, loc=tuple(keys)), item))
        except ScenarioError as exc:
            raise ScenarioError([(p, f"override {item!r}: {m}") for p, m in exc.problems]) from None
    return _apply(data, values)


def apply_values(data: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Like ``apply_overrides``, with values already parsed: ``{"peers[1].count": 3}``
    (a sweep's points)."""
    return _apply(data, [(_override_keys(p, f"{p}=..."), v, f"{p}=...") for p, v in values.items()])


def _override_keys(path: str, item: str) -> list[str | int]:
    keys = [
        int(k) if _DIGITS.fullmatch(k) else k
        for k in _INDEX.sub(r".\1", path.strip()).split(".")
        if k
    ]
    if not keys:
        raise ScenarioError([(item, "empty override path")])
    if any(isinstance(k, str) and ("[" in k or "]" in k) for k in keys):
        raise ScenarioError(
            [(path.strip(), f"override {item!r}: an index is a number in brackets, peers[1]")]
        )
    return keys


def _apply(data: dict[str, Any], values: list[tuple[list, Any, str]]) -> dict[str, Any]:
    data = plain(data)
    for keys, value, item in values:
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
        if isinstance(node, dict) and not isinstance(last, str):
            last = str(last)
        node[last] = value
    return plain(data)


def json_schema() -> dict[str, Any]:
    """The JSON schema of a scenario file (``swarmsim schema``)."""
    return Scenario.model_json_schema(by_alias=True)
