"""Engine configuration: the `engine:` section of a scenario file (docs/engine-model.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

GIB = 2**30


@dataclass(frozen=True)
class EngineConfig:
    """The engine keys of docs/engine-model.md, with their defaults.

    `num_gpu_blocks` is None when it is to be derived from the GPU's memory
    (`derive_num_gpu_blocks`); the scheduler needs it resolved.
    """

    max_num_seqs: int = 128
    max_num_batched_tokens: int = 4096
    chunked_prefill: bool = True
    block_size: int = 16
    num_gpu_blocks: int | None = None
    gpu_memory_utilization: float = 0.90
    activation_reserve_gib: float = 2.0
    max_model_len: int = 4096
    max_loras: int = 8
    max_lora_rank: int = 64
    max_cpu_loras: int = 32
    scheduler_lookahead: int = 256

    def __post_init__(self) -> None:
        validate(self, "engine")

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None, where: str = "engine") -> EngineConfig:
        """Builds a config from a parsed `engine:` mapping.

        Raises ValueError naming `where.key` for an unknown key, a value of the wrong type
        or out of range, `max_cpu_loras < max_loras`, or `chunked_prefill: false` with
        `max_num_batched_tokens < max_model_len`.
        """
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise ValueError(f"{where}: expected a mapping, found {type(d).__name__}")
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in d.items():
            if key not in known:
                raise ValueError(f"{where}.{key}: unknown key (expected one of {', '.join(sorted(known))})")
            values[key] = _check_type(key, value, where)
        config = cls.__new__(cls)
        defaults = cls()
        for name in known:
            object.__setattr__(config, name, values.get(name, getattr(defaults, name)))
        validate(config, where)
        return config

    def with_blocks(self, num_gpu_blocks: int) -> EngineConfig:
        """A copy with `num_gpu_blocks` set."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["num_gpu_blocks"] = num_gpu_blocks
        return EngineConfig(**d)

    def to_dict(self) -> dict[str, Any]:
        """The config as a plain mapping (for run.json)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


_INT_KEYS = {
    "max_num_seqs",
    "max_num_batched_tokens",
    "block_size",
    "num_gpu_blocks",
    "max_model_len",
    "max_loras",
    "max_lora_rank",
    "max_cpu_loras",
    "scheduler_lookahead",
}
_FLOAT_KEYS = {"gpu_memory_utilization", "activation_reserve_gib"}
_BOOL_KEYS = {"chunked_prefill"}


def _check_type(key: str, value: Any, where: str) -> Any:
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            raise ValueError(f"{where}.{key}: expected true or false, found {value!r}")
        return value
    if key in _INT_KEYS:
        if key == "num_gpu_blocks" and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}.{key}: expected an integer, found {value!r}")
        return value
    if key in _FLOAT_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}.{key}: expected a number, found {value!r}")
        return float(value)
    raise AssertionError(key)


def validate(c: EngineConfig, where: str) -> None:
    """Range and cross-key checks; raises ValueError naming the key."""
    for key in sorted(_INT_KEYS):
        value = getattr(c, key)
        if key == "num_gpu_blocks" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}.{key}: expected an integer, found {value!r}")
        if value < 1:
            raise ValueError(f"{where}.{key}: expected at least 1, found {value}")
    if not isinstance(c.chunked_prefill, bool):
        raise ValueError(f"{where}.chunked_prefill: expected true or false")
    u = c.gpu_memory_utilization
    if not (isinstance(u, (int, float)) and 0.0 < u <= 1.0):
        raise ValueError(f"{where}.gpu_memory_utilization: expected a number in (0, 1], found {u!r}")
    r = c.activation_reserve_gib
    if not (isinstance(r, (int, float)) and math.isfinite(r) and r >= 0.0):
        raise ValueError(f"{where}.activation_reserve_gib: expected a number >= 0, found {r!r}")
    if c.max_cpu_loras < c.max_loras:
        raise ValueError(f"{where}.max_cpu_loras: must be >= max_loras ({c.max_loras}), found {c.max_cpu_loras}")
    if not c.chunked_prefill and c.max_num_batched_tokens < c.max_model_len:
        raise ValueError(
            f"{where}.max_num_batched_tokens: with chunked_prefill false it must be >= "
            f"max_model_len ({c.max_model_len}), found {c.max_num_batched_tokens}"
        )


def derive_num_gpu_blocks(
    config: EngineConfig,
    gpu_memory_bytes: int,
    weight_bytes: int,
    slot_bytes: int,
    kv_bytes_per_token: int,
) -> int:
    """KV-cache blocks from the page's formula.

    `slot_bytes` is the size of one rank-`max_lora_rank` adapter on the configured target
    modules; `kv_bytes_per_token = 2 * layers * kv_heads * head_dim * dtype_bytes`.
    Raises ValueError when no block fits.
    """
    free = (
        gpu_memory_bytes * config.gpu_memory_utilization
        - weight_bytes
        - config.max_loras * slot_bytes
        - config.activation_reserve_gib * GIB
    )
    blocks = math.floor(free / (config.block_size * kv_bytes_per_token))
    if blocks < 1:
        raise ValueError(f"engine.num_gpu_blocks: no KV-cache block fits ({free / GIB:.2f} GiB left for the cache)")
    return blocks


@dataclass(frozen=True)
class DLoRAConfig:
    """The parameters of the `dlora` replica scheduler (docs/schedulers.md, "Parameters").

    `switch_seconds` is the fixed seconds of a merge or unmerge, or None for `switch_cost:
    model` (the cost model's `switch_seconds`).
    """

    credit_unit: float = 10000.0
    merge_ratio: float = 1.5
    stay_ratio: float = 0.5
    adaptive: bool = True
    credits: bool = True
    switch_seconds: float | None = None
    speed: str = "tokens"  # "tokens": every iteration measures its mode's speed; "decode": decode-only ones
    drain_credit: bool = True  # a drain pass pays credit to the candidates it displaces (default since lease 67078bf-1)
    max_wait_s: float | None = None  # the aging guard (step 2a): None is off


def parse_scheduler(d: Any, where: str = "scheduler") -> DLoRAConfig | None:
    """Parses the scenario's `scheduler:` value: absent, `fcfs` or `{kind: fcfs}` give None (FCFS);
    `dlora` or `{kind: dlora, credit_unit, merge_ratio, stay_ratio, adaptive, credits,
    switch_cost, speed, drain_credit, max_wait_s}` give a `DLoRAConfig`. Raises ValueError naming `where.key`."""
    if d is None or d == "fcfs":
        return None
    if d == "dlora":
        return DLoRAConfig()
    if not isinstance(d, Mapping):
        raise ValueError(f"{where}: expected fcfs, dlora or a mapping with kind, found {d!r}")
    kind = d.get("kind")
    if kind == "fcfs":
        extra = [k for k in d if k != "kind"]
        if extra:
            raise ValueError(f"{where}.{extra[0]}: unknown key for kind fcfs")
        return None
    if kind != "dlora":
        raise ValueError(f"{where}.kind: expected fcfs or dlora, found {kind!r}")
    values: dict[str, Any] = {}
    for key, value in d.items():
        if key == "kind":
            continue
        if key in ("credit_unit", "merge_ratio", "stay_ratio"):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where}.{key}: expected a number, found {value!r}")
            if value < 0 or (key == "credit_unit" and value <= 0):
                bound = "> 0" if key == "credit_unit" else ">= 0"
                raise ValueError(f"{where}.{key}: expected a number {bound}, found {value!r}")
            values[key] = float(value)
        elif key in ("adaptive", "credits", "drain_credit"):
            if not isinstance(value, bool):
                raise ValueError(f"{where}.{key}: expected true or false, found {value!r}")
            values[key] = value
        elif key == "max_wait_s":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and value > 0
            ):
                raise ValueError(f"{where}.max_wait_s: expected seconds > 0, found {value!r}")
            values["max_wait_s"] = float(value)
        elif key == "speed":
            if value not in ("tokens", "decode"):
                raise ValueError(f"{where}.speed: expected tokens or decode, found {value!r}")
            values["speed"] = value
        elif key == "switch_cost":
            if value == "model":
                values["switch_seconds"] = None
            elif (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= 0)
            ):
                raise ValueError(f"{where}.switch_cost: expected seconds >= 0 or 'model', found {value!r}")
            else:
                values["switch_seconds"] = float(value)
        else:
            raise ValueError(
                f"{where}.{key}: unknown key (expected one of adaptive, credit_unit, credits, drain_credit, "
                "max_wait_s, merge_ratio, speed, stay_ratio, switch_cost)"
            )
    config = DLoRAConfig(**values)
    if config.stay_ratio > config.merge_ratio:
        raise ValueError(
            f"{where}.stay_ratio: must not exceed merge_ratio ({config.merge_ratio}); found {config.stay_ratio} "
            "(a replica would merge and unmerge at once, forever)"
        )
    return config
