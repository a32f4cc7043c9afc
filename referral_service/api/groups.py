"""Groups of firms: /api/v1/groups."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import page_body
from referral_service.db import read_session
from referral_service.schemas import groups as schemas
from referral_service.services import groups

blp = Blueprint("groups", __name__, description="Groups of firms (affiliates of one holding).")


@blp.route("")
class Groups(MethodView):
    """The groups organizations belong to."""

    @blp.arguments(schemas.GroupListArgsSchema(), location="query")
    @blp.response(200, schemas.GroupPageSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self, args):
        """List the groups by name, with how many organizations belong to each.

        A group is made when a profile first names it (`group` of an organization). Groups
        are not secret between firms: every key may list them.
        """
        items, total = groups.list_(session=read_session(), page=args["page"],
                                    page_size=args["page_size"])
        return page_body(items, total, args)
