"""Registered model and trainer specs: ``spec_texts`` (every version's exact text, by sha256),
``model_specs`` and ``trainer_specs`` (a name -> its current version).

Rows are stored as given: checking a spec file before it is registered is
:mod:`specml.track.register`'s job. Training reads a registered spec from a file that
:meth:`SpecTable.file` writes from the stored text on demand (``registry/specs/<kind>/<name>.<sha12>.yaml``
beside the database); the database holds the text.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from specml.spec.errors import suggestion
from specml.track.store import RegistryError, Row, Store, from_row, now


def text_hash(text: str) -> str:
    """sha256 (hex) of a spec's exact text (as :func:`specml.artifact.spec_hash`)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ModelSpecEntry(Row):
    name: str
    spec_hash: str
    spec_name: str | None
    source_path: str | None
    has_loss: bool
    created_at: str
    updated_at: str
    spec_text: str = ""


@dataclass(frozen=True)
class TrainerSpecEntry(Row):
    name: str
    spec_hash: str
    model_ref: str
    source_path: str | None
    has_loss: bool
    created_at: str
    updated_at: str
    spec_text: str = ""


@dataclass(frozen=True)
class NewModelSpec:
    """A checked model spec, ready to be stored under ``name``."""

    name: str
    text: str
    spec_name: str | None
    source_path: str
    has_loss: bool


@dataclass(frozen=True)
class NewTrainerSpec:
    """A checked trainer spec, ready to be stored under ``name`` for the registered model ``model_ref``."""

    name: str
    text: str
    model_ref: str
    source_path: str
    has_loss: bool


def not_registered(what: str, name: str, names: list[str], otherwise: str, prefix: str = "") -> str:
    """``'name': no <what> by that name (did you mean ... | registered: ... | otherwise)``."""
    hint = suggestion(name, names)
    if hint:
        return f"{prefix}'{name}': no {what} by that name ({hint})"
    listed = f"registered: {', '.join(names)}" if names and len(names) <= 10 else otherwise
    return f"{prefix}'{name}': no {what} by that name ({listed})"


class SpecTable:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- texts -------------------------------------------------------------------------------------

    def text(self, spec_hash: str) -> str:
        rows = self.store.read("SELECT text FROM spec_texts WHERE hash = ?", (spec_hash,))
        if not rows:
            raise RegistryError(f"no stored spec with hash {spec_hash[:12]}")
        return rows[0][0]

    def file(self, kind: str, name: str, spec_hash: str) -> Path:
        """The stored spec text as a file (``registry/specs/<kind>/<name>.<hash12>.yaml``), written if missing."""
        from specml.data.files import atomic_write_text

        path = self.store.home / "registry" / "specs" / kind / f"{name}.{spec_hash[:12]}.yaml"
        if not path.exists() or text_hash(path.read_text(encoding="utf-8")) != spec_hash:
            atomic_write_text(path, self.text(spec_hash))
        return path

    @staticmethod
    def _store_text(con: sqlite3.Connection, kind: str, text: str) -> str:
        h = text_hash(text)
        con.execute("INSERT OR IGNORE INTO spec_texts VALUES (?, ?, ?, ?)", (h, kind, text, now()))
        return h

    # -- model specs -------------------------------------------------------------------------------

    def add_model(self, spec: NewModelSpec, *, replace: bool = False) -> ModelSpecEntry:
        """Store ``spec`` under its name. The same text again is a no-op; a different text under a taken
        name needs ``replace`` (every version's text is kept, so older runs stay traceable)."""
        with self.store.write() as con:
            old = con.execute("SELECT spec_hash, source_path FROM model_specs WHERE name = ?", (spec.name,)).fetchone()
            h = self._store_text(con, "model", spec.text)
            stamp = now()
            values = (h, spec.spec_name, spec.source_path, int(spec.has_loss))
            if old is None:
                con.execute("INSERT INTO model_specs VALUES (?, ?, ?, ?, ?, ?, ?)", (spec.name, *values, stamp, stamp))
            elif old["spec_hash"] != h:
                if not replace:
                    raise RegistryError(f"model spec '{spec.name}' is already registered (from {old['source_path']}, "
                                        f"sha256 {old['spec_hash'][:12]}) with a different text; pass --replace to "
                                        "register this version instead")
                con.execute("UPDATE model_specs SET spec_hash = ?, spec_name = ?, source_path = ?, has_loss = ?, "
                            "updated_at = ? WHERE name = ?", (*values, stamp, spec.name))
        return self.get_model(spec.name)

    def find_model(self, name: str) -> ModelSpecEntry | None:
        rows = self.store.read("SELECT m.*, t.text AS spec_text FROM model_specs m "
                               "JOIN spec_texts t ON t.hash = m.spec_hash WHERE m.name = ?", (name,))
        return from_row(ModelSpecEntry, rows[0] if rows else None, has_loss=bool)

    def get_model(self, name: str) -> ModelSpecEntry:
        found = self.find_model(name)
        if found is None:
            raise RegistryError(not_registered("model spec", name, self.model_names(),
                                               "register one with: specml create-model --name NAME "
                                               "--model-spec MODEL.yaml"))
        return found

    def model_names(self) -> list[str]:
        return [r[0] for r in self.store.read("SELECT name FROM model_specs ORDER BY name")]

    def list_models(self) -> list[ModelSpecEntry]:
        rows = self.store.read("SELECT m.*, '' AS spec_text FROM model_specs m ORDER BY name")
        return [from_row(ModelSpecEntry, r, has_loss=bool) for r in rows]

    # -- trainer specs -----------------------------------------------------------------------------

    def add_trainer(self, spec: NewTrainerSpec, *, replace: bool = False) -> TrainerSpecEntry:
        """Store ``spec`` under its name (``replace`` as for :meth:`add_model`; a new model_ref is a new version)."""
        with self.store.write() as con:
            old = con.execute("SELECT spec_hash, model_ref, source_path FROM trainer_specs WHERE name = ?",
                              (spec.name,)).fetchone()
            h = self._store_text(con, "trainer", spec.text)
            stamp = now()
            values = (h, spec.model_ref, spec.source_path, int(spec.has_loss))
            if old is None:
                con.execute("INSERT INTO trainer_specs VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (spec.name, *values, stamp, stamp))
            elif (old["spec_hash"], old["model_ref"]) != (h, spec.model_ref):
                if not replace:
                    raise RegistryError(f"trainer spec '{spec.name}' is already registered (for model "
                                        f"'{old['model_ref']}', from {old['source_path']}, sha256 "
                                        f"{old['spec_hash'][:12]}); pass --replace to register this version instead")
                con.execute("UPDATE trainer_specs SET spec_hash = ?, model_ref = ?, source_path = ?, has_loss = ?, "
                            "updated_at = ? WHERE name = ?", (*values, stamp, spec.name))
        return self.get_trainer(spec.name)

    def find_trainer(self, name: str) -> TrainerSpecEntry | None:
        rows = self.store.read("SELECT s.*, t.text AS spec_text FROM trainer_specs s "
                               "JOIN spec_texts t ON t.hash = s.spec_hash WHERE s.name = ?", (name,))
        return from_row(TrainerSpecEntry, rows[0] if rows else None, has_loss=bool)

    def get_trainer(self, name: str) -> TrainerSpecEntry:
        found = self.find_trainer(name)
        if found is None:
            names = [r[0] for r in self.store.read("SELECT name FROM trainer_specs ORDER BY name")]
            raise RegistryError(not_registered("trainer spec", name, names, "register one with: specml "
                                               "create-trainer --name NAME --trainer-spec TRAINER.yaml "
                                               "--spec-name MODEL"))
        return found

    def list_trainers(self) -> list[TrainerSpecEntry]:
        rows = self.store.read("SELECT s.*, '' AS spec_text FROM trainer_specs s ORDER BY name")
        return [from_row(TrainerSpecEntry, r, has_loss=bool) for r in rows]

    # -- training from registered specs ------------------------------------------------------------

    def resolve(self, model: str, trainer: str | None) -> tuple[Path, Path | None]:
        """Spec files for ``specml train --spec-name M --trainer-name T``: the stored texts, written under the home.

        The trainer must be registered for that model. Without a trainer the model spec must carry its
        own ``training:`` section (checked by the training itself).
        """
        entry = self.get_model(model)
        model_path = self.file("model", entry.name, entry.spec_hash)
        if trainer is None:
            return model_path, None
        t = self.get_trainer(trainer)
        if t.model_ref != entry.name:
            raise RegistryError(f"trainer '{trainer}' is registered for model '{t.model_ref}', not '{model}' "
                                f"(register it for '{model}' too: specml create-trainer --name NAME --spec "
                                f"{t.source_path} --spec-name {model})")
        return model_path, self.file("trainer", t.name, t.spec_hash)
