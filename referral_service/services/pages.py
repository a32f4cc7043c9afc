"""One page of a list (SPEC section 3: `page`, `page_size`) and the total it is a page of."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session


def page_of(session: Session, query: Select, *order_by: Any, page: int, page_size: int
            ) -> tuple[list[Any], int]:
    """Return the objects of one page of `query` in `order_by` order, and the total count."""
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(*order_by).offset((page - 1) * page_size).limit(page_size)
    ).unique().all()
    return list(rows), total
