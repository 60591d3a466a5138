#!/usr/bin/env python3
"""Shares of a CPU's samples by what the call chain says the time was for.

Reads `perf script -F comm,cpu,ip,sym,dso` of a profile that
`target/release/e2e --perf DIR` recorded (`perf record -e cpu-clock -g -a`)
and prints the percentages BENCHMARKS.md quotes:

  perf script -i DIR/vswitch-udp-ring.perf.data -F comm,cpu,ip,sym,dso \
    | bench/e2e/perf-shares.py --comm pmd0 --cpu 1    # the poll thread
  perf script -i DIR/vswitch-udp-ring.perf.data -F comm,cpu,ip,sym,dso \
    | bench/e2e/perf-shares.py --cpu 0                # the generator's CPU

Standard library only.
"""

import argparse
import collections
import sys

# First match wins: (label, any of these symbols in the call chain).
RULES = [
    ("kernel: receiving namespace's stack, run from the netif_rx backlog",
     ("process_backlog", "__netif_receive_skb")),
    ("kernel: veth NAPI -> XDP -> copy into the switch's UMEM (__xsk_rcv)",
     ("__xsk_rcv",)),
    ("kernel: veth NAPI + XDP program (veth_poll, skb_pp_cow_data, redirect)",
     ("veth_poll", "veth_xdp_rcv")),
    ("kernel: AF_XDP copy-mode TX in sendto (skb alloc, copy, veth_xmit)",
     ("xsk_sendmsg", "__xsk_generic_xmit")),
    ("kernel: read() on the internal TAP port", ("ksys_read", "tun_chr_read_iter", "tun_do_read")),
    ("kernel: trafgen's AF_PACKET send (skb, veth_xmit)", ("packet_sendmsg",)),
    ("kernel: ppoll (poll thread going to sleep)", ("do_sys_poll", "__x64_sys_ppoll")),
]


def classify(stack):
    syms = [f[1] if len(f) > 1 else "" for f in (line.split() for line in stack)]
    for label, markers in RULES:
        if any(m in syms for m in markers):
            return label
    top = stack[0].split() if stack else []
    sym = top[1] if len(top) > 1 else "?"
    dso = top[-1] if top else ""
    if "vswitchd" in dso:
        return "user: vswitchd (the switch's code)"
    if "kernel" in dso:
        return "kernel: other (" + sym + ")"
    return "user: " + sym + " " + dso


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comm", help="only samples of this thread name, e.g. pmd0")
    ap.add_argument("--cpu", type=int, help="only samples on this CPU")
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()

    counts = collections.Counter()
    total = 0
    head, stack = None, []

    def flush():
        nonlocal total
        if head is None:
            return
        comm, cpu = head
        if args.comm and comm != args.comm:
            return
        if args.cpu is not None and cpu != args.cpu:
            return
        counts[classify(stack)] += 1
        total += 1

    for line in sys.stdin:
        if not line.strip():
            flush()
            head, stack = None, []
        elif not line[0].isspace():
            parts = line.split()
            cpu = next((int(p[1:-1]) for p in parts
                        if p.startswith("[") and p.endswith("]") and p[1:-1].isdigit()), None)
            head, stack = (parts[0], cpu), []
        else:
            stack.append(line.strip())
    flush()
    if total == 0:
        sys.exit("no samples matched")
    for label, n in counts.most_common(args.top):
        print(f"{100.0 * n / total:6.1f}%  {label}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
