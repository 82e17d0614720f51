"""Readers of the project's trace and adapter-catalogue CSVs, and of scenario files.

Trace CSV: header `request_id,arrival_s,adapter,prompt_tokens,output_tokens`, rows in
non-decreasing `arrival_s`; an empty adapter is the base model. Catalogue CSV: header
`adapter,rank,alpha,target_modules`, target modules `;`-separated. Errors name the file, line and field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import EngineConfig
from .scheduler import AdapterInfo, Request

TRACE_HEADER = ("request_id", "arrival_s", "adapter", "prompt_tokens", "output_tokens")
CATALOGUE_HEADER = ("adapter", "rank", "alpha", "target_modules")


class TraceError(ValueError):
    """A bad input file: where (file, line, field), the value found and what was expected."""

    def __init__(self, path: str | Path, line: int, field_name: str | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field_name
        where = f"{path}:{line}" + (f": {field_name}" if field_name else "")
        super().__init__(f"{where}: {message}")


def _rows(path: str | Path, header: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    try:
        f = open(path, newline="", encoding="utf-8")
    except OSError as e:
        raise TraceError(path, 0, None, f"cannot open: {e.strerror}") from e
    with f:
        reader = csv.reader(f)
        try:
            first = next(reader)
        except StopIteration:
            raise TraceError(path, 1, None, f"empty file, expected header {','.join(header)}") from None
        found = tuple(c.strip() for c in first)
        if found != header:
            raise TraceError(path, 1, None, f"header {','.join(found)!r}, expected {','.join(header)!r}")
        out = []
        for row in reader:
            line = reader.line_num
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise TraceError(path, line, None, f"{len(row)} fields, expected {len(header)}")
            out.append((line, {k: v.strip() for k, v in zip(header, row, strict=True)}))
        return out


def _int(path: str | Path, line: int, name: str, text: str, minimum: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise TraceError(path, line, name, f"{text!r} is not an integer") from None
    if v < minimum:
        raise TraceError(path, line, name, f"{v}, expected an integer >= {minimum}")
    return v


def _float(path: str | Path, line: int, name: str, text: str, minimum: float | None) -> float:
    try:
        v = float(text)
    except ValueError:
        raise TraceError(path, line, name, f"{text!r} is not a number") from None
    if not math.isfinite(v) or (minimum is not None and v < minimum):
        bound = "a finite number" if minimum is None else f"a finite number >= {minimum}"
        raise TraceError(path, line, name, f"{text!r}, expected {bound}")
    return v


def read_catalogue(path: str | Path) -> dict[str, AdapterInfo]:
    """Reads an adapter catalogue; adapters in file order."""
    out: dict[str, AdapterInfo] = {}
    for line, row in _rows(path, CATALOGUE_HEADER):
        name = row["adapter"]
        if not name:
            raise TraceError(path, line, "adapter", "empty adapter name")
        if name in out:
            raise TraceError(path, line, "adapter", f"duplicate adapter {name!r}")
        rank = _int(path, line, "rank", row["rank"], 1)
        alpha = _float(path, line, "alpha", row["alpha"], None)
        modules = tuple(m.strip() for m in row["target_modules"].split(";"))
        if not modules or any(not m for m in modules):
            raise TraceError(path, line, "target_modules", f"{row['target_modules']!r}, expected e.g. q_proj;v_proj")
        out[name] = AdapterInfo(name=name, rank=rank, alpha=alpha, target_modules=modules)
    return out


def read_trace(path: str | Path, catalogue: Mapping[str, AdapterInfo] | None = None) -> list[Request]:
    """Reads a trace in file order. With `catalogue`, every adapter must be in it."""
    out: list[Request] = []
    seen: set[int] = set()
    for line, row in _rows(path, TRACE_HEADER):
        rid = _int(path, line, "request_id", row["request_id"], 0)
        if rid in seen:
            raise TraceError(path, line, "request_id", f"duplicate request_id {rid}")
        seen.add(rid)
        arrival = _float(path, line, "arrival_s", row["arrival_s"], 0.0)
        if out and arrival < out[-1].arrival_s:
            raise TraceError(
                path, line, "arrival_s", f"{arrival} is earlier than the previous row's {out[-1].arrival_s}"
            )
        adapter = row["adapter"] or None
        if adapter is not None and catalogue is not None and adapter not in catalogue:
            raise TraceError(path, line, "adapter", f"{adapter!r} is not in the adapter catalogue")
        prompt = _int(path, line, "prompt_tokens", row["prompt_tokens"], 1)
        output = _int(path, line, "output_tokens", row["output_tokens"], 1)
        out.append(Request(rid, arrival, adapter, prompt, output))
    return out


@dataclass
class Scenario:
    """What the engine side reads from a scenario file."""

    name: str
    path: Path
    engine: EngineConfig
    cost_model: Mapping[str, Any] | None
    replicas: int
    placement: dict[str, list[int]] | None  # None: every replica hosts every adapter
    trace_path: Path
    catalogue_path: Path
    adapters: dict[str, AdapterInfo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)


def load_scenario(path: str | Path) -> Scenario:
    """Reads a scenario YAML (keys of docs/engine-model.md), its catalogue and trace (paths
    relative to the scenario's folder). Raises ValueError naming the file and key."""
    import yaml  # only the scenario reader needs PyYAML

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"{path}: cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, Mapping):
        raise ValueError(f"{path}: expected a mapping at the top level")
    name = str(doc.get("name", path.stem))
    engine = EngineConfig.from_mapping(doc.get("engine"), f"{path}: engine")
    if engine.num_gpu_blocks is None:
        raise ValueError(f"{path}: engine.num_gpu_blocks: needed by the virtual driver")
    replicas = doc.get("replicas", 1)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValueError(f"{path}: replicas: expected an integer >= 1, found {replicas!r}")
    placement_doc = doc.get("placement", {"kind": "all"})
    if not isinstance(placement_doc, Mapping) or placement_doc.get("kind") != "all":
        raise ValueError(f"{path}: placement: only {{kind: all}} is supported, found {placement_doc!r}")
    workload = doc.get("workload")
    if not isinstance(workload, Mapping) or "trace" not in workload or "catalogue" not in workload:
        raise ValueError(f"{path}: workload: expected {{trace: FILE, catalogue: FILE}}")
    trace_path = path.parent / str(workload["trace"])
    catalogue_path = path.parent / str(workload["catalogue"])
    adapters = read_catalogue(catalogue_path)
    for info in adapters.values():
        if info.rank > engine.max_lora_rank:
            raise ValueError(
                f"{catalogue_path}: adapter {info.name}: rank {info.rank} exceeds "
                f"engine.max_lora_rank {engine.max_lora_rank}"
            )
    requests = read_trace(trace_path, adapters)
    return Scenario(
        name=name,
        path=path,
        engine=engine,
        cost_model=doc.get("cost_model"),
        replicas=replicas,
        placement=None,
        trace_path=trace_path,
        catalogue_path=catalogue_path,
        adapters=adapters,
        requests=requests,
        raw=doc,
    )
