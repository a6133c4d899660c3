"""The replica server's own ceiling: fetch the given paths with plain keep-alive http.client
connections in 8 threads (no Scrapy), so that a crawl's pages/s can be told apart from the
server's limit. python -m benchmarks.raw_client BASE_URL < paths  -> one JSON line"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from urllib.parse import urlsplit


def main() -> None:
    base = urlsplit(sys.argv[1])
    paths = [line.strip() for line in sys.stdin if line.strip()]
    threads = 8
    done = [0] * threads

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
        for path in paths[i::threads]:
            conn.request("GET", path)
            conn.getresponse().read()
            done[i] += 1
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(json.dumps({"responses": sum(done), "seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
