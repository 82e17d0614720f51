"""Multi-LoRA: GPU adapter slots, host (pinned) copies, batched application, merge/unmerge.

Slot buffers, per layer and target module: ``A[S, r_max, in]`` and ``BT[S, r_max, out]``
(``BT = (alpha / r) * B^T``: the scale is folded in at load). An adapter of rank ``r`` fills rows
``0 .. r-1`` of its slot and the rest are zero, so a padded rank contributes nothing.

Batched application, ``y[t] += (x[t] @ A[s_t]^T) @ BT[s_t]`` for the slot ``s_t`` of token t
(none: -1), has two implementations behind ``LoraSlots.apply``:

- ``"torch"`` (graph-capturable, static shapes): one shrink GEMM against all slots at once
  (``[T, in] x [in, S*r]``), a one-hot mask of each token's slot, one expand GEMM. It reads every
  slot's weights whatever the batch holds: the cost of a dense formulation.
- ``"sgmv"``: the segmented kernels of ``gpu.kernels`` when that package is importable (rows are
  grouped by slot on the fly); falls back to ``"torch"`` otherwise.
- ``"dop"``: the same segment metadata, applied by the kernel configuration that the Dop tuned
  table (``gpu/dop/tuned_h200.json``, or ``tuned_table=``) chooses for the call's scenario, through
  ``gpu.dop.dispatch`` (nearest key). No table, no entry that fits, or Dop's kernels not importable:
  the SGMV kernels, as ``"sgmv"``. How a call is classified (``LoraSlots.dop_choice``):

  * eager calls (prefill chunks, mixed steps): workload type from the batch's LoRA segment lengths,
    token count = the LoRA rows rounded up to a power of two, rank = the batch's largest adapter
    rank rounded up to a power of two (the slot stacks are sliced to it, which only drops rows that
    are zero or never read); the choice may differ from call to call;
  * CUDA-graph calls (the executor's static decode batches, marked ``dop_graph``, or any call while
    a stream is capturing): the graph is captured once per batch size and replayed for any mix of
    adapters, so the choice depends on the batch size alone -- workload type ``graph_workload``
    (default "uniform"), token count = the graph size rounded up to a power of two, rank = the
    slots' ``max_rank``. The warm-up, the capture and every replay of a size make the same choice.

  With q, k and v all targeted, ``"dop"`` runs the three as one operator by default (``dop_slices``,
  horizontal fusion: one shrink and one expand over three slices, ``gpu.dop.kernels.dop_apply_sliced``)
  with the candidate the table chooses for the q projection's key, where it fits (separate kernels,
  n-tiles that do not straddle the q | k | v boundaries); otherwise three calls, as ``"sgmv"`` does.
  For that, q, k and v keep their A slots in one tensor ``A_qkv [3, S, r, in]`` and their B^T slots
  side by side in ``BT_qkv [S, r, q + 2 kv]`` (``A`` and ``BT`` hold views of them), whatever the kind.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .weights import ModelConfig, ModelWeights

ATTN_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass
class HostAdapter:
    """One adapter in host memory: per (layer, module), ``A [r, in]`` and ``BT [r, out]``
    (scale folded in)."""

    name: str
    rank: int
    alpha: float
    tensors: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]

    @property
    def scale(self) -> float:
        return self.alpha / self.rank

    def nbytes(self) -> int:
        return sum(a.nbytes + b.nbytes for a, b in self.tensors.values())

    def pin(self) -> HostAdapter:
        """Moves every tensor into one pinned host buffer (one allocation, not one per tensor:
        pinning is the slow part of a host load)."""
        if not torch.cuda.is_available() or not self.tensors:
            return self
        pairs = list(self.tensors.items())
        dtype = pairs[0][1][0].dtype
        total = sum(a.numel() + b.numel() for _, (a, b) in pairs)
        buf = torch.empty(total, dtype=dtype, pin_memory=True)
        off = 0
        out = {}
        for k, (a, b) in pairs:
            va = buf[off:off + a.numel()].view(a.shape)
            off += a.numel()
            vb = buf[off:off + b.numel()].view(b.shape)
            off += b.numel()
            va.copy_(a)
            vb.copy_(b)
            out[k] = (va, vb)
        self.tensors = out
        return self


def random_adapter(cfg: ModelConfig, name: str, rank: int, alpha: float, target_modules: tuple[str, ...],
                   seed: int, dtype: torch.dtype = torch.float16, device: str = "cpu") -> HostAdapter:
    """A seeded random adapter whose update is a few percent of the base projection (drawn on
    ``device``, returned in host memory)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    tensors = {}
    scale = alpha / rank
    for li in range(cfg.num_layers):
        for m in target_modules:
            fin, fout = cfg.module_dims(m)
            a = torch.randn(rank, fin, generator=gen, device=device) / math.sqrt(fin)
            b = torch.randn(fout, rank, generator=gen, device=device) * (0.05 / math.sqrt(rank)) / max(scale, 1e-6)
            tensors[(li, m)] = (a.to(dtype).cpu(), (b.T * scale).to(dtype).contiguous().cpu())
    return HostAdapter(name=name, rank=rank, alpha=alpha, tensors=tensors)


def save_adapter(adapter: HostAdapter, path: str | Path) -> None:
    """Write an adapter in the engine's own safetensors layout (the disk tier of the replay)."""
    from safetensors.torch import save_file

    flat = {}
    for (li, m), (a, bt) in adapter.tensors.items():
        flat[f"{li}.{m}.A"] = a.contiguous()
        flat[f"{li}.{m}.BT"] = bt.contiguous()
    save_file(flat, str(path), metadata={"name": adapter.name, "rank": str(adapter.rank), "alpha": str(adapter.alpha)})


def read_adapter(path: str | Path) -> HostAdapter:
    """Read a file written by ``save_adapter``."""
    from safetensors import safe_open

    tensors: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        meta = fh.metadata()
        keys = list(fh.keys())
        for k in keys:
            if k.endswith(".A"):
                li, m, _ = k.split(".")
                tensors[(int(li), m)] = (fh.get_tensor(k), fh.get_tensor(f"{li}.{m}.BT"))
    return HostAdapter(name=meta["name"], rank=int(meta["rank"]), alpha=float(meta["alpha"]), tensors=tensors)


_ST_DTYPES = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32}


def read_adapter_into(path: str | Path, alloc) -> tuple[HostAdapter, torch.Tensor]:
    """Reads a file written by ``save_adapter`` with one ``readinto`` into a byte buffer from
    ``alloc(nbytes)`` (pinned, from the loader's pool) and returns the adapter, whose tensors are
    views of that buffer at the safetensors header's offsets, and the buffer. One system call
    (the GIL released) instead of a Python call per tensor."""
    size = Path(path).stat().st_size
    buf = alloc(size)
    mv = memoryview(buf.numpy())
    with open(path, "rb", buffering=0) as f:
        got = 0
        while got < size:
            n = f.readinto(mv[got:size])
            if not n:
                raise EOFError(f"{path}: short read ({got} of {size} bytes)")
            got += n
    hlen = int.from_bytes(bytes(mv[:8]), "little")
    header = json.loads(bytes(mv[8:8 + hlen]))
    meta = header.pop("__metadata__", None) or {}
    base = 8 + hlen
    views = {}
    for key, info in header.items():
        b0, b1 = info["data_offsets"]
        views[key] = buf[base + b0:base + b1].view(_ST_DTYPES[info["dtype"]]).view(info["shape"])
    tensors = {}
    for key, t in views.items():
        if key.endswith(".A"):
            li, m, _ = key.split(".")
            tensors[(int(li), m)] = (t, views[f"{li}.{m}.BT"])
    adapter = HostAdapter(name=meta["name"], rank=int(meta["rank"]), alpha=float(meta["alpha"]), tensors=tensors)
    return adapter, buf


def read_peft_adapter(path: str | Path, name: str | None = None, dtype: torch.dtype = torch.float16) -> HostAdapter:
    """Read a PEFT LoRA adapter folder (``adapter_config.json`` + ``adapter_model.safetensors``)."""
    from safetensors.torch import load_file

    path = Path(path)
    conf = json.loads((path / "adapter_config.json").read_text())
    rank, alpha = int(conf["r"]), float(conf["lora_alpha"])
    if conf.get("use_rslora"):
        raise ValueError(f"{path}: rsLoRA scaling not supported")
    if conf.get("rank_pattern") or conf.get("alpha_pattern"):
        raise ValueError(f"{path}: per-module rank/alpha patterns not supported")
    scale = alpha / rank
    raw = load_file(str(path / "adapter_model.safetensors"))
    pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, t in raw.items():
        parts = key.split(".")
        if "layers" not in parts or ("lora_A" not in parts and "lora_B" not in parts):
            continue
        li = int(parts[parts.index("layers") + 1])
        which = "A" if "lora_A" in parts else "B"
        module = parts[parts.index("lora_A" if which == "A" else "lora_B") - 1]
        pairs.setdefault((li, module), {})[which] = t
    tensors = {}
    for k, ab in pairs.items():
        a, b = ab["A"].float(), ab["B"].float()
        tensors[k] = (a.to(dtype).contiguous(), (b.T * scale).to(dtype).contiguous())
    return HostAdapter(name=name or path.name, rank=rank, alpha=alpha, tensors=tensors)


def _sgmv_backend():
    try:
        from gpu.kernels import ops  # the project's Triton SGMV kernels

        return ops
    except Exception:  # noqa: BLE001 - absent or broken: the torch path is used
        return None


def _dop_dispatcher(path: str | Path | None):
    """(Dispatcher or None, apply function or None, status line) for the ``"dop"`` kind."""
    try:
        from gpu.dop.dispatch import DEFAULT_TABLE, Dispatcher
        from gpu.dop.kernels import Scratch, dop_apply  # noqa: F401 - Triton present and the kernels build
    except Exception as e:  # noqa: BLE001 - absent or broken: the SGMV kernels are used
        return None, None, f"dop kernels not importable ({type(e).__name__}: {e}); SGMV used"
    p = Path(path) if path is not None else DEFAULT_TABLE
    if not p.exists():
        return None, None, f"no tuned table at {p}; SGMV used"
    d = Dispatcher.from_file(p)
    if not d.entries:
        return None, None, f"tuned table {p} has no entries; SGMV used"
    return d, dop_apply, f"tuned table {p} ({len(d.entries)} entries)"


def pow2(n: int) -> int:
    """Smallest power of two >= n (1 for n <= 1)."""
    return 1 << max(0, (max(1, n) - 1).bit_length())


_DTYPE_NAMES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def build_segment_info(slots_per_row: list[int], max_loras: int, device, max_seg_len: int | None = None):
    """SGMV segment metadata of a batch whose rows are in any order (a row index groups them by
    slot), padded to ``max_loras + 1`` segments so that one captured graph fits every batch."""
    from gpu.kernels import build_segments, pad_layout, sort_permutation
    from gpu.kernels.ops import SegmentInfo

    perm, _ = sort_permutation(slots_per_row)
    layout = pad_layout(build_segments([slots_per_row[p] for p in perm]), max_loras + 1)
    return SegmentInfo.from_layout(layout, device, tokens=len(slots_per_row), row_index=perm,
                                   max_seg_len=max_seg_len or len(slots_per_row))


class LoraSlots:
    """``max_loras`` GPU slots of rank ``max_rank`` on ``target_modules``."""

    def __init__(self, cfg: ModelConfig, max_loras: int, max_rank: int, target_modules: tuple[str, ...],
                 dtype: torch.dtype, device: str | torch.device, kind: str = "torch",
                 tuned_table: str | Path | None = None, graph_workload: str = "uniform",
                 dop_slices: bool = True) -> None:
        self.cfg = cfg
        self.max_loras = max_loras
        self.max_rank = max_rank
        self.target_modules = tuple(target_modules)
        self.dtype = dtype
        self.device = device
        self.kind = kind
        self.A: list[dict[str, torch.Tensor]] = []
        self.BT: list[dict[str, torch.Tensor]] = []
        # q, k, v share their input: their A slots live in one tensor, so one GEMM shrinks all three.
        self.fused_qkv = {"q_proj", "k_proj", "v_proj"} <= set(self.target_modules)
        self.A_qkv: list[torch.Tensor] = []
        self.BT_qkv: list[torch.Tensor] = []  # [S, r, q + 2 kv]: B^T of q, k, v side by side
        qs, kvs = cfg.q_size, cfg.kv_size
        self.qkv_bounds = (qs, qs + kvs)  # first columns of k and v in the fused qkv output
        for _ in range(cfg.num_layers):
            a_l, b_l = {}, {}
            if self.fused_qkv:
                a_qkv = torch.zeros(3, max_loras, max_rank, cfg.hidden_size, dtype=dtype, device=device)
                bt_qkv = torch.zeros(max_loras, max_rank, qs + 2 * kvs, dtype=dtype, device=device)
                self.A_qkv.append(a_qkv)
                self.BT_qkv.append(bt_qkv)
                for j, m in enumerate(("q_proj", "k_proj", "v_proj")):
                    a_l[m] = a_qkv[j]
                    c0 = (0, qs, qs + kvs)[j]
                    b_l[m] = bt_qkv[:, :, c0:c0 + (qs, kvs, kvs)[j]]
            for m in self.target_modules:
                fin, fout = cfg.module_dims(m)
                if m not in a_l:
                    a_l[m] = torch.zeros(max_loras, max_rank, fin, dtype=dtype, device=device)
                if m not in b_l:
                    b_l[m] = torch.zeros(max_loras, max_rank, fout, dtype=dtype, device=device)
            self.A.append(a_l)
            self.BT.append(b_l)
        self.resident: dict[int, str] = {}
        self.slot_rank = [0] * max_loras
        self.backend = _sgmv_backend() if kind == "sgmv" else None
        if kind == "sgmv" and self.backend is None:
            self.kind = "torch"  # gpu.kernels not importable
        # "dop": the tuned table's dispatcher (None: SGMV kernels); see the module docstring
        self.dop = self._dop_apply = None
        self.dop_status = ""
        self.graph_workload = graph_workload
        self.dop_choices: dict[tuple, str] = {}  # (h_in, h_out, tokens, workload, rank, graph, slices) -> key
        self.dop_slices = bool(dop_slices) and self.fused_qkv
        self.dop_sliced_calls: dict[str, int] = {"sliced": 0, "separate": 0}  # qkv calls, counted at launch
        if kind == "dop":
            self.backend = _sgmv_backend()
            if self.backend is None:
                self.kind = "torch"  # gpu.kernels not importable
                self.dop_status = "gpu.kernels not importable; torch path used"
            else:
                self.dop, self._dop_apply, self.dop_status = _dop_dispatcher(tuned_table)
        self.ranks_dev = torch.zeros(max_loras, dtype=torch.int32, device=device)
        self.scales_dev = torch.ones(max_loras, dtype=torch.float32, device=device)  # scale is folded into B

    def nbytes(self) -> int:
        return sum(t.nbytes for layer in self.A for t in layer.values()) + sum(
            t.nbytes for layer in self.BT for t in layer.values())  # views of A_qkv counted once each

    # -- loading ---------------------------------------------------------------------------
    def copy_in(self, slot: int, adapter: HostAdapter) -> None:
        """Enqueue the host->GPU copy of ``adapter`` into ``slot`` on the current stream."""
        if adapter.rank > self.max_rank:
            raise ValueError(f"adapter {adapter.name}: rank {adapter.rank} > max_lora_rank {self.max_rank}")
        r = adapter.rank
        prev = self.slot_rank[slot]  # rows past max(r, prev) are zero already
        dsts: list[torch.Tensor] = []
        srcs: list[torch.Tensor] = []
        for li in range(self.cfg.num_layers):
            for m in self.target_modules:
                a_dst, b_dst = self.A[li][m][slot], self.BT[li][m][slot]
                pair = adapter.tensors.get((li, m))
                if pair is None:
                    if prev > 0:
                        b_dst[:prev].zero_()
                    continue
                dsts += [a_dst[:r], b_dst[:r]]
                srcs += [pair[0], pair[1]]
                if prev > r:
                    b_dst[r:prev].zero_()  # B zero past the rank is enough: those rows add nothing
        # One call for all the copies: little Python work, so a loader thread is not held up by
        # the GIL while the main thread runs the engine loop.
        torch._foreach_copy_(dsts, srcs, non_blocking=True)
        self.ranks_dev[slot:slot + 1].fill_(r)
        self.resident[slot] = adapter.name
        self.slot_rank[slot] = r  # every module's B rows >= r are zero now

    # -- application -----------------------------------------------------------------------
    def slot_mask(self, slot_ids: torch.Tensor) -> torch.Tensor:
        """One-hot ``[T, S]`` of each token's slot (all zero for -1). Graph-capturable."""
        ar = torch.arange(self.max_loras, device=slot_ids.device)
        return (slot_ids[:, None] == ar[None, :]).to(self.dtype)

    def add_delta(self, layer: int, module: str, x: torch.Tensor, mask: torch.Tensor, y: torch.Tensor) -> None:
        """``y += delta`` in place (y may be a column slice): shrink, mask, ``addmm_``."""
        a = self.A[layer][module]
        bt = self.BT[layer][module]
        s, r = a.shape[0], a.shape[1]
        h = F.linear(x, a.reshape(s * r, -1))
        h = (h.view(-1, s, r) * mask[:, :, None]).view(-1, s * r)
        y.addmm_(h, bt.view(s * r, -1))

    def add_delta_sgmv(self, layer: int, module: str, x: torch.Tensor, seg, v: torch.Tensor, y: torch.Tensor) -> None:
        """``y += delta`` through the SGMV kernels (only the slots in the batch are read)."""
        self.backend.sgmv_shrink(x, self.A[layer][module], seg, self.ranks_dev, v)
        self.backend.sgmv_expand(v, self.BT[layer][module], seg, self.ranks_dev, self.scales_dev, y)

    def dop_choice(self, h_in: int, h_out: int, tokens: int, seg, slices: int = 1):
        """(candidate, rank the stacks are sliced to) for one ``"dop"`` call, None for the SGMV
        kernels (no table or no entry fits), or ``False`` when the batch has no LoRA row (eager
        only). Eager vs graph rule: the module docstring. Decided once per step and shape: the
        answer is kept on ``seg`` (a step's segment metadata, or a graph's static one), so the
        other layers' calls of a step skip the classification (eager steps are bound by the host;
        the live runs at 3270652 paid it on every call, 128 a step)."""
        if self.dop is None:
            return None
        memo = seg.__dict__.setdefault("dop_memo", {}) if hasattr(seg, "__dict__") else {}
        key = (h_in, h_out, tokens, slices)
        if key not in memo:
            memo[key] = self._dop_choice(h_in, h_out, tokens, seg, slices)
        return memo[key]

    def _dop_choice(self, h_in: int, h_out: int, tokens: int, seg, slices: int = 1):
        dtype = _DTYPE_NAMES.get(self.dtype, "fp16")
        graph = getattr(seg, "dop_graph", False) or (torch.cuda.is_available()
                                                      and torch.cuda.is_current_stream_capturing())
        if graph:
            rank, workload, n = self.max_rank, self.graph_workload, pow2(tokens)
            hit = self.dop.choose(h_in, h_out, rank, n, workload, "decode", dtype, slices)
        else:
            from gpu.dop.dispatch import classify

            host = seg.host
            used = [(n, s) for n, s in zip(host.seg_lens, host.seg_slots, strict=True) if n > 0 and s >= 0]
            if not used:
                return False
            lens = [n for n, _ in used]
            rank = min(self.max_rank, pow2(max(self.slot_rank[s] for _, s in used)))
            n, workload = pow2(sum(lens)), classify(lens)
            hit = self.dop.choose(h_in, h_out, rank, n, workload, "decode" if n <= 64 else "prefill", dtype,
                                  slices)
        key = (h_in, h_out, n, workload, rank, graph, slices)
        if key not in self.dop_choices:
            self.dop_choices[key] = hit[1] if hit else "sgmv"
        return None if hit is None else (hit[0], rank)

    def add_delta_dop(self, layer: int, module: str, x: torch.Tensor, seg, v: torch.Tensor, y: torch.Tensor) -> None:
        """``y += delta`` by the kernel configuration the Dop table chooses (``dop_choice``)."""
        choice = self.dop_choice(x.shape[1], y.shape[1], x.shape[0], seg)
        if choice is False:
            return
        if choice is None:
            self.add_delta_sgmv(layer, module, x, seg, v, y)
            return
        from gpu.dop.kernels import Scratch, make_workspace

        c, r = choice
        a, bt = self.A[layer][module], self.BT[layer][module]
        if r < self.max_rank:  # every slot of this batch has rank <= r: rows past r are never read
            a, bt = a[:, :r], bt[:, :r]
        ws = make_workspace(c, x.shape[0], x.shape[1], r, x.device)
        self._dop_apply(x, y, a, bt, seg, self.ranks_dev, self.scales_dev, c, Scratch(v, ws))

    def v_columns(self) -> int:
        """Columns of the fp32 scratch v a forward pass needs (three slices for the fused qkv)."""
        return (3 if self.kind == "dop" and self.dop_slices else 1) * self.max_rank

    def add_delta_qkv_dop(self, layer: int, x: torch.Tensor, seg, v: torch.Tensor, qkv: torch.Tensor) -> None:
        """q, k and v updates into the fused ``qkv [T, q + 2 kv]`` by the ``"dop"`` kind: one
        shrink and one expand over three slices with the candidate chosen for the q projection's key
        (``v`` holds ``3 x max_rank`` columns), or three calls where that candidate cannot slice."""
        from gpu.dop.kernels import Scratch, dop_apply_sliced, make_workspace, slices_fit

        qs = self.cfg.q_size
        choice = self.dop_choice(x.shape[1], qs, x.shape[0], seg, slices=3)
        if choice is False:
            return
        c = r = None
        if choice is not None:
            c, r = choice
        if c is None or not slices_fit(c, self.qkv_bounds, qkv.shape[1]):
            self.dop_sliced_calls["separate"] += 1
            v1 = v[:, :self.max_rank]
            for m, c0, c1 in (("q_proj", 0, qs), ("k_proj", *self.qkv_bounds), ("v_proj", self.qkv_bounds[1],
                                                                                  qkv.shape[1])):
                self.add_delta_dop(layer, m, x, seg, v1, qkv[:, c0:c1])
            return
        self.dop_sliced_calls["sliced"] += 1
        a, bt = self.A_qkv[layer], self.BT_qkv[layer]
        if r < self.max_rank:  # every slot of this batch has rank <= r: rows past r are never read
            a, bt = a[:, :, :r], bt[:, :r]
        ws = make_workspace(c, x.shape[0], x.shape[1], r, x.device, slices=3)
        dop_apply_sliced(x, qkv, a, bt, seg, self.ranks_dev, self.scales_dev, c, self.qkv_bounds,
                         Scratch(v[:, :3 * r], ws))

    def add_delta_qkv(self, layer: int, x: torch.Tensor, mask: torch.Tensor, qkv: torch.Tensor,
                      sizes: tuple[int, int]) -> None:
        """q, k and v updates into the fused ``qkv [T, q + 2 kv]``: one shrink GEMM for the three."""
        a = self.A_qkv[layer]  # [3, S, r, in]
        s, r = a.shape[1], a.shape[2]
        t = x.shape[0]
        h = F.linear(x, a.view(3 * s * r, -1)).view(t, 3, s, r) * mask[:, None, :, None]
        qs, kvs = sizes
        cols = ((0, qs), (qs, qs + kvs), (qs + kvs, qs + 2 * kvs))
        for j, m in enumerate(("q_proj", "k_proj", "v_proj")):
            c0, c1 = cols[j]
            qkv[:, c0:c1].addmm_(h[:, j].reshape(t, s * r), self.BT[layer][m].view(s * r, -1))

    def delta(self, layer: int, module: str, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[T, out]`` LoRA update of ``module`` for input ``x [T, in]`` (dense torch path)."""
        a = self.A[layer][module]
        bt = self.BT[layer][module]
        s, r = a.shape[0], a.shape[1]
        h = F.linear(x, a.view(s * r, -1))  # [T, S*r]
        h = (h.view(-1, s, r) * mask[:, :, None]).view(-1, s * r)
        return h @ bt.view(s * r, -1)

    # -- merged mode -----------------------------------------------------------------------
    def merge(self, weights: ModelWeights, adapter: HostAdapter, sign: float = 1.0) -> None:
        """Fold ``adapter`` into the base weights (``W += sign * s * B A``), in place."""
        cfg = self.cfg
        q, kv, inter = cfg.q_size, cfg.kv_size, cfg.intermediate_size
        for (li, m), (a, bt) in adapter.tensors.items():
            lw = weights.layers[li]
            a_d = a.to(weights.embed.device, non_blocking=True).float()
            b_d = bt.to(weights.embed.device, non_blocking=True).float()
            d = (b_d.T @ a_d).mul_(sign).to(weights.embed.dtype)  # [out, in]
            if m == "q_proj":
                lw.wqkv[:q].add_(d)
            elif m == "k_proj":
                lw.wqkv[q:q + kv].add_(d)
            elif m == "v_proj":
                lw.wqkv[q + kv:].add_(d)
            elif m == "o_proj":
                lw.wo.add_(d)
            elif m == "gate_proj":
                lw.w_gate_up[:inter].add_(d)
            elif m == "up_proj":
                lw.w_gate_up[inter:].add_(d)
            elif m == "down_proj":
                lw.w_down.add_(d)

    def unmerge(self, weights: ModelWeights, adapter: HostAdapter) -> None:
        self.merge(weights, adapter, sign=-1.0)
