"""specml's own layers: ranking/multi-task blocks and the small glue a spec needs that torch does not
offer as a module by name.

Each is allow-listed as ``specml.layers.<Name>`` (see :data:`LAYERS`). Formulas are in the docstrings
and in docs/layers.md. Constructors check their arguments and raise :class:`ParamError` (a
``ValueError`` naming the parameter), which the spec checker reports at ``params.<name>``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.modules import activation as _activations

from specml.errors import SpecmlError
from specml.spec.errors import suggestion


class ParamError(SpecmlError, ValueError):
    """A constructor argument that cannot be used; ``param`` names it (for the field path)."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ParamError(name, f"expected a positive integer, got {value!r}")
    return value


def _check_width(x: torch.Tensor, width: int, layer: str, what: str = "input") -> None:
    if x.dim() == 0 or x.shape[-1] != width:
        raise ValueError(f"{layer} expects {what} of shape [..., {width}] (in_features={width}), "
                         f"got {list(x.shape)}")


def _tensors(xs: Sequence) -> list[torch.Tensor]:
    if len(xs) == 1 and isinstance(xs[0], list | tuple):
        return list(xs[0])
    return list(xs)


# ----------------------------------------------------------------------------------------------
# glue


class Concat(nn.Module):
    """``torch.cat(inputs, dim)``: joins its inputs (positional, or one list) along ``dim``."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.cat(_tensors(tensors), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Stack(nn.Module):
    """``torch.stack(inputs, dim)``: stacks same-shaped inputs along a new ``dim``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return torch.stack(_tensors(tensors), dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Select(nn.Module):
    """``x[index]`` of a tuple/list output (e.g. the ``output`` of an LSTM), or along ``dim`` of a tensor."""

    def __init__(self, index: int = 0, dim: int | None = None) -> None:
        super().__init__()
        self.index = index
        self.dim = dim

    def forward(self, x):
        if self.dim is None:
            return x[self.index]
        return x.select(self.dim, self.index)

    def extra_repr(self) -> str:
        return f"index={self.index}, dim={self.dim}"


# ----------------------------------------------------------------------------------------------
# DCN: cross layers


def _uniform_(t: torch.Tensor, fan_in: int) -> torch.Tensor:
    """``nn.Linear``'s default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(t, -bound, bound)


class CrossLayer(nn.Module):
    """One cross layer of a Deep & Cross Network; ``forward(x0, x)`` (``x`` defaults to ``x0``).

    ``d = in_features``; inputs are ``[..., d]``, the output is ``[..., d]``; ⊙ is the elementwise product.

    * ``version="v1"`` (DCN, Wang et al. 2017): ``x_{l+1} = x0 · (x_lᵀ w) + b + x_l`` with ``w, b ∈ R^d``.
    * ``version="v2"`` (DCN-V2, Wang et al. 2021): ``x_{l+1} = x0 ⊙ (W x_l + b) + x_l`` with ``W ∈ R^{d×d}``.
    * ``low_rank=r`` (v2): ``W = U Vᵀ`` with ``U, V ∈ R^{d×r}``: ``x_{l+1} = x0 ⊙ (U (Vᵀ x_l) + b) + x_l``.
    * ``num_experts=K > 1`` (DCN-Mix, needs ``low_rank``): ``K`` low-rank experts
      ``E_i(x_l) = x0 ⊙ (U_i tanh(C_i tanh(V_iᵀ x_l)) + b_i)`` with ``C_i ∈ R^{r×r}``, mixed by a softmax
      gate over ``x_l``: ``x_{l+1} = Σ_i softmax(G x_l)_i · E_i(x_l) + x_l`` (``G ∈ R^{K×d}``).

    ``bias=False`` drops ``b`` (``b_i``).
    """

    def __init__(self, in_features: int, version: str = "v2", low_rank: int | None = None,
                 num_experts: int = 1, bias: bool = True) -> None:
        super().__init__()
        d = _positive_int("in_features", in_features)
        if version not in ("v1", "v2"):
            raise ParamError("version", f"expected 'v1' or 'v2', got {version!r}")
        k = _positive_int("num_experts", num_experts)
        if low_rank is not None:
            r = _positive_int("low_rank", low_rank)
            if version == "v1":
                raise ParamError("low_rank", "the low-rank form is DCN-V2's; write version: v2 or drop low_rank")
            if r >= d:
                raise ParamError("low_rank", f"must be smaller than in_features ({d}) to save anything, got {r}; "
                                             "drop low_rank for the full-rank W")
        if k > 1 and version == "v1":
            raise ParamError("num_experts", "the mixture of experts (DCN-Mix) is DCN-V2's; write version: v2")
        if k > 1 and low_rank is None:
            raise ParamError("num_experts", "the mixture of experts (DCN-Mix) is made of low-rank experts; "
                                            "set low_rank too (e.g. low_rank: " f"{max(1, d // 4)})")
        self.in_features, self.version, self.low_rank, self.num_experts = d, version, low_rank, k
        self.weight = self.bias = None
        self.full = self.down = self.up = None
        if version == "v1":
            self.weight = nn.Linear(d, 1, bias=False)      # x_lᵀ w
            self.bias = nn.Parameter(torch.zeros(d)) if bias else None
        elif k > 1:
            r = low_rank
            self.V = nn.Parameter(_uniform_(torch.empty(k, d, r), d))
            self.C = nn.Parameter(_uniform_(torch.empty(k, r, r), r))
            self.U = nn.Parameter(_uniform_(torch.empty(k, r, d), r))
            self.bias = nn.Parameter(torch.zeros(k, d)) if bias else None
            self.gate = nn.Linear(d, k, bias=False)
        elif low_rank is not None:
            self.down = nn.Linear(d, low_rank, bias=False)  # Vᵀ x: weight [r, d] = Vᵀ
            self.up = nn.Linear(low_rank, d, bias=bias)     # U (.) + b: weight [d, r] = U
        else:
            self.full = nn.Linear(d, d, bias=bias)          # W x + b
        if self.full is not None or self.up is not None:
            last = self.full if self.full is not None else self.up
            if last.bias is not None:
                nn.init.zeros_(last.bias)

    def forward(self, x0: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        if x is None:
            x = x0
        _check_width(x0, self.in_features, "CrossLayer", "x0")
        _check_width(x, self.in_features, "CrossLayer", "x")
        if self.version == "v1":
            out = x0 * self.weight(x) + x
            return out + self.bias if self.bias is not None else out
        if self.num_experts == 1:
            mixed = self.full(x) if self.full is not None else self.up(self.down(x))
            return x0 * mixed + x
        v = torch.tanh(torch.einsum("...d,kdr->...kr", x, self.V))
        v = torch.tanh(torch.einsum("...kr,krs->...ks", v, self.C))
        u = torch.einsum("...kr,krd->...kd", v, self.U)
        if self.bias is not None:
            u = u + self.bias
        experts = x0.unsqueeze(-2) * u                                  # [..., K, d]
        gates = torch.softmax(self.gate(x), dim=-1)                     # [..., K]
        return torch.einsum("...k,...kd->...d", gates, experts) + x

    def extra_repr(self) -> str:
        text = f"in_features={self.in_features}, version={self.version!r}"
        if self.low_rank is not None:
            text += f", low_rank={self.low_rank}"
        if self.num_experts > 1:
            text += f", num_experts={self.num_experts}"
        return text


class CrossNetwork(nn.Module):
    """``num_layers`` :class:`CrossLayer` s over one input: ``x0 = x``, ``x_{l+1} = cross_l(x0, x_l)``.

    ``forward(x)``: ``[..., in_features]`` → ``[..., in_features]``. The other arguments are passed to
    every layer (see :class:`CrossLayer` for the v1 / v2 / low-rank / mixture formulas).
    """

    def __init__(self, in_features: int, num_layers: int = 3, version: str = "v2", low_rank: int | None = None,
                 num_experts: int = 1, bias: bool = True) -> None:
        super().__init__()
        _positive_int("num_layers", num_layers)
        self.layers = nn.ModuleList(CrossLayer(in_features, version, low_rank, num_experts, bias)
                                    for _ in range(num_layers))
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = x
        for layer in self.layers:
            x = layer(x0, x)
        return x


# ----------------------------------------------------------------------------------------------
# MMoE


def _activation(name: str) -> nn.Module:
    """A ``torch.nn`` activation module by class name (``ReLU``, ``GELU``, ``torch.nn.SiLU``, ``Identity``)."""
    short = name.removeprefix("torch.nn.") if isinstance(name, str) else name
    if short == "Identity":
        return nn.Identity()
    names = [n for n in _activations.__all__ if n != "MultiheadAttention"]
    if short not in names:
        raise ParamError("expert_activation", f"unknown activation {name!r}"
                         + (f" ({suggestion(short, names)})" if suggestion(short, names) else
                            "; use a torch.nn activation class name such as ReLU, GELU, SiLU, Tanh or Identity"))
    try:
        return getattr(_activations, short)()
    except TypeError as exc:
        raise ParamError("expert_activation", f"{short} needs arguments; pick one that has none ({exc})") from None


class MMoE(nn.Module):
    """Multi-gate Mixture-of-Experts (Ma et al. 2018): shared experts, one softmax gate per task.

    For an input ``x`` of shape ``[B, in_features]`` (any leading dims work the same):

    * experts: ``E`` MLPs ``in_features → expert_hidden[0] → ... → d`` (``d = expert_hidden[-1]``), each
      linear layer followed by ``expert_activation`` and dropout; stacked: ``experts[b, e, :]``, ``[B, E, d]``;
    * gate of task ``t``: ``g_t = softmax(W_t x + c_t)``, ``[B, E]`` (sums to 1 over the experts);
    * task output: ``y_t[b, :] = Σ_e g_t[b, e] · experts[b, e, :]``, ``[B, d]``.

    ``forward(x)`` returns a tuple of ``num_tasks`` tensors (a spec reads ``<node>.output.0``, ...), or
    with ``task_names`` a dict keyed by those names (``<node>.output.<name>``). Nothing assumes the batch
    size equals the number of experts.
    """

    def __init__(self, in_features: int, num_experts: int, expert_hidden: int | Sequence[int], num_tasks: int,
                 expert_activation: str = "ReLU", dropout: float = 0.0,
                 task_names: Sequence[str] | None = None) -> None:
        super().__init__()
        d_in = _positive_int("in_features", in_features)
        e = _positive_int("num_experts", num_experts)
        t = _positive_int("num_tasks", num_tasks)
        hidden = [expert_hidden] if isinstance(expert_hidden, int) and not isinstance(expert_hidden, bool) \
            else list(expert_hidden) if isinstance(expert_hidden, list | tuple) else None
        if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
            raise ParamError("expert_hidden", f"expected a positive integer or a list of them, got {expert_hidden!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ParamError("dropout", f"expected a probability in [0, 1), got {dropout!r}")
        if task_names is not None:
            names = list(task_names)
            if len(names) != t:
                raise ParamError("task_names", f"{len(names)} name(s) for num_tasks={t}")
            bad = [n for n in names if not isinstance(n, str) or not n or n.lstrip("-").isdigit() or "." in n]
            if bad:
                raise ParamError("task_names", f"names must be non-numeric strings without dots, got {bad[0]!r}")
            if len(set(names)) != len(names):
                raise ParamError("task_names", "names must be unique")
            task_names = tuple(names)
        self.in_features, self.num_experts, self.num_tasks = d_in, e, t
        self.out_features = hidden[-1]
        self.task_names = task_names
        self.act = _activation(expert_activation)
        self.drop = nn.Dropout(dropout)
        sizes = [d_in, *hidden]
        self.weights = nn.ParameterList(nn.Parameter(_uniform_(torch.empty(e, a, b), a))
                                        for a, b in itertools.pairwise(sizes))
        self.biases = nn.ParameterList(nn.Parameter(_uniform_(torch.empty(e, b), a))
                                       for a, b in itertools.pairwise(sizes))
        self.gates = nn.ModuleList(nn.Linear(d_in, e) for _ in range(t))

    def experts(self, x: torch.Tensor) -> torch.Tensor:
        """Every expert's output: ``[..., in_features]`` → ``[..., E, d]``."""
        _check_width(x, self.in_features, "MMoE")
        h = self.drop(self.act(torch.einsum("...i,eio->...eo", x, self.weights[0]) + self.biases[0]))
        for w, b in zip(list(self.weights)[1:], list(self.biases)[1:]):
            h = self.drop(self.act(torch.einsum("...ei,eio->...eo", h, w) + b))
        return h

    def gate_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Every task's gate: ``[..., in_features]`` → ``[..., T, E]``, each row summing to 1."""
        return torch.stack([torch.softmax(g(x), dim=-1) for g in self.gates], dim=-2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...] | dict[str, torch.Tensor]:
        experts = self.experts(x)                                            # [..., E, d]
        gates = self.gate_weights(x)                                         # [..., T, E]
        mixed = torch.einsum("...te,...ed->...td", gates, experts)           # [..., T, d]
        outs = mixed.unbind(-2)
        if self.task_names is not None:
            return dict(zip(self.task_names, outs))
        return outs

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, num_experts={self.num_experts}, "
                f"expert_out={self.out_features}, num_tasks={self.num_tasks}")


# ----------------------------------------------------------------------------------------------
# categorical features


class FeatureEmbedding(nn.Module):
    """One embedding table per categorical column.

    Input: int ids ``[..., k]`` (``k = num_columns``; a ``[B]`` tensor is one column), id 0 = unknown
    (specml's vocabularies, fitted on the training rows, map unseen values and NULL to 0).
    Column ``j`` is looked up in its own table ``E_j ∈ R^{n_j × dim}``:

    * ``mode="concat"``: ``[E_1[x_1], ..., E_k[x_k]]`` → ``[..., k·dim]``;
    * ``mode="stack"``:  the same vectors stacked → ``[..., k, dim]`` (for attention / FM-style layers).

    ``num_embeddings``: one size for every column, or a list with one size per column (then
    ``num_columns`` may be left out). In a spec fed by a categorical model input, both may be left out:
    the builder takes the vocabulary size from the data (or the input's ``vocab_size``) and the number
    of columns from the input's shape. ``padding_idx=0`` makes the unknown id a fixed zero vector.
    """

    def __init__(self, num_embeddings: int | Sequence[int], embedding_dim: int, num_columns: int | None = None,
                 mode: str = "concat", padding_idx: int | None = None) -> None:
        super().__init__()
        dim = _positive_int("embedding_dim", embedding_dim)
        if isinstance(num_embeddings, list | tuple):
            sizes = [_positive_int("num_embeddings", n) for n in num_embeddings]
            if not sizes:
                raise ParamError("num_embeddings", "expected at least one size")
            if num_columns is not None and num_columns != len(sizes):
                raise ParamError("num_columns", f"{num_columns} columns but num_embeddings lists {len(sizes)} sizes")
        else:
            n = _positive_int("num_embeddings", num_embeddings)
            if num_columns is None:
                raise ParamError("num_columns", "needed when num_embeddings is one number (or give one size "
                                                "per column as a list)")
            sizes = [n] * _positive_int("num_columns", num_columns)
        if mode not in ("concat", "stack"):
            raise ParamError("mode", f"expected 'concat' or 'stack', got {mode!r}"
                             + (f" ({suggestion(str(mode), ['concat', 'stack'])})"
                                if suggestion(str(mode), ["concat", "stack"]) else ""))
        if padding_idx is not None and (isinstance(padding_idx, bool) or not isinstance(padding_idx, int)
                                        or not 0 <= padding_idx < min(sizes)):
            raise ParamError("padding_idx", f"expected an id in [0, {min(sizes)}), got {padding_idx!r}")
        self.num_columns, self.embedding_dim, self.mode = len(sizes), dim, mode
        self.tables = nn.ModuleList(nn.Embedding(n, dim, padding_idx=padding_idx) for n in sizes)

    @property
    def out_features(self) -> int:
        return self.num_columns * self.embedding_dim

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise TypeError(f"FeatureEmbedding takes integer ids, got {ids.dtype}; feed it a categorical input")
        if ids.dim() == 1 and self.num_columns == 1:
            ids = ids.unsqueeze(-1)
        if ids.dim() == 0 or ids.shape[-1] != self.num_columns:
            raise ValueError(f"FeatureEmbedding expects ids of shape [..., {self.num_columns}] "
                             f"(num_columns={self.num_columns}), got {list(ids.shape)}")
        vectors = torch.stack([table(ids[..., j]) for j, table in enumerate(self.tables)], dim=-2)
        return vectors.flatten(-2) if self.mode == "concat" else vectors

    def extra_repr(self) -> str:
        sizes = [t.num_embeddings for t in self.tables]
        shown = sizes[0] if len(set(sizes)) == 1 else sizes
        return (f"num_embeddings={shown}, embedding_dim={self.embedding_dim}, num_columns={self.num_columns}, "
                f"mode={self.mode!r}")


# ----------------------------------------------------------------------------------------------
# numeric features


class PeriodicEmbedding(nn.Module):
    """PLR numeric embeddings (Gorishniy et al. 2022, "On Embeddings for Numerical Features in Tabular
    Deep Learning"): each of the ``in_features`` scalar columns gets its own vector.

    For column ``j`` with value ``x_j`` and trainable frequencies ``c_j ∈ R^k`` (``k = frequencies``,
    initialised ``N(0, sigma²)``):

    * periodic: ``v_j = [cos(2π c_j x_j), sin(2π c_j x_j)] ∈ R^{2k}``;
    * linear: ``e_j = W_j v_j + b_j ∈ R^{embedding_dim}`` (``W_j`` per column; ``lite=True`` shares one ``W``);
    * ReLU (``activation=False`` drops it: the "PL" variant).

    ``forward(x)``: ``[..., in_features]`` → ``[..., in_features · embedding_dim]`` (``mode="concat"``) or
    ``[..., in_features, embedding_dim]`` (``mode="stack"``). Scale the inputs first (``normalize:
    quantile`` or ``standard``): ``sigma`` is relative to a unit spread.
    """

    def __init__(self, in_features: int, embedding_dim: int = 16, frequencies: int = 16, sigma: float = 0.1,
                 lite: bool = False, activation: bool = True, mode: str = "concat") -> None:
        super().__init__()
        n = _positive_int("in_features", in_features)
        d = _positive_int("embedding_dim", embedding_dim)
        k = _positive_int("frequencies", frequencies)
        if isinstance(sigma, bool) or not isinstance(sigma, int | float) or not sigma > 0:
            raise ParamError("sigma", f"expected a positive number (the frequencies' initial std), got {sigma!r}")
        if mode not in ("concat", "stack"):
            raise ParamError("mode", f"expected 'concat' or 'stack', got {mode!r}"
                             + (f" ({suggestion(str(mode), ['concat', 'stack'])})"
                                if suggestion(str(mode), ["concat", "stack"]) else ""))
        self.in_features, self.embedding_dim, self.frequencies = n, d, k
        self.sigma, self.lite, self.activation, self.mode = float(sigma), bool(lite), bool(activation), mode
        self.coefficients = nn.Parameter(torch.randn(n, k) * self.sigma)
        self.weight = nn.Parameter(_uniform_(torch.empty(1 if lite else n, 2 * k, d), 2 * k))
        self.bias = nn.Parameter(_uniform_(torch.empty(1 if lite else n, d), 2 * k))

    @property
    def out_features(self) -> int:
        return self.in_features * self.embedding_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_width(x, self.in_features, "PeriodicEmbedding")
        angle = 2 * math.pi * self.coefficients * x.unsqueeze(-1)                 # [..., n, k]
        periodic = torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)      # [..., n, 2k]
        out = torch.einsum("...nf,nfd->...nd", periodic, self.weight.expand(self.in_features, -1, -1))
        out = out + self.bias
        if self.activation:
            out = torch.relu(out)
        return out.flatten(-2) if self.mode == "concat" else out

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, embedding_dim={self.embedding_dim}, frequencies={self.frequencies}, "
                f"sigma={self.sigma:g}, lite={self.lite}, activation={self.activation}, mode={self.mode!r}")


# ----------------------------------------------------------------------------------------------
# parameter-efficient ensembles (TabM)


class BatchEnsembleMLP(nn.Module):
    """TabM-mini (Gorishniy et al. 2024, "TabM: Advancing Tabular Deep Learning with Parameter-Efficient
    Ensembling"): ``k`` MLPs that share every weight matrix, averaged at the output.

    Member ``i`` sees its own copy of the input scaled by a rank-1 adapter ``r_i ∈ R^{in_features}``
    (``x ⊙ r_i``, ``r_i`` initialised at ±1 at random, the rest of the network shared), then the shared
    layers ``Linear(hidden[l]) → ReLU → Dropout`` (dropout drawn per member), then a shared
    ``Linear(out_features)``. The output is the mean over the ``k`` members: ``[B, in_features]`` →
    ``[B, out_features]``. ``k = 1`` is a plain MLP with an input scaling. The loss sees the mean (TabM
    proper trains each member on its own loss; :meth:`members` gives their outputs).
    """

    def __init__(self, in_features: int, hidden: int | Sequence[int], out_features: int, k: int = 8,
                 dropout: float = 0.0) -> None:
        super().__init__()
        d_in = _positive_int("in_features", in_features)
        sizes = [hidden] if isinstance(hidden, int) and not isinstance(hidden, bool) \
            else list(hidden) if isinstance(hidden, list | tuple) else None
        if not sizes or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in sizes):
            raise ParamError("hidden", f"expected a positive integer or a list of them, got {hidden!r}")
        out = _positive_int("out_features", out_features)
        self.k = _positive_int("k", k)
        if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ParamError("dropout", f"expected a probability in [0, 1), got {dropout!r}")
        self.in_features, self.out_features = d_in, out
        self.adapters = nn.Parameter(torch.randint(0, 2, (self.k, d_in)).float() * 2 - 1)
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise([d_in, *sizes]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], out)

    def members(self, x: torch.Tensor) -> torch.Tensor:
        """Each member's output: ``[B, in_features]`` → ``[B, k, out_features]``."""
        _check_width(x, self.in_features, "BatchEnsembleMLP")
        return self.head(self.body(x.unsqueeze(-2) * self.adapters))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.members(x).mean(dim=-2)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}"


LAYERS: dict[str, type[nn.Module]] = {
    "Concat": Concat, "Stack": Stack, "Select": Select,
    "CrossLayer": CrossLayer, "CrossNetwork": CrossNetwork, "MMoE": MMoE, "FeatureEmbedding": FeatureEmbedding,
    "PeriodicEmbedding": PeriodicEmbedding, "BatchEnsembleMLP": BatchEnsembleMLP,
}
