"""PyTorch CPU twin of bench/graph.ts: same models, batch sizes, loss, AdamW settings (warmup,
global-norm clipping, decoupled decay on matrices only), same timing scheme (rounds of
seconds/rounds, median and best). Prints one JSON line. Needs torch (CPU build) and numpy:
  OMP_WAIT_POLICY=PASSIVE python3 bench/graph_torch.py --threads=1,2 --seconds=8 --rounds=4
Run it alternately with `npm run bench:graph` (project, torch, project, torch) and compare medians;
cpuMsPerStep (process CPU time per step) is the steadier figure when other jobs share the cores.
If the two benches' shapes ever differ, fix this file."""
import json, math, os, statistics, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

args = dict(a.lstrip("-").split("=") for a in sys.argv[1:])
threads = [int(t) for t in args.get("threads", "1,2").split(",")]
seconds = float(args.get("seconds", 4))
rounds = int(args.get("rounds", 4))
attn_impl = args.get("attn", "manual")  # manual (as the ONNX graph) | sdpa
torch.manual_seed(0)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.l = nn.ModuleList([nn.Linear(256, 256), nn.Linear(256, 256), nn.Linear(256, 8)])

    def forward(self, x):
        return self.l[2](F.relu(self.l[1](F.relu(self.l[0](x)))))


class Block(nn.Module):
    def __init__(self, d=128, h=4, r=4):
        super().__init__()
        self.h, self.hd = h, d // h
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, d * r), nn.Linear(d * r, d)

    def forward(self, x, bias):
        b, t, d = x.shape
        y = self.ln1(x)
        split = lambda z: z.view(b, t, self.h, self.hd).transpose(1, 2)
        if attn_impl == "sdpa":
            a = F.scaled_dot_product_attention(split(self.q(y)), split(self.k(y)), split(self.v(y)), attn_mask=bias)
        else:
            q = split(self.q(y) * (1 / math.sqrt(self.hd)))
            a = torch.softmax(q @ split(self.k(y)).transpose(-1, -2) + bias, -1) @ split(self.v(y))
        x = x + self.o(a.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch = nn.Linear(192, 128)
        self.tok = nn.Embedding(512, 128)
        self.pos = nn.Parameter(torch.randn(80, 128) * 0.02)
        self.blocks = nn.ModuleList([Block() for _ in range(4)])
        self.lnf = nn.LayerNorm(128)
        self.head = nn.Linear(128, 7)

    def forward(self, image, text, text_mask):
        b = image.shape[0]
        p = image.reshape(b, 3, 8, 8, 8, 8).permute(0, 2, 4, 1, 3, 5).reshape(b, 64, 192)
        h = torch.cat([self.patch(p), self.tok(text)], 1) + self.pos
        bias = ((torch.cat([torch.ones(b, 64), text_mask], 1) - 1) * 1e9)[:, None, None, :]
        for blk in self.blocks:
            h = blk(h, bias)
        return self.head(self.lnf(h).mean(1))


def make_step(model, lr, warmup, clip, inputs, target):
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("tok.") and n != "pos"]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("tok.") and n != "pos")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    params = list(model.parameters())
    n = [0]

    def step():
        n[0] += 1
        for g in opt.param_groups:
            g["lr"] = lr * min(1.0, n[0] / warmup)
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(model(*inputs), target)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return loss.item(), norm.item()  # the project reads loss and grad_norm back every step

    return step


def timed(step, batch):
    for _ in range(3):
        step()
    per = []
    cpu = []
    total = 0
    for _ in range(rounds):
        k, t0, c0 = 0, time.perf_counter(), time.process_time()
        while time.perf_counter() - t0 < seconds / rounds or k < 2:
            step()
            k += 1
        per.append(batch * k / (time.perf_counter() - t0))
        cpu.append((time.process_time() - c0) * 1000 / k)  # process CPU time (all threads) per step
        total += k
    rate = statistics.median_high(sorted(per))
    return {"samplesPerSec": round(rate), "bestRoundSamplesPerSec": round(max(per)), "msPerStep": round(batch * 1000 / rate, 3),
            "cpuMsPerStep": round(statistics.median_high(sorted(cpu)), 3), "steps": total}


res = {"bench": "torch", "torch": torch.__version__, "attn": attn_impl, "loadAverage1m": round(os.getloadavg()[0], 2), "mlp": [], "transformer": []}
for t in threads:
    torch.set_num_threads(t)
    x, y = torch.randn(256, 256), torch.randn(256, 8)
    res["mlp"].append({"threads": t, **timed(make_step(MLP(), 1e-3, 100, 1.0, (x,), y), 256)})
# The project's MLP rounds share the time window with the hand-written graph (seconds/rounds/2 each);
# here each round is seconds/rounds: steps differ, rates are comparable.
for t in threads:
    torch.set_num_threads(t)
    b = 64
    image, text = torch.rand(b, 3, 64, 64), torch.randint(0, 512, (b, 16))
    mask = (torch.arange(16) < 10).float().expand(b, 16).contiguous()
    res["transformer"].append({"threads": t, **timed(make_step(Policy(), 3e-4, 100, 0.5, (image, text, mask), torch.randn(b, 7)), b)})
res["loadAverage1mEnd"] = round(os.getloadavg()[0], 2)
print(json.dumps(res))
