"""Closing a month while head office reverses its conversions (SPEC section 10): whichever
commits first, the closed month's snapshot plus the corrections booked for it equal its rows
recomputed now, and every reversal is either in the snapshot or in a correction, never lost
nor counted twice."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import select

from models import Client, KpiCorrection, Organization, Referral
from referral_service.services import kpi, months, referrals
from referral_service.services.auth import Principal

ADMIN = Principal(name="head office", role="admin")
ROUNDS = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06")
REVERSALS = 6


def _world(session, month: str) -> tuple[list[int], list[int]]:
    """Two firms and REVERSALS referrals between them converted in `month`."""
    year, number = int(month[:4]), int(month[5:7])
    firms = [Organization(name=f"Race {month} {side}", kind="partner", description="")
             for side in ("A", "B")]
    session.add_all(firms)
    session.flush()
    ids = []
    for index in range(REVERSALS):
        at = datetime(year, number, 2 + index, 12, tzinfo=UTC)
        client = Client(name=f"Race {month} {index}", normalized_name=f"race {month} {index}")
        session.add(client)
        session.flush()
        referral = Referral(referrer_organization_id=firms[index % 2].id,
                            receiver_organization_id=firms[1 - index % 2].id,
                            client_id=client.id, status="converted", created_at=at,
                            updated_at=at, accepted_at=at, converted_at=at)
        session.add(referral)
        session.flush()
        ids.append(referral.id)
    session.commit()
    return [firm.id for firm in firms], ids


def test_closing_while_conversions_are_reversed_loses_no_reversal(app):
    from referral_service.db import new_session

    errors: list[BaseException] = []
    for month in ROUNDS:
        setup = new_session(app)
        try:
            firms, ids = _world(setup, month)
        finally:
            setup.close()
        start = threading.Barrier(REVERSALS + 1)

        def run(work) -> None:
            session = new_session(app)
            try:
                start.wait()
                work(session)
            except BaseException as error:  # noqa: BLE001 (reported below)
                errors.append(error)
            finally:
                session.close()

        threads = [threading.Thread(target=run, args=(
            lambda session: months.close(session=session, month=month, actor=ADMIN),))]
        threads += [threading.Thread(target=run, args=(
            lambda session, referral_id=referral_id: referrals.move_referral(
                session=session, referral_id=referral_id, status="lost",
                reason="Race reversal", actor=ADMIN),)) for referral_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        check = new_session(app, write=False)
        try:
            frozen = {row["organization_id"]: Counter(row) for row in months.frozen_rows(
                session=check, month=month, level="organization") if row["organization_id"]
                in firms}
            for correction in check.scalars(select(KpiCorrection).where(
                    KpiCorrection.correction_of == month,
                    KpiCorrection.level == "organization")):
                frozen.setdefault(correction.organization_id, Counter()).update(
                    correction.deltas)
            statement, params = kpi.level_query("organization", month)
            now = {row.organization_id: row for row in check.execute(statement, params)
                   if row.organization_id in firms}
            for firm in firms:
                for name in months.figures("organization"):
                    assert frozen[firm][name] == getattr(now[firm], name), (month, firm, name)
            # Every conversion was reversed: nothing of them counts once corrected.
            assert all(frozen[firm]["new_client_credits"] == 0 for firm in firms), month
        finally:
            check.close()
