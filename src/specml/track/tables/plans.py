"""ML plans (``plans``, written by ``specml plan``): a JSON body per row, shown to users as ``plan-<id>``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from specml.spec.errors import suggestion
from specml.track.store import RegistryError, Row, Store, now

PLAN_PREFIX = "plan-"


@dataclass(frozen=True)
class PlanEntry(Row):
    """A stored plan without its body (:meth:`PlanTable.get` returns the body)."""

    plan_id: str
    instruction: str
    table_name: str
    created_at: str


def plan_key(plan_id: int | str) -> int | None:
    """The row id of ``plan-3``, ``3`` or ``Plan-3 ``; None when it is not a plan id of that form."""
    text = str(plan_id).strip().lower()
    text = text.removeprefix(PLAN_PREFIX)
    return int(text) if text.isdigit() else None


class PlanTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, plan: dict[str, Any]) -> str:
        """Store a plan (a JSON-able dict with ``instruction`` and ``table``); its new id, ``plan-<n>``.

        The stored body carries the id as ``plan_id``; ``created_at`` is kept when given, else now.
        """
        body = dict(plan)
        created = str(body.get("created_at") or now())
        body["created_at"] = created
        with self.store.write() as con:
            cur = con.execute("INSERT INTO plans (instruction, table_name, created_at, plan) VALUES (?, ?, ?, '{}')",
                              (str(body.get("instruction", "")), str(body.get("table", "")), created))
            plan_id = f"{PLAN_PREFIX}{cur.lastrowid}"
            body["plan_id"] = plan_id
            con.execute("UPDATE plans SET plan = ? WHERE id = ?", (json.dumps(body, default=str), cur.lastrowid))
        return plan_id

    def get(self, plan_id: int | str) -> dict[str, Any]:
        """The stored plan ``plan_id`` (``plan-3`` or ``3``); RegistryError naming known ids if absent."""
        key = plan_key(plan_id)
        rows = self.store.read("SELECT plan FROM plans WHERE id = ?", (key,)) if key is not None else []
        if not rows:
            ids = [e.plan_id for e in self.list()]
            hint = suggestion(str(plan_id).strip(), ids) if ids and key is None else None  # a typo, not a number
            if hint is None:
                hint = (f"the latest are {', '.join(ids[-5:])}; see specml plan list" if ids else
                        "there are no plans yet: specml plan --instruction \"...\" --table TABLE")
            raise RegistryError(f"plan '{plan_id}' not found ({hint})")
        return json.loads(rows[0][0])

    def list(self) -> list[PlanEntry]:
        """Every stored plan, oldest first."""
        rows = self.store.read("SELECT id, instruction, table_name, created_at FROM plans ORDER BY id")
        return [PlanEntry(f"{PLAN_PREFIX}{r['id']}", r["instruction"], r["table_name"], r["created_at"])
                for r in rows]
