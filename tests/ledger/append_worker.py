"""A separate process that appends to a log: used by the concurrency and crash tests.

python -m tests.ledger.append_worker STORE SIGNER_KEY --batches N --size B --tag T [--presigned]
"""

from __future__ import annotations

import argparse
import sys

from ledger import note
from ledger.entry import sign_submission
from ledger.log import Log
from ledger.postgres_store import PostgresStore
from ledger.sqlite_store import SQLiteStore
from ledger.store import LogStore


def _store(url: str) -> LogStore:
    return PostgresStore(url) if url.startswith("postgresql://") else SQLiteStore(url)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("signer_key")
    parser.add_argument("--batches", type=int, default=1)
    parser.add_argument("--size", type=int, default=1)
    parser.add_argument("--tag", default="w")
    parser.add_argument("--presigned", action="store_true", help="skip re-verifying signatures")
    args = parser.parse_args()
    signer = note.Signer.from_string(args.signer_key)
    log = Log(_store(args.store))
    batches = [
        [
            sign_submission(
                "test.event",
                {"tag": args.tag, "batch": b, "i": i},
                key_id=signer.key_id,
                key=signer.private_key,
            )
            for i in range(args.size)
        ]
        for b in range(args.batches)
    ]
    print("ready", flush=True)
    for batch in batches:
        receipts = log.append(batch, signatures_checked=args.presigned)
        print(f"appended {receipts[0].seq} {receipts[-1].seq}", flush=True)
    log.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
