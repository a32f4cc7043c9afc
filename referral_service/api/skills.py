"""The skill vocabulary: /api/v1/skills, its aliases and merges (SPEC section 8)."""

from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint

from referral_service.api.common import current_principal
from referral_service.db import read_session, write_session
from referral_service.schemas import skills as schemas
from referral_service.services import skills

blp = Blueprint("skills", __name__, description="Skills known to the service, their aliases, "
                                                "and merges of two slugs into one.")


@blp.route("")
class Skills(MethodView):
    """Known skills."""

    @blp.response(200, schemas.SkillListSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    def get(self):
        """List the skills offered by active organizations, with how many offer each and
        their aliases."""
        return {"items": skills.list_(session=read_session())}


@blp.route("/aliases")
class Aliases(MethodView):
    """Head office's aliases of skills."""

    @blp.arguments(schemas.AliasCreateSchema())
    @blp.response(201, schemas.AliasSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    def post(self, data):
        """Declare an alias of a skill (head office): a need naming the alias asks for the
        skill. 404 if no organization offers the skill; 409 if organizations offer the alias
        (merge it instead) or it is taken."""
        return skills.create_alias(session=write_session(), actor=current_principal(),
                                   alias=data["alias"], skill=data["skill"])


@blp.route("/aliases/<string:alias>")
class AliasByName(MethodView):
    """One alias."""

    @blp.response(204)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    def delete(self, alias):
        """Remove an alias (head office)."""
        skills.delete_alias(session=write_session(), actor=current_principal(), alias=alias)


@blp.route("/merge")
class Merges(MethodView):
    """Merges of one skill into another."""

    @blp.arguments(schemas.MergeSchema())
    @blp.response(200, schemas.MergeResultSchema)
    @blp.alt_response(401, response="UNAUTHORIZED")
    @blp.alt_response(403, response="FORBIDDEN")
    @blp.alt_response(404, response="NOT_FOUND")
    @blp.alt_response(409, response="CONFLICT")
    @blp.alt_response(412, response="PRECONDITION_FAILED")
    def post(self, data):
        """Merge one skill into another (head office), in one transaction: every firm's tag
        `from` becomes `into` (each such profile gets a new version and ETag), and `from`
        stays as an alias of `into`."""
        return skills.merge(session=write_session(), actor=current_principal(),
                            from_=data["from_"], into=data["into"])
