"""Optional LLM backend: an OpenAI-compatible chat endpoint proposes the two specs.

Used only when ``SPECML_LLM_BASE_URL`` is set (``SPECML_LLM_API_KEY`` and ``SPECML_LLM_MODEL``
optional). The offline compiler always runs first: its draft goes into the prompt, and it is the
answer whenever the endpoint fails, times out, or proposes specs that do not validate or do not fit
the table (unknown columns, the target used as a feature). Proposed specs pass the same checks
as the offline ones (``load_spec(..., check=True)``).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from typing import Any

from specml.compile.build import Compiled, compile_spec, validate_specs
from specml.compile.profile import TableProfile

__all__ = ["compile_with_backend", "llm_configured", "propose"]

ENV_URL, ENV_KEY, ENV_MODEL = "SPECML_LLM_BASE_URL", "SPECML_LLM_API_KEY", "SPECML_LLM_MODEL"
DEFAULT_MODEL = "gpt-4o-mini"
TIMEOUT_S = 60.0

_SYSTEM = """You write specml specs. Answer with exactly two fenced YAML blocks: first the model spec
(```yaml model), then the trainer spec (```yaml trainer), then one short paragraph of rationale.
Model spec: inputs (dtype, shape [null, k], columns, normalize: standard for numbers; text columns:
dtype int64, shape [null], categorical: true, embedding_dim), graph (list of nodes: name, type
torch.nn.* / torch.* / specml.layers.*, params, inputs), outputs (name -> node.output), loss (type,
inputs: {input: <output name>, target: <column>}). Trainer spec: optimizer {type, lr, params},
config {epochs, batch_size, validation_split, early_stopping_patience, seed}. Never use the target
column as an input. Start from the draft and change only what the instruction asks."""


def llm_configured() -> bool:
    return bool(os.environ.get(ENV_URL))


def _request(messages: list[dict], timeout: float) -> str:
    base = os.environ[ENV_URL].rstrip("/")
    url = base if base.endswith("/chat/completions") else f"{base}/chat/completions"
    body = json.dumps({"model": os.environ.get(ENV_MODEL) or DEFAULT_MODEL, "messages": messages,
                       "temperature": 0}).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get(ENV_KEY):
        headers["Authorization"] = f"Bearer {os.environ[ENV_KEY]}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        payload = json.loads(resp.read().decode("utf-8"))
    return payload["choices"][0]["message"]["content"]


def _blocks(text: str) -> tuple[dict, dict, str]:
    from specml.spec.yaml_io import parse_yaml

    found = re.findall(r"```[ \t]*(?:ya?ml)?[^\n]*\n(.*?)```", text, re.DOTALL)
    docs = [parse_yaml(b)[0] for b in found]
    model = next((d for d in docs if isinstance(d, dict) and "graph" in d), None)
    trainer = next((d for d in docs if isinstance(d, dict) and "optimizer" in d and "graph" not in d), None)
    if model is None or trainer is None:
        raise ValueError(f"the answer holds {len(found)} YAML block(s), not a model spec and a trainer spec")
    rest = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    return model, trainer, " ".join(rest.split())


def _fits_table(model: dict, profile: TableProfile) -> None:
    names = set(profile.names)
    used = [c for inp in (model.get("inputs") or {}).values() if isinstance(inp, dict) for c in inp.get("columns") or []]
    losses = model.get("loss")
    losses = losses if isinstance(losses, list) else [losses] if losses else []
    targets = [(l.get("inputs") or {}).get("target") for l in losses if isinstance(l, dict)]
    unknown = sorted({c for c in [*used, *targets] if c not in names})
    if unknown:
        raise ValueError(f"columns not in table '{profile.table}': {', '.join(map(str, unknown))}")
    if not targets or None in targets:
        raise ValueError("the model spec names no loss target")
    leaked = sorted(set(used) & set(targets))
    if leaked:
        raise ValueError(f"the target {', '.join(leaked)} is also an input")


def propose(instruction: str, profile: TableProfile, draft: Compiled, timeout: float = TIMEOUT_S) -> Compiled:
    """Ask the endpoint for specs; return them validated (raises on any failure)."""
    context: dict[str, Any] = {"table": profile.to_dict(), "draft_model": draft.model, "draft_trainer": draft.trainer}
    messages = [{"role": "system", "content": _SYSTEM},
                {"role": "user", "content": f"Instruction: {instruction}\n\nTable and offline draft (JSON):\n"
                                            f"{json.dumps(context, default=str)}"}]
    model, trainer, rationale = _blocks(_request(messages, timeout))
    _fits_table(model, profile)
    validate_specs(model, trainer)
    losses = model["loss"] if isinstance(model["loss"], list) else [model["loss"]]
    targets = [l["inputs"]["target"] for l in losses]
    return Compiled(model=model, trainer=trainer, rationale=rationale or draft.rationale,
                    notes=[*draft.notes, "specs proposed by the LLM backend and validated"],
                    ignored=list(draft.ignored), target=targets[0] if len(targets) == 1 else targets,
                    task=draft.task if targets == draft.targets else "as proposed",
                    tasks=draft.tasks if targets == draft.targets else {}, architecture=draft.architecture,
                    features=draft.features, request=draft.request, source="llm")


def compile_with_backend(instruction: str, profile: TableProfile, *, name: str | None = None,
                         timeout: float = TIMEOUT_S) -> Compiled:
    """The offline compiler's specs, or, when an LLM endpoint is configured and its answer validates, those."""
    draft = compile_spec(instruction, profile, name=name)
    if not llm_configured():
        return draft
    try:
        return propose(instruction, profile, draft, timeout)
    except Exception as err:  # noqa: BLE001 -- any failure of the optional backend falls back, said
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if isinstance(err, urllib.error.URLError | TimeoutError | OSError):
            reason = f"endpoint unreachable: {reason}"
        draft.notes.append(f"LLM backend not used ({type(err).__name__}: {reason[:300]}); "
                           "specs from the offline compiler")
        return draft
