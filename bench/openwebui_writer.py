#!/usr/bin/env python3
"""openwebui_writer.py DB RATE SECONDS: writes to an Open WebUI database the
way the app does while a user chats, at RATE operations per second for
SECONDS: four in five rewrite a chat's JSON with one more message (read,
json.loads, append, json.dumps, UPDATE), one in five inserts a channel
message (nanosecond timestamps). Deterministic choices (seeded). Prints the
operations done, errors (SQLITE_BUSY after the 5 s busy timeout) and the
slowest operation. Used by bench/restart-initial-sync.sh."""
import json
import random
import sqlite3
import sys
import time
import uuid


def main() -> int:
    db, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    conn = sqlite3.connect(db, timeout=5, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    ids = [r[0] for r in conn.execute("SELECT id FROM chat ORDER BY id")]
    rng = random.Random(7)
    start = time.time()
    done = errors = 0
    worst = 0.0
    while time.time() - start < seconds:
        delay = start + done / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        t = time.time()
        try:
            if done % 5 == 4:
                now_ns = time.time_ns()
                conn.execute(
                    "INSERT INTO message (id, user_id, channel_id, content, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (str(uuid.UUID(int=rng.getrandbits(128))), "writer", "bench",
                     "hello " * 20, now_ns, now_ns))
            else:
                cid = rng.choice(ids)
                row = conn.execute("SELECT chat FROM chat WHERE id = ?", (cid,)).fetchone()
                chat = json.loads(row[0])
                chat.setdefault("messages", []).append({"role": "user", "content": "more " * 40})
                conn.execute("UPDATE chat SET updated_at = ?, chat = ? WHERE id = ?",
                             (int(time.time()), json.dumps(chat), cid))
        except sqlite3.OperationalError:
            errors += 1
        worst = max(worst, time.time() - t)
        done += 1
    print("writer: %d operations, %d errors, slowest %.1f ms" % (done, errors, worst * 1000),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
