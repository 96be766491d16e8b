r"""Starts N training processes on this machine as one multi-worker cluster.

    python tools/launch_local_workers.py --num_workers=2 -- \
        python -m tfgt.train --gin_file=gin_configs/fashion_mnist/cgantransfer.gin \
        --model_dir=runs/two_workers

Each process gets a TF_CONFIG that names all of them on free loopback ports
(127.0.0.1) and its own index, so `tfgt.train` (strategy "auto") trains with
MultiWorkerMirroredStrategy: worker 0 is the chief and writes the run folder,
the others compute their share of each step (docs/DISTRIBUTED.md). The
chief's output goes to this terminal, worker i's to <log_dir>/worker_<i>.log.

It is for trying multi-worker training and for the tests: on one machine the
workers share its cores, so it measures the collective path's overhead, not
a speed-up. On a cluster, start one process per machine with its own
TF_CONFIG instead (docs/DISTRIBUTED.md).

Exit status: 0 when every worker succeeded; else the chief's status if it
failed (75 when `tfgt.train` lost a worker: run the same command to resume),
else the first failed worker's (128 + n for signal n); 124 after --timeout
seconds (all workers are stopped).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from absl import app
from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_integer("num_workers", 2, "Processes to start.")
  flags.DEFINE_float("timeout", 0, "Stop every worker after this many "
                     "seconds (0: no limit).")
  flags.DEFINE_float("grace", 120, "Seconds the other workers get to stop by "
                     "themselves after one failed (they notice the lost peer "
                     "within about a minute), before they are terminated.")
  flags.DEFINE_string("worker_logs", None, "Folder of the other workers' logs "
                      "(default: a new temporary folder).")


def free_ports(count: int) -> list[int]:
  """`count` distinct free TCP ports on 127.0.0.1 (free when asked)."""
  sockets = []
  try:
    for _ in range(count):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(("127.0.0.1", 0))
      sockets.append(s)
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


def tf_config(ports: Sequence[int], index: int) -> str:
  """The TF_CONFIG of worker `index` of a loopback cluster."""
  return json.dumps({
      "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
      "task": {"type": "worker", "index": index}})


def launch(command: Sequence[str], num_workers: int, log_dir: str,
           timeout: float = 0, grace: float = 120,
           env: dict | None = None) -> int:
  """Runs `command` as `num_workers` workers of one cluster; returns the
  exit status (see the module docstring)."""
  if num_workers < 1:
    raise ValueError(f"num_workers must be at least 1, got {num_workers}.")
  os.makedirs(log_dir, exist_ok=True)
  ports = free_ports(num_workers)
  processes, logs = [], []
  for i in range(num_workers):
    worker_env = dict(env if env is not None else os.environ,
                      TF_CONFIG=tf_config(ports, i))
    if i == 0:
      out = None  # The chief's output: this terminal.
    else:
      out = open(os.path.join(log_dir, f"worker_{i}.log"), "w")
      logs.append(out)
    processes.append(subprocess.Popen(list(command), env=worker_env,
                                      stdout=out, stderr=out))
  print(f"Started {num_workers} workers on 127.0.0.1 ports "
        f"{', '.join(map(str, ports))}; worker 0 is the chief (output "
        f"here), the others log to {log_dir}.", file=sys.stderr, flush=True)
  status, deadline, failed_at = 0, None, None
  if timeout:
    deadline = time.time() + timeout
  try:
    while any(p.poll() is None for p in processes):
      for i, p in enumerate(processes):
        code = p.poll()
        if code not in (None, 0) and status == 0:
          status, failed_at = code, time.time()
          print(f"Worker {i} exited with status {code}; waiting up to "
                f"{grace:g} s for the others.", file=sys.stderr, flush=True)
      now = time.time()
      if (deadline and now > deadline) or (
          failed_at is not None and now > failed_at + grace):
        for p in processes:
          if p.poll() is None:
            p.terminate()
        for p in processes:
          try:
            p.wait(timeout=30)
          except subprocess.TimeoutExpired:
            p.kill()
        if deadline and now > deadline and status == 0:
          print(f"Timeout after {timeout:g} s: stopped every worker.",
                file=sys.stderr, flush=True)
          status = 124
        break
      time.sleep(0.2)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
    for f in logs:
      f.close()
  codes = [p.returncode for p in processes]
  # The chief's status says what to do (75: resume); a worker killed by a
  # signal has a negative return code, reported as a shell does (128 + n).
  for code in [codes[0]] + codes[1:] + [status]:
    if code:
      return 128 - code if code < 0 else code
  return 0


def main(argv: Sequence[str]) -> None:
  command = argv[1:]
  if command and command[0] == "--":
    command = command[1:]
  if not command:
    raise app.UsageError("Give the command after --, e.g. -- python -m "
                         "tfgt.train --gin_file=... --model_dir=...")
  log_dir = FLAGS.worker_logs or tempfile.mkdtemp(prefix="tfgt_workers_")
  sys.exit(launch(command, FLAGS.num_workers, log_dir, FLAGS.timeout,
                  FLAGS.grace))


if __name__ == "__main__":
  define_flags()
  app.run(main)
