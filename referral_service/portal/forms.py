"""The portal's forms (Flask-WTF) and the glue that turns them into service input and back.

The WTForms validators here mirror the shared marshmallow schemas closely enough for the
browser to stop obvious mistakes (they render as `required`, `maxlength`, `min`, `max`); the
shared schemas (referral_service/schemas/) and the services stay the authority, and their
errors are shown beside the field they name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    Field,
    FieldList,
    FloatField,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from models import ORGANIZATION_KINDS, REFERRAL_STATUSES, utcnow
from referral_service.schemas.base import MONTH_PATTERN
from referral_service.schemas.referrals import REFERRAL_SORTS
from referral_service.texts import Text

csrf = CSRFProtect()

COUNTRY_PATTERN = "[A-Za-z]{2}"
MAX_TARGET = 100_000
# Stored words (statuses, kinds, sides) as the pages show them; "converted" reads "won".
WORDS = {
    "pending": _l("pending"), "accepted": _l("accepted"), "declined": _l("declined"),
    "withdrawn": _l("withdrawn"), "expired": _l("expired"), "converted": _l("won"),
    "lost": _l("lost"), "open": _l("open"), "referred": _l("referred"), "won": _l("won"),
    "proposed": _l("proposed"), "agreed": _l("agreed"), "countered": _l("countered"),
    "none": _l("none"), "affiliate": _l("affiliate"), "partner": _l("partner"),
    "holder": _l("holder"), "counterpart": _l("counterpart"),
}
KIND_CHOICES = [SelectChoice("affiliate", _l("Affiliate")), SelectChoice("partner", _l("Partner"))]


def _stripped(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


STRIP = [_stripped]


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes for one list value."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class LoginForm(FlaskForm):
    """Sign in with e-mail and password."""

    email = StringField(_l("E-mail"), [InputRequired(), Length(max=254)], filters=STRIP,
                        render_kw={"type": "email", "autocomplete": "username",
                                   "autofocus": True})
    password = PasswordField(_l("Password"), [InputRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()
    submit = SubmitField(_l("Sign in"))


class InviteForm(FlaskForm):
    """Head office invites someone to sign in: a partner's staff, or head office."""

    email = StringField(_l("E-mail"), [InputRequired(), Length(max=254)], filters=STRIP,
                        render_kw={"type": "email", "autocomplete": "off"})
    name = StringField(_l("Name"), [Optional(), Length(max=200)], filters=STRIP,
                       description=_l("The person's name, as their colleagues know it."))
    role = SelectField(_l("Role"), choices=[SelectChoice("partner", _l("A firm's staff (partner)")),
                                        SelectChoice("admin", _l("Head office"))])
    organization = StringField(_l("Firm (name or id)"), [Optional(), Length(max=200)],
                               filters=STRIP, description=_l("For a firm's staff."))
    invite = SubmitField(_l("Invite"))


class SignInActionForm(FlaskForm):
    """A button on one sign-in of head office's list: a new password link, or deactivate."""

    user_id = HiddenField(validators=[InputRequired(), Regexp(r"^[0-9]{1,10}$")])
    action = HiddenField(validators=[InputRequired(), AnyOf(("reset", "deactivate"))])


class NewPasswordForm(FlaskForm):
    """Choose a password from a one-time link."""

    password = PasswordField(_l("New password"), [InputRequired(), Length(min=8, max=200)],
                             render_kw={"autocomplete": "new-password"})
    repeat = PasswordField(_l("The same again"), [InputRequired(), Length(max=200)],
                           render_kw={"autocomplete": "new-password"})
    save = SubmitField(_l("Set password"))

    def validate_repeat(self, field: Field) -> None:
        """The two must be the same."""
        if field.data != self.password.data:
            raise ValidationError(_l("The two passwords differ."))


class LogoutForm(FlaskForm):
    """The sign-out button (a POST, so that a link elsewhere cannot sign anyone out)."""

    submit = SubmitField(_l("Sign out"))


class OfficeForm(Form):
    """One office row of the profile form."""

    id = HiddenField()
    label = StringField(_l("Label"), [Optional(), Length(max=100)], filters=STRIP)
    address = StringField(_l("Address"), [Optional(), Length(max=300)], filters=STRIP)
    city = StringField(_l("City"), [Optional(), Length(max=100)], filters=STRIP)
    country = StringField(
        _l("Country"), [Optional(), Regexp(f"^{COUNTRY_PATTERN}$",
                                       message=_l("Use a two-letter code such as TW."))],
        filters=STRIP, render_kw={"pattern": COUNTRY_PATTERN, "maxlength": 2,
                                  "placeholder": "TW", "title": _l("Two-letter country code")},
    )
    latitude = FloatField(_l("Latitude"), [Optional(), NumberRange(-90, 90)])
    longitude = FloatField(_l("Longitude"), [Optional(), NumberRange(-180, 180)])
    service_radius_km = FloatField(_l("Service radius (km)"),
                                   [Optional(), NumberRange(0.1, 20_000)],
                                   default=100.0)
    remove = BooleanField(_l("Remove this office"))

    def is_blank(self) -> bool:
        """Return whether nothing that places an office was typed (an unused new row)."""
        return not self.id.data and not any(
            getattr(self, name).data not in (None, "")
            for name in ("label", "address", "city", "country", "latitude", "longitude")
        )


class ProfileForm(FlaskForm):
    """A firm's profile: what it offers, where, and how much it can take on."""

    version = HiddenField()
    name = StringField(_l("Name"), [InputRequired(), Length(min=1, max=200)], filters=STRIP)
    description = TextAreaField(_l("What the firm offers"), [Optional(), Length(max=5000)],
                                render_kw={"rows": 4})
    skills = TextAreaField(_l("Skills"), [Optional(), Length(max=5000)],
                           description=_l("One per line, or separated by commas."),
                           render_kw={"rows": 3})
    capacity = IntegerField(_l("Capacity"), [Optional(), NumberRange(0, 1_000_000)],
                            description=_l("Most referrals open at once; leave empty for no "
                                           "limit."))
    # The firm's business contact, shown to referrers; the schema checks the address and number.
    contact_name = StringField(_l("Contact person"), [Optional(), Length(max=200)],
                               filters=STRIP)
    contact_email = EmailField(_l("Contact e-mail"), [Optional(), Length(max=254)],
                               filters=STRIP)
    contact_phone = TelField(_l("Contact phone"), [Optional(), Length(max=40)], filters=STRIP,
                             description=_l("For example +886 7 123 4567."))
    offices = FieldList(FormField(OfficeForm), min_entries=1, max_entries=50)
    # Head office only: the rest of the profile is not the partner's to change.
    kind = SelectField(_l("Kind"), choices=KIND_CHOICES)
    group = StringField(_l("Group"), [Optional(), Length(max=100)], filters=STRIP)
    active = BooleanField(_l("Active (receives referrals and appears in matches)"))
    add_office = SubmitField(_l("Add another office"))
    save = SubmitField(_l("Save profile"))


class NeedForm(FlaskForm):
    """What the client needs and where the client is: the input of a match."""

    skills = TextAreaField(_l("Skills needed"), [Optional(), Length(max=2000)],
                           description=_l("One per line, or separated by commas."),
                           render_kw={"rows": 2})
    description = TextAreaField(_l("Describe the need"), [Optional(), Length(max=5000)],
                                render_kw={"rows": 3})
    city = StringField(_l("City"), [Optional(), Length(max=100)], filters=STRIP)
    country = StringField(
        _l("Country"), [Optional(), Regexp(f"^{COUNTRY_PATTERN}$",
                                       message=_l("Use a two-letter code such as TW."))],
        filters=STRIP, render_kw={"pattern": COUNTRY_PATTERN, "maxlength": 2,
                                  "placeholder": "TW", "title": _l("Two-letter country code")},
    )
    address = StringField(_l("Or an address"), [Optional(), Length(max=300)], filters=STRIP)
    latitude = FloatField(_l("Latitude"), [Optional(), NumberRange(-90, 90)])
    longitude = FloatField(_l("Longitude"), [Optional(), NumberRange(-180, 180)])
    # The relevance floor of this match, in percent (SPEC section 8: 0 to 0.75 of skill fit).
    min_skill_fit = IntegerField(_l("Least skill fit (%)"), [Optional(), NumberRange(0, 75)],
                                 render_kw={"min": 0, "max": 75})

    def location(self) -> dict[str, Any]:
        """Return the place as the match request wants it: coordinates, city or address."""
        if self.latitude.data is not None or self.longitude.data is not None:
            return {"latitude": self.latitude.data, "longitude": self.longitude.data}
        place: dict[str, Any] = {}
        if self.city.data:
            place["city"] = self.city.data
            if self.country.data:
                place["country"] = self.country.data.upper()
        elif self.address.data:
            place["address"] = self.address.data
        return place


class GroupFields:
    """The referrer's group in a match (SPEC section 8), on the match and refer forms: prefer
    its firms, or propose no other."""

    prefer_group = BooleanField(_l("Prefer firms of the referring firm's group"))
    same_group_only = BooleanField(_l("Only firms of the referring firm's group"))

    def group_request(self) -> dict[str, bool]:
        """The match request's prefer_group and same_group_only, as ticked."""
        return {"prefer_group": bool(self.prefer_group.data),
                "same_group_only": bool(self.same_group_only.data)}


class MatchForm(GroupFields, NeedForm):
    """Head office's match form."""

    referrer = StringField(_l("Referring firm"), [Optional(), Length(max=200)], filters=STRIP,
                           description=_l("The firm's name or id; needed for the group "
                                          "options."))
    limit = IntegerField(_l("How many firms"), [Optional(), NumberRange(1, 100)], default=10)
    max_distance_km = FloatField(_l("Farthest office (km)"),
                                 [Optional(), NumberRange(0.001, 25_000)])
    kinds = MultiCheckboxField(_l("Kinds"), choices=KIND_CHOICES,
                               default=list(ORGANIZATION_KINDS))
    submit = SubmitField(_l("Find firms"))


class ConsentFields:
    """The client's consent to being referred (SPEC section 11), on the refer forms: shown,
    and required, when REQUIRE_CLIENT_CONSENT is on (the views check it)."""

    consent_given = BooleanField(_l("The client agreed to be referred"))
    consent_by = StringField(_l("Who agreed"), [Optional(), Length(max=200)], filters=STRIP,
                             description=_l("The person at the client who agreed; you, if "
                                            "left empty."))

    def consent(self, recorder: str) -> dict[str, Any] | None:
        """The referral's client.consent (given now), or None if the box is not ticked."""
        if not self.consent_given.data:
            return None
        return {"given_at": utcnow(), "by": self.consent_by.data or recorder}

    def consent_missing(self, required: bool) -> bool:
        """Whether consent is required and not given; if so, the box says why."""
        if not required or self.consent_given.data:
            return False
        self.consent_given.errors = [gettext("Tick this box: the client's consent is needed "
                                             "before it is referred.")]
        return True


class ReferForm(ConsentFields, GroupFields, NeedForm):
    """Refer a client: the client, the need, then a receiver picked from the match list."""

    referrer = StringField(_l("Referring firm"), [Optional(), Length(max=200)], filters=STRIP,
                           description=_l("Head office: the firm's name or id."))
    client_name = StringField(_l("Client name"), [InputRequired(), Length(min=1, max=200)],
                              filters=STRIP)
    client_ref = StringField(_l("Client's CRM id"), [Optional(), Length(max=100)], filters=STRIP,
                             description=_l("Optional; the same client is recognised by it."))
    note = TextAreaField(_l("Note for the receiving firm"), [Optional(), Length(max=5000)],
                         render_kw={"rows": 2})
    # Ticked by default when AUTO_REOFFER is on (SPEC section 11); the view sets it on the
    # first view, and a submitted form keeps what the user chose.
    auto_reoffer = BooleanField(_l("If the firm declines or does not answer in time, offer "
                                   "the client to the next best firm"))
    # The firm's recorded sites of the client (SPEC section 8), offered once the client is
    # known (the view fills the choices); a site's place replaces the place fields.
    client_site = SelectField(_l("Client site"), coerce=int, choices=[], validate_choice=False,
                              description=_l("The client's site the need is for; its place "
                                             "is used instead of the one above."))
    # A new site of the client, recorded with the referral (POST /referrals new_client_site):
    # the place fields above are its place.
    new_site_label = StringField(
        _l("Record this place as a client site named"), [Optional(), Length(max=100)],
        filters=STRIP, description=_l("Optional, for example “Taichung works”: the place "
                                      "above is kept as this site of the client, for your "
                                      "next referrals and matches."))
    receiver = RadioField(_l("Receiving firm"), coerce=int, validate_choice=False)
    find = SubmitField(_l("Find receiving firms"))
    record = SubmitField(_l("Refer the client to the selected firm"))


class MoveForm(FlaskForm):
    """One lifecycle move of a referral (accept, decline, won, lost, withdraw); the move itself
    is in the URL."""

    version = HiddenField()
    reason = TextAreaField(_l("Reason"), [Optional(), Length(max=2000)], render_kw={"rows": 2})
    # Ticked on the confirmation step of a final move (common.FINAL_MOVES).
    confirm = BooleanField(_l("Yes, I am sure: this cannot be undone."))
    submit = SubmitField()


class TargetForm(Form):
    """One firm's target in the KPI table."""

    organization_id = HiddenField()
    new_clients = IntegerField(_l("Target"), [Optional(), NumberRange(0, MAX_TARGET)],
                               render_kw={"inputmode": "numeric"})


class TargetsForm(FlaskForm):
    """The editable target column of the KPI month view."""

    month = HiddenField(validators=[InputRequired(), Regexp(MONTH_PATTERN)])
    targets = FieldList(FormField(TargetForm), max_entries=500)
    save = SubmitField(_l("Save targets"))


class NewTargetForm(FlaskForm):
    """Set a target for a firm that has no row in the month yet."""

    month = HiddenField(validators=[InputRequired(), Regexp(MONTH_PATTERN)])
    organization = StringField(_l("Firm (name or id)"), [InputRequired(), Length(max=200)],
                               filters=STRIP)
    new_clients = IntegerField(_l("Target"), [InputRequired(), NumberRange(0, MAX_TARGET)])
    add = SubmitField(_l("Set target"))


class OrganizationFilterForm(FlaskForm):
    """Search and filters of the organizations list (a GET form: nothing to protect)."""

    class Meta:
        csrf = False

    q = StringField(_l("Name"), [Optional(), Length(max=200)], filters=STRIP,
                    render_kw={"type": "search"})
    kind = SelectField(_l("Kind"), [Optional()], choices=[SelectChoice("", _l("Any kind")),
                                                           *KIND_CHOICES])
    active = SelectField(_l("Status"), [Optional()], choices=[
        SelectChoice("", _l("Active or not")), SelectChoice("true", _l("Active")),
        SelectChoice("false", _l("Inactive"))])
    skill = StringField(_l("Skill"), [Optional(), Length(max=100)], filters=STRIP)


class ReferralFilterForm(FlaskForm):
    """Filters of the referrals list (a GET form)."""

    class Meta:
        csrf = False

    role = SelectField(_l("Side"), [Optional()], choices=[
        SelectChoice("", _l("Sent or received")), SelectChoice("receiver", _l("Received")),
        SelectChoice("referrer", _l("Sent"))])
    status = SelectField(_l("Status"), [Optional()], choices=[
        SelectChoice("", _l("Any status")),
        *(SelectChoice(status, WORDS[status]) for status in REFERRAL_STATUSES)])
    month = StringField(_l("Month"),
                        [Optional(), Regexp(MONTH_PATTERN, message=_l("Use YYYY-MM."))],
                        filters=STRIP, render_kw={"type": "month", "placeholder": "YYYY-MM"})
    client = StringField(_l("Client"), [Optional(), Length(max=200)], filters=STRIP,
                         render_kw={"type": "search", "placeholder": _l("Part of the name")})
    sort = HiddenField(validators=[Optional(), AnyOf(REFERRAL_SORTS)])


def split_skills(text: str | None) -> list[str]:
    """Return the skills typed one per line or separated by commas or semicolons."""
    return [part.strip() for part in re.split(r"[,;\n]", text or "") if part.strip()]


ErrorPath = tuple[str, ...]


def said(message: Any) -> str:
    """Return a message of the services in the user's language.

    A texts.Text (what services and adapters word with N_) goes through gettext with its
    parameters, each of them said too (a Text, or a stored word such as a status: WORDS);
    anything else (marshmallow's messages, a plain string) is shown as it is.
    """
    if not isinstance(message, Text):
        return str(message)
    params = {name: said(value) if isinstance(value, Text)
              else str(WORDS[value]) if isinstance(value, str) and value in WORDS else value
              for name, value in message.params.items()}
    return gettext(message.template, **params)


def flatten_errors(errors: Any, path: ErrorPath = ()) -> Iterator[tuple[ErrorPath, str]]:
    """Yield (path, message) for every message of a nested marshmallow/service error dict,
    each in the user's language (said)."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            yield from flatten_errors(value, (*path, str(key)))
    elif isinstance(errors, list | tuple):
        for item in errors:
            if isinstance(item, dict | list | tuple):
                yield from flatten_errors(item, path)
            else:
                yield path, said(item)
    else:
        yield path, said(errors)


def attach_errors(
    errors: Any, resolve: Callable[[tuple[str, ...]], Field | None]
) -> list[str]:
    """Show each error beside the field `resolve` finds for its path; return the rest."""
    general: list[str] = []
    for path, message in flatten_errors(errors):
        field = resolve(path)
        if field is None:
            general.append(message)
            continue
        field.errors = [*field.errors, message]
    return general


def has_errors(form: Form) -> bool:
    """Return whether any field, nested ones included, carries an error now.

    WTForms caches `form.errors` when first read; errors added after validation (from the
    services) would be missed by it.
    """
    for field in form:
        if isinstance(field, FieldList):
            if any(has_errors(entry.form) for entry in field.entries
                   if isinstance(entry, FormField)):
                return True
        elif isinstance(field, FormField):
            if has_errors(field.form):
                return True
        elif field.errors:
            return True
    return False


def field_resolver(form: Form, aliases: dict[str, str] | None = None):
    """Resolve an error path to a field of `form`: by its last known name, with aliases."""
    aliases = aliases or {}

    def resolve(path: tuple[str, ...]) -> Field | None:
        for name in reversed(path):
            name = aliases.get(name, name)
            if name in form._fields:
                return form._fields[name]
        return None

    return resolve


# --- visits, leads, people (SPEC section 9) ----------------------------------------------

COUNTRY_FIELD = {"pattern": COUNTRY_PATTERN, "maxlength": 2, "placeholder": "TW",
                 "title": _l("Two-letter country code"), "autocapitalize": "characters"}
COUNTRY_RULE = Regexp(f"^{COUNTRY_PATTERN}$", message=_l("Use a two-letter code such as TW."))
CURRENCY_PATTERN = "[A-Za-z]{3}"
# A visit form's lead rows: the API's limit (schemas.visits.MAX_LEADS).
MAX_LEAD_ROWS = 50


def optional_id(value: Any) -> int | None:
    """Coerce a select's value to an id, or None for its empty choice."""
    if value in (None, "", "None"):
        return None
    return int(value)


class LeadRowForm(Form):
    """One potential client on the visit form; a row left blank is no lead."""

    name = StringField(_l("Name"), [Optional(), Length(max=200)], filters=STRIP)
    contact = StringField(_l("Contact"), [Optional(), Length(max=300)], filters=STRIP,
                          description=_l("Phone or e-mail, and whom to ask for."))
    skills = StringField(_l("Skills they need"), [Optional(), Length(max=2000)], filters=STRIP,
                         description=_l("Separated by commas."))
    description = TextAreaField(_l("What they need"), [Optional(), Length(max=5000)],
                                render_kw={"rows": 2})
    city = StringField(_l("City"), [Optional(), Length(max=100)], filters=STRIP)
    country = StringField(_l("Country"), [Optional(), COUNTRY_RULE], filters=STRIP,
                          render_kw=COUNTRY_FIELD)
    relationship = StringField(_l("How the client knows them"), [Optional(), Length(max=300)],
                               filters=STRIP)

    def is_blank(self) -> bool:
        """Return whether nothing was typed in the row (an unused row)."""
        return not any((field.data or "").strip() for field in self)


class VisitForm(FlaskForm):
    """A visit report: the client, when, what came back (a commitment, leads or a reason)."""

    person_id = SelectField(_l("Salesperson"), coerce=int)
    client_name = StringField(_l("Client visited"), [InputRequired(), Length(min=1, max=200)],
                              filters=STRIP, render_kw={"autocomplete": "organization"})
    client_ref = StringField(_l("Client's CRM id"), [Optional(), Length(max=100)], filters=STRIP,
                             description=_l("Optional; the same client is recognised by it."))
    client_city = StringField(_l("City"), [Optional(), Length(max=100)], filters=STRIP)
    client_country = StringField(_l("Country"), [Optional(), COUNTRY_RULE], filters=STRIP,
                                 render_kw=COUNTRY_FIELD)
    visited_at = DateTimeLocalField(_l("When"), [InputRequired()],
                                    format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S",
                                            "%Y-%m-%d %H:%M"])
    commitment_description = TextAreaField(_l("What the client committed to"),
                                           [Optional(), Length(max=2000)],
                                           render_kw={"rows": 2})
    commitment_amount = StringField(_l("Amount"), [Optional(), Length(max=20)], filters=STRIP,
                                    render_kw={"inputmode": "decimal"})
    commitment_currency = StringField(
        _l("Currency"), [Optional(), Regexp(f"^{CURRENCY_PATTERN}$",
                                        message=_l("Use a three-letter code such as TWD."))],
        filters=STRIP, render_kw={"pattern": CURRENCY_PATTERN, "maxlength": 3,
                                  "placeholder": "TWD", "autocapitalize": "characters"})
    commitment_expected_on = DateField(_l("Expected on"), [Optional()])
    leads = FieldList(FormField(LeadRowForm), min_entries=1, max_entries=MAX_LEAD_ROWS)
    notes = TextAreaField(_l("Notes"), [Optional(), Length(max=5000)], render_kw={"rows": 2})
    empty_handed_reason = TextAreaField(_l("Why nothing came back"), [Optional(), Length(max=2000)],
                                        render_kw={"rows": 2})
    add_lead = SubmitField(_l("Add another lead"))
    save = SubmitField(_l("Save the visit"))


class VisitFilterForm(FlaskForm):
    """Filters of the visits list (a GET form)."""

    class Meta:
        csrf = False

    person_id = SelectField(_l("Salesperson"), [Optional()], coerce=optional_id,
                            validate_choice=False)
    visited_from = DateField(_l("From"), [Optional()])
    visited_to = DateField(_l("To"), [Optional()])


class LeadFilterForm(FlaskForm):
    """Filters of the leads list (a GET form)."""

    class Meta:
        csrf = False

    status = SelectField(_l("Status"), [Optional()], choices=[
        SelectChoice("", _l("Any status")), SelectChoice("open", _l("Open")),
        SelectChoice("referred", _l("Referred")), SelectChoice("won", _l("Won")),
        SelectChoice("lost", _l("Lost"))])


class LeadMoveForm(FlaskForm):
    """Mark a lead won or lost (the move is in the URL); the box confirms the final step."""

    reason = TextAreaField(_l("Reason"), [Optional(), Length(max=1000)], render_kw={"rows": 2})
    confirm = BooleanField(_l("Yes, I am sure: this cannot be undone."))
    submit = SubmitField()


class LeadReferForm(ConsentFields, FlaskForm):
    """Refer a lead: a firm from the ranked list, or one named."""

    receiver = RadioField(_l("Receiving firm"), coerce=optional_id, validate_choice=False)
    firm = StringField(_l("Or name a firm"), [Optional(), Length(max=200)], filters=STRIP,
                       description=_l("Its id (head office: its name or id), if the firm you "
                                      "want is not listed."))
    note = TextAreaField(_l("Note for the receiving firm"), [Optional(), Length(max=5000)],
                         render_kw={"rows": 2})
    submit = SubmitField(_l("Refer the lead"))


class OrganizationPickForm(FlaskForm):
    """Head office: whose people, visits or report (a GET form)."""

    class Meta:
        csrf = False

    organization = StringField(_l("Organization (name or id)"), [Optional(), Length(max=200)],
                               filters=STRIP)


class PersonForm(FlaskForm):
    """A member of staff: name, CRM id, department, manager, active."""

    version = HiddenField()
    name = StringField(_l("Name"), [InputRequired(), Length(min=1, max=200)], filters=STRIP)
    email = StringField(_l("E-mail"), [Optional(), Length(max=254)], filters=STRIP,
                        render_kw={"type": "email"})
    external_ref = StringField(_l("CRM id"), [Optional(), Length(max=100)], filters=STRIP)
    department_id = SelectField(_l("Department"), coerce=optional_id)
    manager_id = SelectField(_l("Manager"), coerce=optional_id)
    active = BooleanField(_l("Active"), default=True)
    save = SubmitField(_l("Save"))


class DepartmentForm(FlaskForm):
    """A department: name, parent, head, CRM id."""

    version = HiddenField()
    name = StringField(_l("Name"), [InputRequired(), Length(min=1, max=200)], filters=STRIP)
    parent_id = SelectField(_l("Part of"), coerce=optional_id)
    head_person_id = SelectField(_l("Head"), coerce=optional_id)
    external_ref = StringField(_l("CRM id"), [Optional(), Length(max=100)], filters=STRIP)
    save = SubmitField(_l("Save"))


def error_summary(form: Form) -> list[tuple[str, str]]:
    """Return (field id, "Label: message") for every error on the form, in page order."""
    return [(field.id, gettext("%(label)s: %(message)s", label=label, message=message))
            for field, label in labelled_fields(form) for message in field.errors]


# A row of a list of subforms, as the error summary names it.
ROW_LABELS = {"offices": _l("Office %(number)s"), "leads": _l("Lead %(number)s"),
              "targets": _l("Target %(number)s")}


def labelled_fields(form: Form, prefix: str = "") -> Iterator[tuple[Field, str]]:
    """Yield every field of a form, nested rows included, with a label naming its row
    ("Lead 2, City", "Office 1, Country")."""
    for field in form:
        if isinstance(field, FieldList):
            row = str(ROW_LABELS.get(field.name, field.name + " %(number)s"))
            for number, entry in enumerate(field.entries, start=1):
                if isinstance(entry, FormField):
                    yield from labelled_fields(entry.form,
                                               prefix + row % {"number": number} + ", ")
        elif isinstance(field, FormField):
            yield from labelled_fields(field.form, prefix)
        else:
            yield field, prefix + field.label.text


class AliasForm(FlaskForm):
    """Head office declares another name of a skill (SPEC section 8)."""

    alias = StringField(_l("Other name"), [InputRequired(), Length(max=100)], filters=STRIP,
                        description=_l("What clients or firms call it, e.g. “cnc milling”."))
    skill = StringField(_l("Skill it stands for"), [InputRequired(), Length(max=100)],
                        filters=STRIP, description=_l("A skill listed below."))
    add = SubmitField(_l("Add the name"))


class MergeForm(FlaskForm):
    """Head office merges one skill into another; the box confirms the second step."""

    source = StringField(_l("Merge the skill"), [InputRequired(), Length(max=100)],
                         filters=STRIP)
    target = StringField(_l("into the skill"), [InputRequired(), Length(max=100)],
                         filters=STRIP)
    confirm = BooleanField(_l("Yes, I am sure: every firm's tag changes now."))
    merge = SubmitField(_l("Merge"))


class PreferencesForm(FlaskForm):
    """The language and time zone switcher at the foot of every page (choices set by i18n)."""

    language = SelectField(_l("Language"), validate_choice=True)
    time_zone = SelectField(_l("Time zone"), validate_choice=True)
    next = HiddenField()
    apply = SubmitField(_l("Apply"))
