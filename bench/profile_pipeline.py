"""Where a worker's time goes under the pipeline load: py-spy samples one worker while
Contact records flow Kafka -> seed mapping -> Kafka (at-least-once, as in
``bench.pipeline_throughput``), then the functions are ranked by the share of samples
they appear in (inclusive) and are on top of (own time).

    python -m bench.profile_pipeline [--messages 40000] [--seconds 20] [--top 25]

Needs ``py-spy`` (the ``bench`` extra) and ptrace rights on the worker (root, or
``kernel.yama.ptrace_scope`` 0). Not part of ``python -m bench``: it measures nothing
against a baseline; it explains the numbers the benchmarks give.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from bench.kafka_load import SEED_MAPPING, Load
from bench.pipeline_throughput import INTEGRATION, PARTITIONS, _wait_for_members
from bench.platform import Platform
from tests.support import configure_kafka_to_kafka


def summarize(collapsed: Path, top: int) -> list[str]:
    """Rank frames of py-spy's collapsed stacks ("a;b;c count" lines)."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples", "", "inclusive (% of samples the function is on the stack):"]
    out += [f"{100 * n / total:6.1f}%  {f}" for f, n in inclusive.most_common(top)]
    out += ["", "own time (% of samples the function is on top):"]
    out += [f"{100 * n / total:6.1f}%  {f}" for f, n in own.most_common(top)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=40_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("bench/results/profile.txt"))
    args = parser.parse_args()
    py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: pip install -e '.[bench]'")
    with Platform() as platform:
        source, target = f"{platform.prefix}.contacts-in", f"{platform.prefix}.contacts-out"
        platform.create_topics([source, target], PARTITIONS)
        platform.start_worker()
        configure_kafka_to_kafka(platform.settings, source, target, SEED_MAPPING,
                                 exactly_once=False)
        _wait_for_members(platform.bootstrap, [f"{platform.prefix}-engine",
                                               f"{platform.prefix}-source-{INTEGRATION}"], 1)
        load = Load(platform.bootstrap, source, target)
        load.warm_up()
        collapsed = args.out.with_suffix(".collapsed")
        collapsed.parent.mkdir(parents=True, exist_ok=True)
        sampler = threading.Thread(target=subprocess.run, args=([
            py_spy, "record", "--pid", str(platform.workers[0].pid), "--duration",
            str(args.seconds), "--rate", "100", "--format", "raw", "--output", str(collapsed),
            "--nolineno", "--nonblocking"],), kwargs={"check": True, "capture_output": True})
        sampler.start()
        measured = load.run(args.messages)
        sampler.join()
        load.close()
        lines = [f"{measured.messages} messages at {measured.per_second:.0f} msg/s while "
                 f"sampled for {args.seconds} s", *summarize(collapsed, args.top)]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
