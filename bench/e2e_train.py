"""End to end: ``specml train`` as a process against the script a user would write, and against Lightning.

Every contender is a whole process (imports, reading the table, the split, training, a validation loss per
epoch, saving the weights) on the same DuckDB table, with the same model and settings, one thread. Wall time
is measured around the process and peak RSS comes from the kernel's accounting of that child (``os.wait4``,
the ``ru_maxrss`` that ``/usr/bin/time -v`` prints). Contenders run in interleaved rounds (A B C, B C A, ...)
and the table shows the median of the rounds. Ratios are ``reference wall / specml wall`` (above 1: specml is
faster) and ``specml RSS / reference RSS``.

* MLP: 8 float columns, MLP 8-64-32-1, BCE with logits, Adam (lr 1e-3), batch 256, 10% validation,
  at 2 and 10 epochs. References: a hand-written script (DuckDB -> tensors, permute an index and slice,
  validation loss per epoch) and Lightning ``Trainer.fit`` over ``DataLoader(TensorDataset)`` (skipped, and
  said so, when ``lightning`` is not installed: ``pip install specml[bench]``).
* realistic: 8 text categorical columns + 4 float columns; categorical embeddings, a DCN-v2 cross network
  and an MLP tower. Reference: the same ``nn.Module`` (built from the same spec) trained by a plain loop,
  with its own vocabularies and standardisation written in numpy.

    python bench/e2e_train.py                       # 2M rows, 3 rounds (long)
    python bench/e2e_train.py --rows 200000 --rounds 3 --epochs 2
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOATS = [f"x{i}" for i in range(8)]
CATS = [f"c{i}" for i in range(8)]
NUMS = [f"n{i}" for i in range(4)]

MLP_SPEC = """\
version: 1
name: bench-mlp
inputs:
  x: {dtype: float32, shape: [null, 8], columns: [x0, x1, x2, x3, x4, x5, x6, x7]}
graph:
  - {name: h1, type: torch.nn.Linear, params: {in_features: 8, out_features: 64}, inputs: {input: x}}
  - {name: a1, type: torch.nn.ReLU, inputs: {input: h1.output}}
  - {name: h2, type: torch.nn.Linear, params: {in_features: 64, out_features: 32}, inputs: {input: a1.output}}
  - {name: a2, type: torch.nn.ReLU, inputs: {input: h2.output}}
  - {name: out, type: torch.nn.Linear, params: {in_features: 32, out_features: 1}, inputs: {input: a2.output}}
outputs: {logits: out.output}
loss: {type: torch.nn.BCEWithLogitsLoss, inputs: {input: logits, target: y}}
"""

REAL_SPEC = """\
version: 1
name: bench-dcn
inputs:
  nums: {dtype: float32, shape: [null, 4], columns: [n0, n1, n2, n3], normalize: standard}
  cats: {dtype: int64, shape: [null, 8], columns: [c0, c1, c2, c3, c4, c5, c6, c7], categorical: true}
graph:
  - {name: embed, type: specml.layers.FeatureEmbedding, params: {embedding_dim: 8, mode: concat}, inputs: {ids: cats}}
  - {name: x0, type: specml.layers.Concat, params: {dim: 1}, inputs: [nums, embed.output]}
  - {name: cross, type: specml.layers.CrossNetwork, params: {in_features: 68, num_layers: 3, version: v2},
     inputs: {x: x0.output}}
  - {name: d1, type: torch.nn.Linear, params: {in_features: 68, out_features: 128}, inputs: {input: x0.output}}
  - {name: a1, type: torch.nn.ReLU, inputs: {input: d1.output}}
  - {name: d2, type: torch.nn.Linear, params: {in_features: 128, out_features: 64}, inputs: {input: a1.output}}
  - {name: a2, type: torch.nn.ReLU, inputs: {input: d2.output}}
  - {name: joined, type: specml.layers.Concat, params: {dim: 1}, inputs: [cross.output, a2.output]}
  - {name: head, type: torch.nn.Linear, params: {in_features: 132, out_features: 1}, inputs: {input: joined.output}}
outputs: {logits: head.output}
loss: {type: torch.nn.BCEWithLogitsLoss, inputs: {input: logits, target: y}}
"""

TRAINER = """\
optimizer: {{type: torch.optim.Adam, lr: 0.001}}
config:
  epochs: {epochs}
  batch_size: 256
  validation_split: 0.1
  shuffle: true
  seed: 0
  tensorboard: false
"""

# the script a user would write: DuckDB -> tensors, an index split, permute-and-slice, val loss per epoch
SCRIPT = """\
import sys, time
import duckdb, numpy as np, torch
torch.set_num_threads(1)
ws, epochs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect(ws, read_only=True)
cols = {cols!r}
t = con.execute(f"select {{', '.join(cols)}}, y from t").fetchnumpy()
con.close()
x = torch.from_numpy(np.stack([t[c] for c in cols], axis=1).astype(np.float32))
y = torch.from_numpy(t["y"].astype(np.float32)).unsqueeze(1)
del t
torch.manual_seed(0)
perm = torch.randperm(len(x))
n_val = int(len(x) * 0.1)
val_idx, train_idx = perm[:n_val], perm[n_val:]
xv, yv = x[val_idx], y[val_idx]
xt, yt = x[train_idx], y[train_idx]
del x, y
model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                            torch.nn.Linear(32, 1))
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.BCEWithLogitsLoss()
for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(xt))
    for i in range(0, len(xt), 256):
        idx = order[i:i + 256]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        total = sum(loss_fn(model(xv[i:i + 1024]), yv[i:i + 1024]) * len(xv[i:i + 1024])
                    for i in range(0, len(xv), 1024))
    print(f"epoch {{epoch + 1}} val_loss {{float(total) / len(xv):.4f}}", flush=True)
torch.save(model.state_dict(), out)
"""

LIGHTNING = """\
import sys, logging, warnings
import duckdb, numpy as np, torch
import lightning as L
from torch.utils.data import DataLoader, TensorDataset
torch.set_num_threads(1)
warnings.filterwarnings("ignore")
logging.getLogger("lightning").setLevel(logging.ERROR)
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
ws, epochs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
con = duckdb.connect(ws, read_only=True)
cols = {cols!r}
t = con.execute(f"select {{', '.join(cols)}}, y from t").fetchnumpy()
con.close()
x = torch.from_numpy(np.stack([t[c] for c in cols], axis=1).astype(np.float32))
y = torch.from_numpy(t["y"].astype(np.float32)).unsqueeze(1)
del t
torch.manual_seed(0)
perm = torch.randperm(len(x))
n_val = int(len(x) * 0.1)
train = TensorDataset(x[perm[n_val:]], y[perm[n_val:]])
val = TensorDataset(x[perm[:n_val]], y[perm[:n_val]])
del x, y


class Net(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                                       torch.nn.ReLU(), torch.nn.Linear(32, 1))
        self.loss = torch.nn.BCEWithLogitsLoss()

    def training_step(self, batch, _):
        xb, yb = batch
        return self.loss(self.net(xb), yb)

    def validation_step(self, batch, _):
        xb, yb = batch
        self.log("val_loss", self.loss(self.net(xb), yb), prog_bar=False)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


net = Net()
trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
trainer.fit(net, DataLoader(train, batch_size=256, shuffle=True), DataLoader(val, batch_size=1024))
torch.save(net.state_dict(), out)
"""

# the realistic model, trained by a plain loop: the same nn.Module, built from the same spec
REAL_SCRIPT = """\
import sys
import duckdb, numpy as np, torch
from specml.graph import build_model
from specml.spec.load import load_model_spec
torch.set_num_threads(1)
ws, spec, epochs, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cats, nums = {cats!r}, {nums!r}
con = duckdb.connect(ws, read_only=True)
t = con.execute(f"select {{', '.join(cats + nums)}}, y from r").fetchnumpy()
con.close()
torch.manual_seed(0)
perm = torch.randperm(len(t["y"])).numpy()
n_val = int(len(perm) * 0.1)
val_rows, train_rows = perm[:n_val], perm[n_val:]
vocab = np.unique(np.concatenate([t[c][train_rows] for c in cats]).astype(str))  # one vocabulary, id 0 unseen
ids = np.empty((len(perm), len(cats)), dtype=np.int64)
for j, c in enumerate(cats):
    values = t[c].astype(str)
    pos = np.searchsorted(vocab, values)
    found = (pos < len(vocab)) & (vocab[np.minimum(pos, len(vocab) - 1)] == values)
    ids[:, j] = np.where(found, pos + 1, 0)
num = np.stack([t[c] for c in nums], axis=1).astype(np.float64)
num = ((num - num[train_rows].mean(axis=0)) / num[train_rows].std(axis=0)).astype(np.float32)
y = torch.from_numpy(t["y"].astype(np.float32)).unsqueeze(1)
del t
ids, num = torch.from_numpy(ids), torch.from_numpy(num)
tr, va = torch.from_numpy(train_rows), torch.from_numpy(val_rows)
it, nt, yt = ids[tr], num[tr], y[tr]
iv, nv, yv = ids[va], num[va], y[va]
torch.manual_seed(0)
model = build_model(load_model_spec(spec), vocab_sizes={{"cats": len(vocab) + 1}})
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
loss_fn = torch.nn.BCEWithLogitsLoss()
for epoch in range(epochs):
    model.train()
    order = torch.randperm(len(yt))
    for i in range(0, len(yt), 256):
        idx = order[i:i + 256]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(cats=it[idx], nums=nt[idx])["logits"], yt[idx])
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        total = sum(loss_fn(model(cats=iv[i:i + 1024], nums=nv[i:i + 1024])["logits"], yv[i:i + 1024])
                    * len(yv[i:i + 1024]) for i in range(0, len(yv), 1024))
    print(f"epoch {{epoch + 1}} val_loss {{float(total) / len(yv):.4f}}", flush=True)
torch.save(model.state_dict(), out)
"""


def make_workspace(path: Path, rows: int, real_rows: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("select setseed(0.25)")
    floats = ", ".join(f"random()::FLOAT as {c}" for c in FLOATS)
    con.execute(f"create table t0 as select {floats} from range({rows})")
    con.execute("create table t as select *, (x0 + x1 - x2 + 0.3 * random() > 0.65)::INTEGER as y from t0")
    con.execute("drop table t0")
    cats = ", ".join(f"'v' || (floor(pow(random(), 2) * {20 + 15 * i}))::INTEGER::VARCHAR as {c}"
                     for i, c in enumerate(CATS))
    nums = ", ".join(f"(random() * 10)::FLOAT as {c}" for c in NUMS)
    con.execute(f"create table r0 as select {cats}, {nums} from range({real_rows})")
    con.execute("create table r as select *, ((c0 in ('v0', 'v1', 'v2'))::INTEGER + (c3 = 'v4')::INTEGER "
                "+ n0 / 10 + 0.5 * random() > 1.0)::INTEGER as y from r0")
    con.execute("drop table r0")
    con.close()


def measure(cmd: list[str], env: dict, cwd: Path) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, output) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
    return wall, usage.ru_maxrss / 1024, output  # ru_maxrss is in KiB on Linux


def main() -> None:
    if sys.argv[1:2] == ["--make-workspace"]:  # the child that writes the table (see below)
        make_workspace(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows of the 8-float table (default 2M)")
    ap.add_argument("--real-rows", type=int, default=None, help="rows of the categorical table (default: --rows/4)")
    ap.add_argument("--epochs", default="2,10", help="comma-separated epoch counts for the MLP (default 2,10)")
    ap.add_argument("--real-epochs", type=int, default=2, help="epochs of the realistic model (default 2)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3); medians are shown")
    ap.add_argument("--no-lightning", action="store_true", help="leave Lightning out")
    ap.add_argument("--lightning-epochs", default=None,
                    help="epoch counts that also run Lightning (default: all of --epochs)")
    ap.add_argument("--no-realistic", action="store_true", help="leave the realistic model out")
    args = ap.parse_args()
    real_rows = args.real_rows or max(args.rows // 4, 1000)
    # whether Lightning is installed, asked without importing it here (this process must stay small, see below)
    lightning_ok = not args.no_lightning and importlib.util.find_spec("lightning") is not None
    if not lightning_ok:
        if not args.no_lightning:
            print("lightning is not installed (pip install specml[bench]): its column is skipped")

    py = sys.executable
    src = Path(__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory(prefix="specml-e2e-") as tmp:
        d = Path(tmp)
        ws = d / "ws.duckdb"
        t0 = time.perf_counter()
        # in a child process: this one stays small, because a child's ru_maxrss is at least the RSS of the
        # process that started it (Linux records the parent's image at exec), which would hide the peaks
        subprocess.run([py, __file__, "--make-workspace", str(ws), str(args.rows), str(real_rows)], check=True)
        print(f"workspace: {args.rows:,} rows x 8 floats, {real_rows:,} rows x 8 text categoricals + 4 floats "
              f"({time.perf_counter() - t0:.1f} s to generate)", flush=True)
        (d / "mlp.yaml").write_text(MLP_SPEC)
        (d / "dcn.yaml").write_text(REAL_SPEC)
        (d / "script.py").write_text(SCRIPT.format(cols=FLOATS))
        (d / "lightning_fit.py").write_text(LIGHTNING.format(cols=FLOATS))
        (d / "real_script.py").write_text(REAL_SCRIPT.format(cats=CATS, nums=NUMS))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SPECML_HOME": str(d / "home"),
               "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               "NO_COLOR": "1", "CI": "1"}

        def specml(model: str, table: str, epochs: int) -> list[str]:
            trainer = d / f"trainer{epochs}.yaml"
            trainer.write_text(TRAINER.format(epochs=epochs))
            return [py, "-m", "specml", "train", "-t", table, "-n", f"bench_{table}", "-m", str(d / model),
                    "-T", str(trainer), "--workspace", str(ws), "--no-tensorboard", "--replace"]

        cases = []
        for epochs in [int(e) for e in args.epochs.split(",")]:
            contenders = {"specml": specml("mlp.yaml", "t", epochs),
                          "script": [py, str(d / "script.py"), str(ws), str(epochs), str(d / "s.pt")]}
            if lightning_ok and (args.lightning_epochs is None
                                 or str(epochs) in args.lightning_epochs.split(",")):
                contenders["lightning"] = [py, str(d / "lightning_fit.py"), str(ws), str(epochs), str(d / "l.pt")]
            cases.append((f"MLP, {epochs} epochs", contenders))
        if not args.no_realistic:
            cases.append((f"realistic (DCN), {args.real_epochs} epochs",
                          {"specml": specml("dcn.yaml", "r", args.real_epochs),
                           "plain loop": [py, str(d / "real_script.py"), str(ws), str(d / "dcn.yaml"),
                                          str(args.real_epochs), str(d / "r.pt")]}))

        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
              f"{args.rounds} interleaved rounds, 1 thread; this process's peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (a child's peak below it "
              "would not show)", flush=True)
        rows = []
        for label, contenders in cases:
            names = list(contenders)
            runs: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
            for r in range(args.rounds):
                order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
                for n in order:
                    wall, rss, _ = measure(contenders[n], env, d)
                    runs[n].append((wall, rss))
                    print(f"  {label:28s} round {r + 1}: {n:10s} {wall:7.2f} s {rss:7.0f} MB", flush=True)
            med = {n: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for n, v in runs.items()}
            spread = {n: (max(w for w, _ in v) - min(w for w, _ in v)) / med[n][0] for n, v in runs.items()}
            rows.append((label, med, spread))

        print("\n| case | contender | wall (median) | spread | peak RSS | ref wall / specml wall | "
              "specml RSS / ref RSS |\n|---|---|---|---|---|---|---|")
        for label, med, spread in rows:
            sw, sm = med["specml"]
            for n, (w, m) in med.items():
                ratio = "" if n == "specml" else f"{w / sw:.2f}"
                mem = "" if n == "specml" else f"{sm / m:.2f}"
                print(f"| {label} | {n} | {w:.2f} s | ±{spread[n] / 2:.0%} | {m:.0f} MB | {ratio} | {mem} |")
        print(f"\nload after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
