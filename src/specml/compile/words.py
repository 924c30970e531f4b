"""An instruction in plain words -> a :class:`Request`: what was asked, and what was not understood.

Deterministic: an ordered list of regular expressions ("recognizers"). Each one that matches
records what it read and blanks the text it used, so that later ones cannot read it again. What is
left at the end is split into clauses; a clause that still holds a word outside a small list of
filler words ("build", "a", "model", "with", ...) is reported in ``Request.ignored``, never dropped.
No network, no model: the same words always give the same request.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from specml.compile.errors import CompileError

__all__ = ["ACTIVATIONS", "LOSSES", "OPTIMIZERS", "Request", "parse_instruction"]

#: hidden activation word -> torch.nn module
ACTIVATIONS = {
    "relu": "torch.nn.ReLU", "gelu": "torch.nn.GELU", "tanh": "torch.nn.Tanh", "leaky_relu": "torch.nn.LeakyReLU",
    "elu": "torch.nn.ELU", "selu": "torch.nn.SELU", "silu": "torch.nn.SiLU", "mish": "torch.nn.Mish",
    "sigmoid": "torch.nn.Sigmoid",
}
#: optimizer word -> torch.optim class
OPTIMIZERS = {
    "adam": "torch.optim.Adam", "adamw": "torch.optim.AdamW", "sgd": "torch.optim.SGD",
    "rmsprop": "torch.optim.RMSprop", "adagrad": "torch.optim.Adagrad", "adadelta": "torch.optim.Adadelta",
    "adamax": "torch.optim.Adamax", "nadam": "torch.optim.NAdam", "radam": "torch.optim.RAdam",
}
#: loss word -> (torch.nn loss, task it fits)
LOSSES = {
    "bce": ("torch.nn.BCELoss", "binary"), "bce_logits": ("torch.nn.BCEWithLogitsLoss", "binary"),
    "cross_entropy": ("torch.nn.CrossEntropyLoss", "multiclass"), "mse": ("torch.nn.MSELoss", "regression"),
    "l1": ("torch.nn.L1Loss", "regression"), "huber": ("torch.nn.HuberLoss", "regression"),
    "smooth_l1": ("torch.nn.SmoothL1Loss", "regression"),
}

_NUM = r"(?:\d+(?:\.\d+)?(?:e[-+]?\d+)?|\.\d+(?:e[-+]?\d+)?)"
_SEP = r"(?:\s*,\s*(?:and\s+)?|\s+and\s+|\s*/\s*|\s*->\s*|\s*→\s*|\s+)"
_LIST = rf"\d+(?:{_SEP}\d+)+"
_UNITS = r"(?:neurons?|units?|nodes?|dims?|dimensions?)"
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8}
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_COUNT = r"(\d+|one|two|three|four|five|six|seven|eight)"
_ACT = r"(leaky[\s_-]?relu|relu|gelu|tanh|selu|elu|silu|swish|mish|sigmoid)"
_OPT = r"(adamw|adam|sgd|rmsprop|adagrad|adadelta|adamax|nadam|radam)"

#: words that carry no request of their own: a clause made only of these is not "ignored"
FILLER = {"a", "an", "the", "and", "or", "with", "using", "use", "uses", "used", "for", "to", "of", "in", "on", "by", "from", "as", "at", "into", "per", "each", "all", "my", "our", "your", "its", "it", "this", "that", "these", "those", "which", "be", "is", "are", "should", "would", "could", "can", "will", "please", "i", "we", "me", "you", "let", "lets", "let's", "want", "need", "like", "build", "builds", "create", "make", "train", "trains", "training", "fit", "design", "construct", "give", "set", "up", "so", "then", "also", "etc", "just", "some", "model", "models", "network", "networks", "net", "nets", "neural", "deep", "simple", "basic", "small", "good", "new", "following", "follows", "setup", "data", "dataset", "table", "tables", "layer", "layers", "one", "both", "whether", "value", "values", "based", "given", "include", "includes", "including"}

_GENERIC_TARGET = {"prediction", "predictions", "classification", "regression", "detection", "training", "it",
                   "this", "that", "the target", "target", "forecasting", "estimation", ""}


@dataclass
class Request:
    """What an instruction asks for. ``None`` = not said (the compiler chooses and says so)."""

    text: str
    targets: list[str] = field(default_factory=list)  # target phrases, e.g. ["house prices"], ["price", "demand"]
    class_names: list[str] = field(default_factory=list)  # "(action, comedy, drama, etc.)"
    table_ref: str | None = None  # "using the X table"
    plan_ref: bool = False  # "according to the plan"
    task: str | None = None  # binary | multiclass | classification | regression | multi
    architecture: str | None = None  # mlp | dcn | mmoe | transformer | tabm
    num_experts: int | None = None
    hidden: list[int] | None = None
    hidden_count: int | None = None  # "3 hidden layers" / "3-layer network" without sizes
    dropout_all: float | None = None  # one value for every hidden layer (0.0 = no dropout)
    dropout_at: dict[int, float] = field(default_factory=dict)  # 0-based hidden layer -> p
    activation: str | None = None  # key of ACTIVATIONS
    lr: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    optimizer: str | None = None  # key of OPTIMIZERS
    momentum: float | None = None
    nesterov: bool = False
    weight_decay: float | None = None
    early_stopping: bool | None = None
    patience: int | None = None
    loss: str | None = None  # key of LOSSES
    output_activation: str | None = None  # sigmoid | softmax | linear
    output_units: int | None = None
    input_features: int | None = None
    validation_split: float | None = None
    seed: int | None = None
    embedding_dim: int | None = None
    gradient_clip_norm: float | None = None
    embed: list[str] = field(default_factory=list)  # "using user and movie embeddings": columns to embed
    inputs: list[str] = field(default_factory=list)  # "from user_id and movie_id": the only input columns
    normalize: str | None = None  # quantile | robust | standard: numeric scaling
    numeric_embedding: bool | None = None  # PLR embeddings of the numeric columns (False: "no numeric embeddings")
    schedule: bool | None = None  # cosine learning-rate schedule (False: "constant learning rate")
    understood: list[str] = field(default_factory=list)  # "lr 0.0001", ... (for the rationale)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # contradictions found while reading

    def dropouts(self, n_hidden: int) -> list[float] | None:
        """Dropout after each of ``n_hidden`` layers, or None when nothing was said."""
        if self.dropout_all is None and not self.dropout_at:
            return None
        base = self.dropout_all if self.dropout_all is not None else 0.0
        out = [base] * n_hidden
        for i, p in self.dropout_at.items():
            if i < n_hidden:
                out[i] = p
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropout_at"] = {str(k): v for k, v in self.dropout_at.items()}
        return d


# ----------------------------------------------------------------------------------------------
# helpers


def _num(text: str) -> float:
    return float(text)


def _count(text: str) -> int:
    return _NUMBER_WORDS.get(text.lower()) or int(text)


def _ints(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def _fraction(value: str, percent: str | None) -> float:
    v = float(value)
    return v / 100.0 if percent or (v.is_integer() and 1 < v < 100) else v


def _ordinal(word: str) -> int:
    word = word.lower()
    if word in _ORDINALS:
        return _ORDINALS[word]
    return int(re.match(r"\d+", word).group())


def _activation(word: str) -> str:
    w = re.sub(r"[\s_-]+", "", word.lower())
    return {"leakyrelu": "leaky_relu", "swish": "silu"}.get(w, w)


@dataclass
class _Reader:
    req: Request
    work: str  # the instruction, with what was read blanked out
    hidden_lines: list[tuple[int, int]] = field(default_factory=list)  # (position, 0-based index)
    loose_dropouts: list[tuple[int, float]] = field(default_factory=list)  # (position, p) with no scope

    def run(self, pattern: str, handle: Callable[[re.Match], bool | None]) -> None:
        """Apply ``handle`` to each match of ``pattern``; blank the match unless it returns False."""
        for m in list(re.finditer(pattern, self.work, re.IGNORECASE)):
            if self.work[m.start():m.end()].strip() == "":
                continue
            if handle(m) is not False:
                self.work = self.work[:m.start()] + " " * (m.end() - m.start()) + self.work[m.end():]


def _say(req: Request, text: str) -> None:
    if text not in req.understood:
        req.understood.append(text)


def _set(req: Request, attr: str, value: Any, said: str) -> None:
    old = getattr(req, attr)
    if old is not None and old != value and old != []:
        req.notes.append(f"{attr.replace('_', ' ')} given twice ({old} and {value}); using {value}")
    setattr(req, attr, value)
    _say(req, said)


# ----------------------------------------------------------------------------------------------
# recognizers, in the order they run


def _targets(r: _Reader) -> None:
    req = r.req
    stop = (r"(?=\s+(?:using|with|from|based\s+on|given|on\s+the|in\s+the|according|by|via|and\s+use|so\s+that)\b"
            r"|\s*[.:;(\n]|\s+-\s|$)")

    def add(m: re.Match) -> bool:
        phrase = re.sub(r"\s+", " ", m.group("t")).strip(" ,")
        phrase = re.sub(r"^(?:the|a|an|whether|if|which|both)\s+", "", phrase, flags=re.IGNORECASE)
        if phrase.lower() in _GENERIC_TARGET:
            return True
        parts = [p.strip() for p in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*", phrase) if p.strip()]
        for p in parts:
            if p.lower() not in [t.lower() for t in req.targets]:
                req.targets.append(p)
        _say(req, f"target: {phrase}")
        return True

    verb = r"\b(?:to\s+)?(?:predict(?:s|ing)?|forecast(?:s|ing)?|estimat(?:e|es|ing)|classify(?:ing)?|detect(?:s|ing)?)"
    item = r"[A-Za-z_][\w-]*(?:\s+[A-Za-z_][\w-]*)?"
    r.run(rf"{verb}\s+(?:both\s+)?(?P<t>{item}(?:\s*,\s*{item})+\s*,?\s+and\s+{item}){stop}", add)  # a, b and c
    r.run(rf"{verb}\s+(?:both\s+)?(?P<t>[^\n.:;(,]+?){stop.replace('|$)', '|,|$)')}", add)
    r.run(r"\bfor\s+(?:the\s+)?(?P<t>[\w\s-]+?)\s+(?:detection|prediction|classification|forecasting|estimation"
          r"|scoring)\b", add)
    r.run(rf"\b(?:classifier|model|regressor|network|predictor)\s+for\s+(?!prediction\b)(?P<t>[^\n.:;(]+?){stop}", add)

    r.run(r"(?:^|(?<=[\n.;]))\s*for\s+(?:the\s+)?(?P<t>[^\n.:;(,]+?)(?=\s+(?:using|with|from|based\s+on|by)\b"
          r"|\s*[.:;(,\n]|\s+-\s|$)", add)


def _class_names(r: _Reader) -> None:
    """"predict movie genres (action, comedy, drama, etc.)": the classes, named in brackets."""
    req = r.req

    def classes(m: re.Match) -> bool:
        names = [x.strip() for x in m.group(1).split(",")]
        names = [x for x in names if x and x.lower().rstrip(".") not in ("etc", "and so on", "...")]
        if not all(re.search(r"[A-Za-z]", x) for x in names):
            return False
        req.class_names = names
        _say(req, f"classes named: {', '.join(names)}")
        return True

    if req.targets:
        r.run(r"\(\s*([^()\n]*,[^()\n]*)\)", classes)


def _references(r: _Reader) -> None:
    req = r.req

    def plan(m: re.Match) -> None:
        req.plan_ref = True
        _say(req, "build from the plan")

    r.run(r"\b(?:according\s+to|following|from|as\s+in|per)\s+(?:the|my|this)\s+(?:ml\s+)?plan\b", plan)

    def table(m: re.Match) -> None:
        req.table_ref = m.group(1)
        _say(req, f"table {m.group(1)}")

    r.run(r"\b(?:using|from|on|in|with)\s+(?:the\s+)?([A-Za-z_][\w.]*)\s+(?:table|data\s*set|dataset)\b", table)


def _custom_layers(r: _Reader) -> None:
    req = r.req

    def input_layer(m: re.Match) -> None:
        req.input_features = int(m.group(1))
        _say(req, f"input layer: {m.group(1)} features")

    r.run(r"\binput\s+layer\s*(?:with|of|:|=)?\s*(\d+)\s*(?:features?|inputs?|columns?|" + _UNITS + r")", input_layer)

    def hidden_line(m: re.Match) -> None:
        index, size = int(m.group(1)) - 1, int(m.group(2))
        hidden = list(req.hidden or [])
        while len(hidden) <= index:
            hidden.append(0)
        hidden[index] = size
        req.hidden = hidden
        r.hidden_lines.append((m.start(), index))
        if m.group(3):
            req.activation = _activation(m.group(3))
        _say(req, f"hidden layer {index + 1}: {size}")

    r.run(rf"\bhidden\s+layer\s*#?(\d+)\s*[:=-]?\s*(\d+)\s*{_UNITS}?(?:\s*(?:with|,|and|using)?\s*(?:an?\s+)?"
          rf"{_ACT}(?:\s+activation)?)?", hidden_line)

    def output_layer(m: re.Match) -> None:
        req.output_units = int(m.group(1))
        if m.group(2):
            req.output_activation = m.group(2).lower().replace("identity", "linear").replace("none", "linear")
        _say(req, f"output layer: {m.group(1)} unit(s)" + (f" with {m.group(2)}" if m.group(2) else ""))

    r.run(rf"\boutput\s+layer\s*(?:with|of|:|=|-)?\s*(\d+)\s*{_UNITS}?(?:\s*(?:with|,|and|using)?\s*(?:an?\s+)?"
          r"(sigmoid|softmax|linear|identity|none)(?:\s+activation)?)?", output_layer)


def _architecture(r: _Reader) -> None:
    req = r.req

    def arch(name: str, said: str) -> Callable[[re.Match], None]:
        def handle(m: re.Match) -> None:
            _set(req, "architecture", name, said)
        return handle

    r.run(r"\b(?:deep\s*(?:&|and|\+)\s*cross(?:\s+(?:neural\s+)?network)?(?:\s*\(?\s*dcn(?:[\s-]?v2)?\s*\)?)?"
          r"|dcn(?:[\s-]?v2)?|cross[\s-]+network)(?:\s+v2)?\b", arch("dcn", "architecture: DCN-v2"))
    r.run(r"\b(?:multi[\s-]?gate\s+)?mixture[\s-]+of[\s-]+experts(?:\s*\(?\s*mmoe\s*\)?)?|\bmmoe\b",
          arch("mmoe", "architecture: MMoE"))
    r.run(r"\btabm(?:[\s-]?mini)?\b|\bbatch[\s-]?ensemble(?:\s+mlp)?\b|\bparameter[\s-]efficient\s+ensembl(?:e|ing)\b",
          arch("tabm", "architecture: TabM-mini"))
    r.run(r"\b(?:tab(?:ular)?[\s-]?|ft[\s-]?)?transformer(?:\s+encoder)?\b", arch("transformer", "architecture: transformer"))
    r.run(r"\b(?:mlp|multi[\s-]?layer\s+perceptron|feed[\s-]?forward(?:\s+(?:neural\s+)?network)?"
          r"|fully[\s-]?connected(?:\s+(?:neural\s+)?network)?|dense\s+(?:neural\s+)?network)\b", arch("mlp", "architecture: MLP"))

    def experts(m: re.Match) -> None:
        _set(req, "num_experts", int(m.group(1)), f"{m.group(1)} experts")

    r.run(r"\b(\d+)\s+experts\b|\bexperts\s*[:=]\s*(\d+)", lambda m: _set(
        req, "num_experts", int(m.group(1) or m.group(2)), f"{m.group(1) or m.group(2)} experts"))


def _task(r: _Reader) -> None:
    req = r.req

    def task(name: str) -> Callable[[re.Match], None]:
        def handle(m: re.Match) -> None:
            if req.task not in (None, "classification") and req.task != name and name != "classification":
                req.notes.append(f"the words ask for both {req.task} and {name}; using {req.task}")
                return
            if req.task in (None, "classification"):
                req.task = name
            _say(req, f"task: {name}")
        return handle

    r.run(r"\bbinary(?:\s+|-)(?:classifi(?:er|cation)|model|prediction)\b|\bbinary\b", task("binary"))
    r.run(r"\bmulti[\s-]?class(?:\s+classifi(?:er|cation))?\b|\bmulti[\s-]?label\b", task("multiclass"))
    r.run(r"\bmulti[\s-]?(?:output|task|target)(?:\s+(?:model|regression|learning))?\b", task("multi"))
    r.run(r"\b(?:regression(?:\s+model)?|regressor)\b", task("regression"))
    r.run(r"\b(?:classifi(?:er|cation)(?:\s+model)?|categori[sz]e)\b", task("classification"))


def _hidden(r: _Reader) -> None:
    req = r.req

    def sizes(values: list[int], said: str) -> None:
        if req.hidden and req.hidden != values:
            req.notes.append(f"hidden sizes given twice ({req.hidden} and {values}); using {values}")
        req.hidden = values
        _say(req, said)

    def count_and_list(m: re.Match) -> None:
        n, values = _count(m.group(1)), _ints(m.group(2))
        if len(values) != n:
            req.notes.append(f"'{m.group(0).strip()}' says {n} layers but lists {len(values)} sizes; "
                             f"using the sizes {values}")
        sizes(values, f"hidden layers {values}")

    r.run(rf"\b{_COUNT}\s+(?:hidden\s+)?(?:dense\s+|linear\s+)?layers?\s*(?:with|of|:|=|sized|sizes?|having)?\s*"
          rf"[\[(]?\s*({_LIST})\s*[\])]?\s*{_UNITS}?(?:\s+each)?", count_and_list)

    def count_same(m: re.Match) -> None:
        n, size = _count(m.group(1)), int(m.group(2))
        sizes([size] * n, f"hidden layers {[size] * n}")

    r.run(rf"\b{_COUNT}\s+(?:hidden\s+)?(?:dense\s+|linear\s+)?layers?\s*(?:with|of|:|=)?\s*(\d+)\s*{_UNITS}"
          r"(?:\s+each)?", count_same)

    def named_list(m: re.Match) -> None:
        sizes(_ints(m.group(1)), f"hidden layers {_ints(m.group(1))}")

    r.run(rf"\b(?:deep\s+network|hidden\s+(?:layer\s+)?(?:sizes?|units|dims|widths?)|hidden\s+layers|layer\s+sizes?"
          rf"|layers|architecture|widths?)\s*(?:of|:|=|with|-)?\s*[\[(]?\s*({_LIST})\s*[\])]?\s*{_UNITS}?", named_list)
    r.run(rf"[\[(]?\b({_LIST})\s*[\])]?\s*{_UNITS}\b", named_list)

    def count_only(m: re.Match) -> None:
        _set(req, "hidden_count", _count(m.group(1)), f"{m.group(1)} hidden layers")

    r.run(rf"\b{_COUNT}(?:\s+|-)(?:hidden(?:\s+|-))?layers?(?:\s+deep)?\b", count_only)
    r.run(r"\bdepth\s*(?:of|:|=)?\s*(\d+)\b", count_only)


def _dropout(r: _Reader) -> None:
    req = r.req

    def at(m: re.Match) -> None:
        i = _ordinal(m.group(3)) - 1 if m.group(3).lower() != "last" else -1
        p = _fraction(m.group(1), m.group(2))
        if i < 0:
            i = max(len(req.hidden or []) - 1, 0)
        req.dropout_at[i] = p
        _say(req, f"dropout {p:g} after hidden layer {i + 1}")

    ordinal = r"(first|second|third|fourth|fifth|sixth|seventh|eighth|last|\d+(?:st|nd|rd|th))"
    r.run(rf"({_NUM})\s*(%)?\s*(?:dropout\s+)?(?:after|on|for|in)\s+(?:the\s+)?{ordinal}(?:\s+(?:hidden\s+)?layer)?",
          at)

    def none(m: re.Match) -> None:
        req.dropout_all = 0.0
        _say(req, "no dropout")

    r.run(r"\b(?:no|without|disable|zero)\s+dropout\b|\bdropout\s*(?::|=|of)?\s*(?:none|off|0(?:\.0+)?)(?![.\d])", none)

    everywhere = (r"(?:after|on|for|in|between)\s+(?:each|every|all)(?:\s+(?:of\s+the\s+)?(?:hidden\s+)?(?:layers?|"
                  r"hidden)\b)?")

    def keyword(m: re.Match) -> None:
        values = [(_fraction(v, pct)) for v, pct in re.findall(rf"({_NUM})\s*(%)?", m.group("v") or "")]
        if not values:
            if not req.dropout_at and req.dropout_all is None:
                r.loose_dropouts.append((m.start(), -1.0))  # "with dropout": default value
                _say(req, "dropout")
            return
        if m.group("all"):
            req.dropout_all = values[0]
            _say(req, f"dropout {values[0]:g} after each hidden layer")
        elif len(values) > 1:
            for i, p in enumerate(values):
                req.dropout_at[i] = p
            _say(req, f"dropout {values}")
        else:
            r.loose_dropouts.append((m.start(), values[0]))

    r.run(rf"\bdropout(?:\s+(?:rates?|probability|of|p))*\s*(?::|=|-)?\s*(?P<v>{_NUM}\s*%?(?:{_SEP}{_NUM}\s*%?)*)?"
          rf"\s*(?P<all>{everywhere})?", keyword)
    r.run(rf"(?P<v>{_NUM})\s*(?:%\s*)?dropout\b\s*(?P<all>{everywhere})?", keyword)


def _resolve_dropouts(r: _Reader) -> None:
    req = r.req
    loose = sorted(r.loose_dropouts)
    if not loose:
        return
    if r.hidden_lines:  # "Hidden layer 1: ...\n Dropout: 0.3": the dropout follows the layer before it
        for pos, p in loose:
            before = [i for start, i in r.hidden_lines if start < pos]
            i = before[-1] if before else 0
            req.dropout_at[i] = 0.2 if p < 0 else p
            _say(req, f"dropout {req.dropout_at[i]:g} after hidden layer {i + 1}")
    elif len(loose) == 1:
        p = loose[0][1]
        if p >= 0:
            req.dropout_all = p
            _say(req, f"dropout {p:g} after each hidden layer")
        elif req.dropout_all is None:
            req.dropout_all = 0.2
            req.notes.append("'dropout' without a value: using 0.2 after each hidden layer")
    else:
        for i, (_, p) in enumerate(loose):
            req.dropout_at[i] = 0.2 if p < 0 else p
        _say(req, f"dropout {[req.dropout_at[i] for i in range(len(loose))]}")


def _training(r: _Reader) -> None:
    req = r.req

    r.run(rf"\b(?:learning[\s_-]?rate|lr)\s*(?:of|:|=|is|to|at|-)?\s*({_NUM})",
          lambda m: _set(req, "lr", _num(m.group(1)), f"lr {_num(m.group(1)):g}"))
    r.run(rf"({_NUM})\s+(?:learning[\s_-]?rate|lr)\b",
          lambda m: _set(req, "lr", _num(m.group(1)), f"lr {_num(m.group(1)):g}"))
    r.run(r"\bbatch(?:[\s_-]?size)?\s*(?:of|:|=|is|-)?\s*(\d+)\b|\b(\d+)\s+(?:samples\s+|rows\s+)?(?:per|a)\s+batch\b"
          r"|\bbatches\s+of\s+(\d+)\b",
          lambda m: _set(req, "batch_size", int(next(g for g in m.groups() if g)),
                         f"batch size {next(g for g in m.groups() if g)}"))
    r.run(r"\b(?:train(?:ed|ing)?\s+)?(?:for\s+)?(?:up\s+to\s+|max(?:imum)?\s+(?:of\s+)?)?(\d+)\s*-?\s*epochs?\b"
          r"|\b(?:max(?:imum)?\s+)?epochs?\s*(?:of|:|=|-)?\s*(\d+)\b",
          lambda m: _set(req, "epochs", int(m.group(1) or m.group(2)), f"{m.group(1) or m.group(2)} epochs"))

    def momentum(m: re.Match) -> None:
        req.nesterov = req.nesterov or bool(m.group(1))
        _set(req, "momentum", _num(m.group(2)) if m.group(2) else 0.9,
             f"momentum {m.group(2) or '0.9'}" + (" (nesterov)" if m.group(1) else ""))

    def optimizer(m: re.Match) -> None:
        word = m.group(1) or m.group(2)
        _set(req, "optimizer", word.lower(), f"optimizer {word}")

    r.run(rf"\b(?:optimi[sz]er\s*(?::|=|is)?\s*){_OPT}\b|\b{_OPT}(?:\s+optimi[sz](?:er|ation))?\b", optimizer)
    r.run(rf"\b(?:with\s+)?(nesterov\s+)?momentum\s*(?:of|:|=|-)?\s*({_NUM})?", momentum)
    r.run(rf"\b(?:weight[\s_-]?decay|l2(?:\s+(?:regulari[sz]ation|penalty))?)\s*(?:of|:|=|-)?\s*({_NUM})?",
          lambda m: _set(req, "weight_decay", _num(m.group(1)) if m.group(1) else 0.01,
                         f"weight decay {m.group(1) or '0.01'}"))

    def no_stop(m: re.Match) -> None:
        req.early_stopping = False
        _say(req, "no early stopping")

    r.run(r"\b(?:no|without|disable|turn\s+off)\s+early[\s_-]?stopping\b", no_stop)

    def stop(m: re.Match) -> None:
        req.early_stopping = True
        if m.group(1):
            _set(req, "patience", int(m.group(1)), f"early stopping, patience {m.group(1)}")
        _say(req, "early stopping")

    r.run(r"\b(?:use\s+)?early[\s_-]?stopping(?:\s*(?:with|,|\()?\s*(?:a\s+)?patience\s*(?:of|:|=)?\s*(\d+)"
          r"(?:\s+epochs?)?\)?)?", stop)
    r.run(r"\bpatience\s*(?:of|:|=)?\s*(\d+)(?:\s+epochs?)?",
          lambda m: (_set(req, "patience", int(m.group(1)), f"patience {m.group(1)}"),
                     setattr(req, "early_stopping", req.early_stopping if req.early_stopping is False else True)))
    r.run(r"\bstop\s+(?:training\s+)?(?:early\s+)?(?:if|when|after)\s+(?:the\s+)?(?:val(?:idation)?\s+loss\s+)?"
          r"(?:does\s+not|doesn't|has\s+not)\s+improve(?:d)?\s+(?:for|in|after)\s+(\d+)\s+epochs?",
          lambda m: (_set(req, "patience", int(m.group(1)), f"patience {m.group(1)}"),
                     setattr(req, "early_stopping", True)))

    def loss(key: str) -> Callable[[re.Match], None]:
        return lambda m: _set(req, "loss", key, f"loss {LOSSES[key][0].rsplit('.', 1)[-1]}")

    r.run(r"\bbce[\s_-]?with[\s_-]?logits(?:[\s_-]?loss)?\b|\bbinary\s+cross[\s-]?entropy\s+with\s+logits\b",
          loss("bce_logits"))
    r.run(r"\bbce(?:[\s_-]?loss)?\b|\bbinary\s+cross[\s-]?entropy(?:\s+loss)?\b|\blog[\s-]?loss\b", loss("bce"))
    r.run(r"\b(?:categorical\s+)?cross[\s_-]?entropy(?:[\s_-]?loss)?\b", loss("cross_entropy"))
    r.run(r"\bmse(?:[\s_-]?loss)?\b|\bmean\s+squared\s+error(?:\s+loss)?\b|\bl2\s+loss\b", loss("mse"))
    r.run(r"\bsmooth[\s_-]?l1(?:[\s_-]?loss)?\b", loss("smooth_l1"))
    r.run(r"\bhuber(?:[\s_-]?loss)?\b", loss("huber"))
    r.run(r"\bl1(?:[\s_-]?loss)?\b|\bmae(?:\s+loss)?\b|\bmean\s+absolute\s+error(?:\s+loss)?\b", loss("l1"))

    def output_act(m: re.Match) -> None:
        _set(req, "output_activation", (m.group(1) or m.group(2)).lower(), f"output {(m.group(1) or m.group(2))}")

    r.run(r"\b(sigmoid|softmax)\s+(?:output|at\s+the\s+output|on\s+the\s+output|activation\s+on\s+the\s+output)\b"
          r"|\boutput\s+(?:activation\s*)?(?::|=|with|of|-)?\s*(?:an?\s+)?(sigmoid|softmax|linear)\b", output_act)
    r.run(rf"\b(?:(?:hidden\s+)?activation(?:\s+function)?\s*(?::|=|is|of|-)?\s*)?{_ACT}(?:\s+activations?)?"
          rf"(?:\s+(?:activation\s+)?(?:everywhere|throughout|in\s+(?:the\s+)?hidden\s+layers))?\b",
          lambda m: _set(req, "activation", _activation(m.group(1)), f"activation {_activation(m.group(1))}"))

    r.run(rf"\bvalidation(?:\s+split|\s+set|\s+fraction)?\s*(?:of|:|=|-)?\s*({_NUM})\s*(%)?"
          rf"|\b({_NUM})\s*(%)\s+(?:of\s+the\s+(?:rows|data)\s+)?(?:for\s+|as\s+)?validation\b",
          lambda m: _set(req, "validation_split", _fraction(m.group(1) or m.group(3), m.group(2) or m.group(4)),
                         f"validation split {_fraction(m.group(1) or m.group(3), m.group(2) or m.group(4)):g}"))
    r.run(r"\b(?:random\s+)?seed\s*(?:of|:|=)?\s*(\d+)\b",
          lambda m: _set(req, "seed", int(m.group(1)), f"seed {m.group(1)}"))
    r.run(r"\bembedding(?:s)?\s*(?:dim(?:ension)?s?|size)?\s*(?:of|:|=)?\s*(\d+)\b|\b(\d+)[\s-]*dim(?:ensional)?\s+embeddings?\b",
          lambda m: _set(req, "embedding_dim", int(m.group(1) or m.group(2)),
                         f"embedding dim {m.group(1) or m.group(2)}"))
    r.run(rf"\b(?:gradient\s+)?clip(?:ping)?(?:\s+(?:the\s+)?(?:grad(?:ient)?s?|gradient\s+norm|norm))*\s*"
          rf"(?:at|to|of|:|=)?\s*({_NUM})",
          lambda m: _set(req, "gradient_clip_norm", _num(m.group(1)), f"gradient clipping {m.group(1)}"))


def _harmless(r: _Reader) -> None:
    """Phrases that describe the goal without asking for anything specific."""
    for pattern in (r"\bto\s+capture\s+(?:the\s+)?(?:feature\s+)?interactions?(?:\s+between\s+features)?\b",
                    r"\b(?:for|to\s+make)\s+predictions?\b", r"\bfeature\s+interactions?\b",
                    r"\betc\.?", r"\b(?:following|this)\s+architecture\b", r"\bneurons?\b|\bunits?\b",
                    r"\bhidden\b", r"\bfeatures?\b", r"\bof\s+the\s+data\b"):
        r.run(pattern, lambda m: None)


_ITEM_STOP = (r"(?:with|using|and|or|to|by|via|in|on|for|as|the|a|an|then|so|no|without|embeddings?|columns?|features?"
              r"|layers?|numeric(?:al)?|periodic|plr)")
_ITEM = rf"(?!{_ITEM_STOP}\b)[A-Za-z_][\w-]*(?:\s+(?!{_ITEM_STOP}\b)[A-Za-z_][\w-]*)?"
_ITEMS = rf"{_ITEM}(?:\s*,\s*{_ITEM})*(?:\s*,?\s*(?:and|&)\s+{_ITEM})?"


def _items(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s*&\s*", text) if p.strip()]


def _columns(r: _Reader) -> None:
    """Words that name input columns: "using user and movie embeddings" (embed those columns), "from
    user_id and movie_id" (only those columns are inputs), and how numeric columns are scaled/embedded."""
    req = r.req

    def scaling(kind: str) -> Callable[[re.Match], None]:
        return lambda m: _set(req, "normalize", kind, f"{kind} scaling")

    r.run(r"\b(?:robust(?:[\s-]+(?:scal(?:ing|er)|normali[sz]ation|normali[sz]e))?|median[\s/-]+iqr(?:\s+scaling)?)\b",
          scaling("robust"))
    r.run(r"\bquantile(?:[\s-]+(?:transform(?:er|ation)?|scal(?:ing|er)|normali[sz]ation))?\b", scaling("quantile"))
    r.run(r"\b(?:standard(?:[\s-]+(?:scal(?:ing|er)|normali[sz]ation))|standardi[sz](?:e|ed|ation)"
          r"(?:\s+(?:inputs?|features?))?|z[\s-]?scores?)\b", scaling("standard"))

    def switch(field: str, said_on: str, said_off: str) -> Callable[[bool], Callable[[re.Match], None]]:
        """The rule setting ``field`` on or off, and what it says it did."""
        return lambda on: lambda m: _set(req, field, on, said_on if on else said_off)

    plr = switch("numeric_embedding", "numeric embeddings", "no numeric embeddings")

    r.run(r"\b(?:no|without)\s+(?:numeric(?:al)?\s+|periodic\s+|plr\s+)+embeddings?\b"
          r"|\b(?:no|without)\s+plr\b", plr(False))
    r.run(r"\b(?:plr|periodic)(?:\s+(?:numeric(?:al)?\s+)?embeddings?)?\b|\bnumeric(?:al)?\s+embeddings?\b",
          plr(True))

    schedule = switch("schedule", "cosine schedule", "constant learning rate")

    r.run(r"\b(?:constant|fixed)\s+(?:learning[\s_-]?rate|lr)\b|\b(?:no|without)\s+(?:lr\s+|learning[\s-]rate\s+)?"
          r"(?:schedul(?:e|er|ing)|annealing|decay\s+schedule)\b", schedule(False))
    r.run(r"\bcosine(?:\s+(?:annealing|decay))?(?:\s+(?:lr|learning[\s-]rate))?(?:\s+schedul(?:e|er))?\b",
          schedule(True))

    def embed(m: re.Match) -> None:
        for item in _items(m.group("l")):
            if item.lower() not in [e.lower() for e in req.embed]:
                req.embed.append(item)
        _say(req, f"embeddings of {m.group('l').strip()}")

    r.run(rf"\b(?:using|with|plus|and)\s+(?:an?\s+)?(?P<l>{_ITEMS})\s+(?:id\s+)?embeddings?\b", embed)
    r.run(rf"\bembed(?:ding|dings|s)?\s+(?:the\s+)?(?:columns?\s+)?(?P<l>{_ITEMS})", embed)

    def inputs(m: re.Match) -> None:
        for item in _items(m.group("l")):
            if item.lower() not in [e.lower() for e in req.inputs]:
                req.inputs.append(item)
        _say(req, f"inputs: {m.group('l').strip()}")

    r.run(rf"\b(?:from|given|based\s+on)\s+(?:only\s+)?(?:the\s+)?(?:columns?\s+)?(?P<l>{_ITEMS})"
          rf"(?=\s*(?:$|[.;,:\n(]|\s(?:with|using|to|and\s+(?:use|train))\b))", inputs)


_CLAUSE = re.compile(r"\n|;|,|(?<!\d)\.(?!\d)|:|\(|\)|\s-\s|^\s*-\s|\s\*\s")


def _leftovers(original: str, work: str) -> list[str]:
    ignored = []
    start = 0
    bounds = [(m.start(), m.end()) for m in _CLAUSE.finditer(work)] + [(len(work), len(work))]
    for b0, b1 in bounds:
        piece = work[start:b0]
        start = b1
        words = re.findall(r"[A-Za-z][\w'&+-]*|\d+(?:\.\d+)?%?", piece)
        if any(w.lower().strip("'") not in FILLER for w in words):
            text = " ".join(w for w in re.findall(r"\S+", piece))
            text = re.sub(r"^(?:(?:with|and|also|then|plus|but)\s+)+", "", text.strip(" -*•·,"), flags=re.IGNORECASE)
            if text:
                ignored.append(text)
    return ignored


def parse_instruction(text: str) -> Request:
    """Read an instruction; every phrase is either understood (``understood``) or reported (``ignored``)."""
    req = Request(text=text)
    r = _Reader(req, text)
    for step in (_references, _targets, _custom_layers, _architecture, _task, _columns, _hidden, _dropout, _training,
                 _class_names, _harmless):
        step(r)
    _resolve_dropouts(r)
    if req.hidden and 0 in req.hidden:
        missing = [i + 1 for i, s in enumerate(req.hidden) if s == 0]
        req.notes.append(f"hidden layer(s) {missing} have no size; they are left out")
        req.hidden = [s for s in req.hidden if s]
    if req.hidden and req.hidden_count and req.hidden_count != len(req.hidden):
        req.notes.append(f"{req.hidden_count} layers asked, {len(req.hidden)} sizes given; using the sizes {req.hidden}")
    for p in [*req.dropout_at.values(), *([req.dropout_all] if req.dropout_all is not None else [])]:
        if not 0.0 <= p < 1.0:
            raise CompileError(f"dropout {p:g} is not a probability in [0, 1)")
    req.ignored = _leftovers(text, r.work)
    return req
