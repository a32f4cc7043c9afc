"""What the live race tests share: many requests released at once, and counting rows."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import func, select


def storm(threads: int, send) -> list[tuple[int, dict]]:
    """Call send(http, i) from `threads` threads released at the same moment; return each
    (status, JSON body)."""
    barrier = threading.Barrier(threads)

    def one(index: int) -> tuple[int, dict]:
        with requests.Session() as http:
            barrier.wait()
            response = send(http, index)
            return response.status_code, response.json()

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(threads)))


def count(session, model, *where) -> int:
    """Return how many rows of `model` match `where`."""
    return session.scalar(select(func.count()).select_from(model).where(*where))
