"""The JSON API v1: flask-smorest blueprints, their OpenAPI document and offline docs."""

from __future__ import annotations

import copy
import http
from typing import Any

import swagger_ui_bundle
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from flask import Blueprint, Flask, request, send_from_directory
from flask_smorest import Api
from flask_smorest.spec.plugins import FlaskPlugin
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from werkzeug.exceptions import UnsupportedMediaType
from werkzeug.routing import BaseConverter, ValidationError

from referral_service import bodies, errors
from referral_service.api import (
    audit,
    client_sites,
    clients,
    groups,
    kpi,
    matching,
    organizations,
    people,
    referrals,
    skills,
    targets,
    visits,
)
from referral_service.api.common import authenticate
from referral_service.schemas.base import (
    MAX_ID,
    MONTH_PATTERN,
    ProblemSchema,
    StrictSchema,
    ValidationProblemSchema,
)
from referral_service.services import auth
from referral_service.services.errors import ValidationFailed

API_PREFIX = "/api/v1"
PROBLEM_CONTENT_TYPE = "application/problem+json"
NO_NUL_PATTERN = "^[^\\u0000]*$"


class IdConverter(BaseConverter):
    """A positive 32-bit id in a URL; anything else is a 404, never a driver overflow."""

    regex = r"\d{1,12}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value: int) -> str:
        return str(int(value))


class MonthConverter(BaseConverter):
    """A YYYY-MM month in a URL, documented with its pattern.

    Any segment reaches the view, so that a malformed month is a 422 naming `month`, not a 404.
    """


class RuleDocumentingConverter(OpenAPIConverter):
    """apispec's converter, adding the cross-field rules a schema states in `document_rules`.

    Field attributes cannot say "one of these sets is required" or "latitude needs longitude";
    a schema that enforces such a rule in a validator states it there as JSON Schema
    (OpenAPI 3.0: `anyOf` of required sets, `not`), so that the document refuses what the
    server refuses.
    """

    def schema2jsonschema(self, schema: Schema | type[Schema]) -> dict[str, Any]:
        """Return the JSON Schema of `schema`, with its document_rules merged in."""
        jsonschema = super().schema2jsonschema(schema)
        jsonschema.update(copy.deepcopy(getattr(schema, "document_rules", None) or {}))
        return jsonschema

    def field2nullable(self, field: fields.Field, ret: dict) -> dict:
        """Document a nullable nested object as that object made nullable, not any object.

        apispec writes `anyOf: [{type: object, nullable: true}, {$ref}]`, whose first branch
        admits every object (`{"foo": 1}`) and which generated clients read as an untyped
        object. `allOf: [{$ref}]` with `nullable: true` is exactly "null or that object"
        (openapi-python-client reads it as `Location | None`, schemathesis as the same).
        """
        if field.allow_none and "$ref" in ret:
            return {"allOf": [{"$ref": ret.pop("$ref")}], "nullable": True}
        if field.allow_none and "allOf" in ret:
            return {"allOf": ret.pop("allOf"), "nullable": True}
        return super().field2nullable(field, ret)


class RuleDocumentingPlugin(MarshmallowPlugin):
    """The marshmallow plugin with RuleDocumentingConverter."""

    Converter = RuleDocumentingConverter


class ProblemApi(Api):
    """flask-smorest's Api with problem+json documented as the error body."""

    ERROR_SCHEMA = ProblemSchema
    # A 422 always names the bad fields: its body is documented with `errors` required.
    ERROR_SCHEMA_BY_STATUS = {http.HTTPStatus.UNPROCESSABLE_ENTITY: ValidationProblemSchema}

    def handle_http_exception(self, error):
        """Answer every HTTP error with the app's problem+json body."""
        return errors.handle_http_exception(error)

    def _register_responses(self):
        for status in http.HTTPStatus:
            response = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA_BY_STATUS.get(status, self.ERROR_SCHEMA)
            prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Error", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


def _document_refused_text(_converter, field: fields.Field, ret: dict, **_kwargs) -> dict:
    """Document that input text refuses NUL (StrictSchema), where no pattern says more."""
    owner = field
    while isinstance(owner.parent, fields.Field):  # the item field of a List
        owner = owner.parent
    if (isinstance(field, fields.String) and not {"pattern", "enum"} & set(ret)
            and isinstance(owner.parent, StrictSchema)):
        return {"pattern": NO_NUL_PATTERN}
    return {}


def _configure(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Partner referral matching service")
    app.config.setdefault("API_VERSION", "1.0.0")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    # Swagger UI's assets come from the installed swagger-ui-bundle, never a CDN.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", f"{API_PREFIX}/docs/assets/")
    app.config.setdefault("API_SPEC_OPTIONS", {
        "components": {"securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer", "description": "API key"},
        }},
        "security": [{"bearerAuth": []}],
        "info": {"description": "The CRM's contract: firm profiles, matching, referrals, KPI."},
    })


def _document_required_consent(api: Api) -> None:
    """With REQUIRE_CLIENT_CONSENT the document says what the server refuses without it: a
    referral's client.consent and a lead referral's consent are required."""
    components = api.spec.components.schemas
    for name in ("ReferralClientIn", "LeadRefer"):
        component = components[name]
        component["required"] = sorted({*component.get("required", ()), "consent"})


def init_app(app: Flask) -> None:
    """Bind the API to the app and register every resource."""
    _configure(app)
    app.url_map.converters["id"] = IdConverter
    # One Api per app: flask-smorest keeps the spec on the instance, and tests build many apps.
    api = ProblemApi(spec_kwargs={"marshmallow_plugin": RuleDocumentingPlugin()})
    app.url_map.converters["month"] = MonthConverter
    api.register_converter(
        IdConverter, lambda _c: {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    )
    api.register_converter(MonthConverter, lambda _c: {"type": "string", "pattern": MONTH_PATTERN})
    api.init_app(app)
    api.ma_plugin.converter.add_attribute_function(_document_refused_text)
    app.extensions["api"] = api
    app.extensions["api_key_cache"] = auth.KeyCache(app.config["API_KEY_CACHE_SECONDS"])
    names = set()
    for blueprint, path in (
        (organizations.blp, "/organizations"), (groups.blp, "/groups"),
        (skills.blp, "/skills"),
        (matching.blp, "/match"),
        (referrals.blp, "/referrals"),
        (kpi.blp, "/kpi"), (targets.blp, "/kpi/target-proposals"),
        (audit.blp, "/audit"), (clients.blp, "/clients"),
        (client_sites.blp, "/clients"),
        (people.blp, "/people"), (people.departments_blp, "/departments"),
        (visits.blp, "/visits"), (visits.leads_blp, "/leads"),
    ):
        api.register_blueprint(blueprint, url_prefix=API_PREFIX + path)
        names.add(blueprint.name)
    app.register_blueprint(_swagger_assets_blueprint())
    if app.config["REQUIRE_CLIENT_CONSENT"]:
        _document_required_consent(api)

    query_names = DocumentedQueryNames(api)

    @app.before_request
    def _authenticate_api_calls() -> None:
        if request.blueprint in names:
            authenticate()
            refuse_undocumented_query_parameters(query_names)
            # Every write of the API takes a JSON body: anything else would read as {}.
            if request.method in ("POST", "PUT", "PATCH") and not request.is_json:
                raise UnsupportedMediaType(
                    "Send a JSON body with 'Content-Type: application/json'.")
            if request.is_json:
                bodies.refuse_deep_json(request.get_data(cache=True))


class DocumentedQueryNames:
    """The query parameters each operation of the document lists, read once from the spec."""

    def __init__(self, api: Api) -> None:
        self._api = api
        self._names: dict[tuple[str, str], frozenset[str]] | None = None

    def of(self, rule: str, method: str) -> frozenset[str]:
        """Return the query parameter names of the operation at Flask `rule` and `method`."""
        if self._names is None:
            self._names = self._read()
        path = FlaskPlugin.flaskpath2openapi(rule)
        return self._names.get((path, "get" if method == "HEAD" else method.lower()),
                               frozenset())

    def _read(self) -> dict[tuple[str, str], frozenset[str]]:
        names = {}
        for path, item in self._api.spec.to_dict()["paths"].items():
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    names[(path, method)] = frozenset(
                        parameter["name"] for parameter in operation.get("parameters", ())
                        if parameter.get("in") == "query")
        return names


def refuse_undocumented_query_parameters(documented: DocumentedQueryNames) -> None:
    """Refuse, as a 422 naming each, query parameters the operation does not document.

    Like an unknown body field: `?per_page=10` or a misspelt filter would otherwise be
    ignored silently and answer something the caller did not ask for. (webargs would only
    see the operations that take query arguments; the document knows them all.)
    """
    if not request.args or request.url_rule is None or request.method == "OPTIONS":
        return
    allowed = documented.of(request.url_rule.rule, request.method)
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise ValidationFailed(
            "Unknown query parameters: " + ", ".join(unknown) + ".",
            {name: ["Unknown query parameter."] for name in unknown})


def _swagger_assets_blueprint() -> Blueprint:
    assets = Blueprint("swagger_assets", __name__)

    @assets.route(f"{API_PREFIX}/docs/assets/<path:filename>", endpoint="swagger_assets")
    def swagger_assets(filename: str):
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename, max_age=86400)

    return assets
