"""The SMPP codec's cost per PDU: the reference (smpplib) path against the struct fast path.

For a mix of the hot PDUs as the gateway sees them (a reply submit_sm, a concatenated part
with sar_* TLVs, a long one in message_payload, an MO deliver_sm, a receipt deliver_sm with
receipted_message_id / message_state, the responses, enquire_link), in one process, no I/O:

- encodes/s and decodes/s of each path over the mix (`--count` rounds of the mix each);
- the check: both paths give the same octets and the same decoded PDUs (exit 1 if not).

    python benchmarks/codec.py                       # 20,000 rounds of the 8-PDU mix
    python benchmarks/codec.py --short --json -      # the smoke test's run
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import write_json  # first: puts the repo on sys.path
from e2e import machine

from gateway.smpp import codec, fastcodec
from gateway.smpp.codec import Pdu

REPLY = b"Order 1024 received: 1001x5, 1002x3. Total 560.00. Thank you!"
MIX = [
    Pdu("submit_sm", 1001, 0, {
        "source_addr_ton": 5, "source_addr": "10690", "dest_addr_ton": 1, "dest_addr_npi": 1,
        "destination_addr": "8613800000001", "registered_delivery": 1, "data_coding": 0,
        "short_message": REPLY}),
    Pdu("submit_sm", 1002, 0, {
        "source_addr": "10690", "destination_addr": "8613800000002", "registered_delivery": 1,
        "data_coding": 8, "short_message": "订单已收到".encode("utf-16-be") * 6,
        "sar_msg_ref_num": 77, "sar_total_segments": 2, "sar_segment_seqnum": 1}),
    Pdu("submit_sm", 1003, 0, {
        "source_addr": "10690", "destination_addr": "8613800000003", "registered_delivery": 1,
        "message_payload": REPLY * 5}),
    Pdu("submit_sm_resp", 1001, 0, {"message_id": "5f2b9c0e-1d44-4c1a-9a67-3e0c6b1f2a10"}),
    Pdu("deliver_sm", 2001, 0, {
        "source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "8613800000001",
        "destination_addr": "10690", "data_coding": 0,
        "short_message": b"ORD 135790 5001*5 5002*3 5003*12"}),
    Pdu("deliver_sm", 2002, 0, {
        "source_addr": "8613800000001", "destination_addr": "10690", "esm_class": 0x04,
        "short_message": b"id:5f2b9c0e sub:001 dlvrd:001 submit date:2611302329 "
                         b"done date:2611302329 stat:DELIVRD err:000 text:Order 1024",
        "receipted_message_id": "5f2b9c0e-1d44-4c1a-9a67-3e0c6b1f2a10", "message_state": 2}),
    Pdu("deliver_sm_resp", 2001, 0, {"message_id": ""}),
    Pdu("enquire_link", 3001, 0),
]


def rate(fn: Callable[[Any], Any], items: list[Any], rounds: int) -> float:
    """Calls per second of fn over `rounds` passes of items (best of 3 runs of a third each,
    which keeps a busy machine's stalls out of the figure)."""
    per_run = max(1, rounds // 3)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(per_run):
            for x in items:
                fn(x)
        best = min(best, time.perf_counter() - t0)
    return per_run * len(items) / best


def check() -> list[str]:
    problems = []
    for pdu in MIX:
        ref, fast = codec.encode_reference(pdu), fastcodec.encode(pdu)
        if fast != ref:
            problems.append(f"{pdu.command} #{pdu.sequence}: encodings differ")
            continue
        if fastcodec.decode(ref) != codec.decode_reference(ref):
            problems.append(f"{pdu.command} #{pdu.sequence}: decodings differ")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=20_000, help="rounds of the PDU mix")
    ap.add_argument("--json", metavar="FILE", help="write a one-line JSON summary")
    ap.add_argument("--short", action="store_true", help="a tiny run (300 rounds)")
    args = ap.parse_args()
    if args.short:
        args.count = 300
    frames = [codec.encode_reference(p) for p in MIX]
    figures = {
        "reference_encode_per_s": rate(codec.encode_reference, MIX, args.count),
        "fast_encode_per_s": rate(fastcodec.encode, MIX, args.count),
        "reference_decode_per_s": rate(codec.decode_reference, frames, args.count),
        "fast_decode_per_s": rate(fastcodec.decode, frames, args.count),
    }
    print(f"machine: {machine()}")
    print(f"PDU mix: {len(MIX)} PDUs ({', '.join(p.command for p in MIX)}), "
          f"{args.count} rounds")
    for op in ("encode", "decode"):
        ref, fast = figures[f"reference_{op}_per_s"], figures[f"fast_{op}_per_s"]
        print(f"{op}: reference {ref:,.0f}/s ({1e6 / ref:.1f} µs a PDU), "
              f"fast {fast:,.0f}/s ({1e6 / fast:.1f} µs a PDU): x{fast / ref:.1f}")
    problems = check()
    print("check: OK (fast == reference for every PDU of the mix)" if not problems
          else "check: FAILED " + "; ".join(problems))
    write_json(args.json, {"benchmark": "codec", "ok": not problems, "count": args.count,
                           "pdus": len(MIX), "machine": machine(),
                           **{k: round(v) for k, v in figures.items()}})
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
