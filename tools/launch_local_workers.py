r"""Starts N training processes on this machine as one multi-worker cluster.

    python -m tools.launch_local_workers --num_workers=2 -- \
        python -m tfgt.train --gin_file=gin_configs/fashion_mnist/cgantransfer.gin \
        --model_dir=runs/two_workers

Each process gets a TF_CONFIG that names all of them on free loopback ports
(127.0.0.1) and its own index, so `tfgt.train` (strategy "auto") trains with
MultiWorkerMirroredStrategy: worker 0 is the chief and writes the run folder,
the others compute their share of each step (docs/DISTRIBUTED.md). The
chief's output goes to this terminal, worker i's to
<worker_logs>/worker_<i>.log (the folder is printed at the start).

It is for trying multi-worker training and for the tests: on one machine the
workers share its cores, so it measures the collective path's overhead, not
a speed-up. On a cluster, start one process per machine with its own
TF_CONFIG instead (docs/DISTRIBUTED.md).

Exit status: 0 when every worker succeeded; 124 after --timeout seconds,
130 after Ctrl-C and 143 after SIGTERM (the workers get them and save);
else the chief's status if it failed by itself (75 when `tfgt.train` lost a
worker: run the same command to resume), else the first failed worker's
(128 + n for signal n).
"""

from __future__ import annotations

import json
import os
import signal
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
                     "themselves after one failed (tfgt.train notices a lost "
                     "peer within seconds), or to save after Ctrl-C or "
                     "SIGTERM, before they are stopped.")
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


def _stop(processes, sig: int, wait: float) -> set[int]:
  """Sends `sig` to the running processes, waits up to `wait` seconds for
  them (tfgt.train saves a checkpoint on SIGTERM and Ctrl-C), then kills the
  rest. Returns the indices of the processes it signalled."""
  signalled = set()
  for i, p in enumerate(processes):
    if p.poll() is None:
      p.send_signal(sig)
      signalled.add(i)
  deadline = time.time() + wait
  for p in processes:
    try:
      p.wait(timeout=max(deadline - time.time(), 0.1))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()
  return signalled


def launch(command: Sequence[str], num_workers: int, log_dir: str,
           timeout: float = 0, grace: float = 120,
           env: dict | None = None) -> int:
  """Runs `command` as `num_workers` workers of one cluster; returns the
  exit status (see the module docstring).

  Ctrl-C or SIGTERM to this process reaches every worker (which save and
  stop); a worker that has not stopped `grace` seconds later is killed.
  """
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
  first_failure, failed_at, timed_out, stopped = 0, None, False, set()
  deadline = time.time() + timeout if timeout else None
  terminated = []
  previous = signal.signal(signal.SIGTERM,
                           lambda signum, frame: terminated.append(signum))
  try:
    while any(p.poll() is None for p in processes):
      for i, p in enumerate(processes):
        code = p.poll()
        if code not in (None, 0) and not first_failure:
          first_failure, failed_at = code, time.time()
          print(f"Worker {i} exited with status {code}; waiting up to "
                f"{grace:g} s for the others to stop by themselves.",
                file=sys.stderr, flush=True)
      now = time.time()
      if terminated:
        stopped = _stop(processes, signal.SIGTERM, grace)
        break
      if deadline and now > deadline:
        print(f"Timeout after {timeout:g} s: stopping every worker.",
              file=sys.stderr, flush=True)
        timed_out = True
        stopped = _stop(processes, signal.SIGTERM, min(grace, 60))
        break
      if failed_at is not None and now > failed_at + grace:
        stopped = _stop(processes, signal.SIGTERM, 30)
        break
      time.sleep(0.2)
  except KeyboardInterrupt:
    _stop(processes, signal.SIGINT, grace)
    return 130
  finally:
    signal.signal(signal.SIGTERM, previous)
    for p in processes:
      if p.poll() is None:
        p.kill()
    for f in logs:
      f.close()
  if timed_out:
    return 124
  if terminated:
    return 143
  # The chief's own status says what to do (75: resume); then the first
  # failure; a signal n is reported as a shell does (128 + n).
  codes = [p.returncode for p in processes]
  chief = codes[0] if 0 not in stopped else 0
  for code in (chief, first_failure, *codes[1:]):
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
