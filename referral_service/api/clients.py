"""Clients' personal data: /api/v1/clients (SPEC section 11)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal
from referral_service.db import write_session
from referral_service.services import erasure

blp = Blueprint("clients", __name__,
                description="Clients referred: erasing their personal data (admin keys only).")


@blp.route("/<id:client_id>")
class ClientById(MethodView):
    """One client."""

    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.doc(operationId="eraseClient")
    def delete(self, client_id):
        """Erase a client's personal data for good (head office only).

        The name becomes "erased client #ID"; the CRM id (so a later referral with it makes a
        new client), the address, the precise place, and every copy of them (referrals,
        visits, leads, history, the audit log's diffs, webhook payloads, stored idempotent
        answers) are gone. Referrals, statuses, dates, city, country and every KPI figure
        stay. A second call answers 204 again and changes nothing; an unknown id is a 404.
        """
        erasure.erase(session=write_session(), client_id=client_id, actor=current_principal())
